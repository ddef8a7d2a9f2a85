"""The BARN worlds (Perille et al. 2020, the BARN Challenge) in our world format.

`nav-policy import-barn REPO_DIR` reads the Gazebo SDF files
`REPO_DIR/jackal_helper/worlds/BARN/world_{0..299}.world` of the challenge repository
(github.com/Daffan/the-barn-challenge, MIT licence) and writes `world_{i}.yaml` per world:

- Every static model with a cylinder (or box) collision becomes an obstacle; its pose is the
  `<state>` pose when the file has one (what Gazebo loads), else the model's `<pose>`, plus
  the link's pose. The ground plane is skipped; any other geometry (a mesh, a sphere) is an
  error naming the model. In BARN these are only cylinders of radius 0.075 m and length 1 m
  centred at z = 0 (0.5 m above the ground), on a 0.15 m lattice.
- Frame: our worlds are centred on the origin and walled, so the BARN world frame is shifted
  by `source.origin` (the BARN coordinates of our (0, 0)): ours = BARN - origin. The arena is
  the bounding box of the cylinders, start and goal, padded by ARENA_PAD on each side (BARN's
  own world is unbounded beyond its cylinder walls).
- Start and goal are the challenge's (run.py since Feb 2024): start (-2.25, 3.0, yaw 1.57) in
  the BARN world frame, goal = start + (0, 10).
- `shortest_path` (the reference length l of SPL and the BARN score) is computed on OUR map:
  the string-pulled grid shortest path on the world inflated by the robot radius
  (nav_policy.sim.grid). BARN's own `path_files/path_i.npy` cells are not used: the cell to
  metre conversion in its run.py is one cell off the cylinder lattice.

Splits: the challenge's test script runs worlds i % 6 == 0 (50 worlds), the held-out test
split here; the other 250 are the training split. Nothing may train, tune or select on the
test split (test/test_barn.py checks the training configs).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from nav_policy.errors import ConfigError, WorldError
from nav_policy.sim.world import Box, Cylinder, Obstacle, World, plain

N_WORLDS = 300
START_BARN = (-2.25, 3.0, 1.57)  # BARN world frame, run.py since Feb 2024 (before: (-2, 3))
GOAL_OFFSET = (0.0, 10.0)  # goal = start + offset
ARENA_PAD = 1.0  # metres of free floor around the cylinders, start and goal
WORLD_DIR = Path("jackal_helper") / "worlds" / "BARN"

# The challenge's protocol (run.py): success within 1 m of the goal, 100 s of simulated time,
# score = success * t_opt / clip(t, 2 t_opt, 8 t_opt), t_opt = reference length / 2 m/s.
GOAL_RADIUS = 1.0
TIME_LIMIT_S = 100.0
V_REF = 2.0

SUITES = ("barn-test", "barn-train")

LICENCE = """\
The BARN worlds are converted from the BARN Challenge repository
(https://github.com/Daffan/the-barn-challenge), MIT licence:

MIT License

Copyright (c) 2022 Zifan Xu

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

CITATION = ("D. Perille, A. Truong, X. Xiao and P. Stone, \"Benchmarking Metric Ground "
            "Navigation\", IEEE International Symposium on Safety, Security and Rescue Robotics "
            "(SSRR), 2020.")


# ---- splits -----------------------------------------------------------------------------------


def is_test(index: int) -> bool:
    """World i belongs to the public test split (what the challenge's test script runs)."""
    return int(index) % 6 == 0


def split_indices(suite: str) -> list[int]:
    """World indices of a suite: barn-test (i % 6 == 0, 50 worlds) or barn-train (250)."""
    if suite == "barn-test":
        return [i for i in range(N_WORLDS) if is_test(i)]
    if suite == "barn-train":
        return [i for i in range(N_WORLDS) if not is_test(i)]
    raise ConfigError(f"unknown suite {suite!r}; expected one of {', '.join(SUITES)}")


def default_dir() -> Path:
    from nav_policy.paths import sim_path

    return sim_path("worlds/barn")


def suite_files(suite: str, folder: Path | None = None) -> list[Path]:
    """The converted world files of a suite, in index order; ConfigError if one is missing."""
    folder = folder or default_dir()
    files = [folder / f"world_{i}.yaml" for i in split_indices(suite)]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise ConfigError(f"suite {suite}: {len(missing)} world files missing (first: "
                          f"{missing[0]}); run `nav-policy import-barn REPO_DIR --out {folder}`")
    return files


_WORLD_REF = re.compile(r"barn/world_(\d+)(?:\.ya?ml|\.world)?\b")


def referenced_worlds(obj: Any) -> set[int]:
    """BARN world indices a config refers to: world files (.../barn/world_i.yaml) and suites
    (barn-test, barn-train) anywhere in its (nested) values."""
    found: set[int] = set()
    if isinstance(obj, dict):
        for key, value in obj.items():
            found |= referenced_worlds(key) | referenced_worlds(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            found |= referenced_worlds(value)
    elif isinstance(obj, str):
        for suite in SUITES:
            if suite in obj:
                found |= set(split_indices(suite))
        found |= {int(m) for m in _WORLD_REF.findall(obj)}
    return found


# ---- SDF --------------------------------------------------------------------------------------


def _floats(text: str | None, n: int, where: str) -> list[float]:
    try:
        vals = [float(v) for v in (text or "").split()]
    except ValueError as exc:
        raise WorldError(f"{where}: not numbers: {text!r}") from exc
    if len(vals) != n or not all(math.isfinite(v) for v in vals):
        raise WorldError(f"{where}: expected {n} finite numbers, got {text!r}")
    return vals


def _pose(el: ET.Element | None, where: str) -> list[float]:
    if el is None or el.find("pose") is None:
        return [0.0] * 6
    return _floats(el.find("pose").text, 6, f"{where} <pose>")  # type: ignore[union-attr]


def sdf_obstacles(path: str | Path) -> list[Obstacle]:
    """The static obstacles of a Gazebo SDF world, in file order (ground plane skipped)."""
    p = Path(path)
    try:
        root = ET.parse(p).getroot()
    except OSError as exc:
        raise WorldError(f"cannot read SDF world {p}: {exc.strerror or exc}") from exc
    except ET.ParseError as exc:
        raise WorldError(f"SDF world {p} is not valid XML: {exc}") from exc
    world = root.find("world")
    if world is None:
        raise WorldError(f"SDF world {p} has no <world>")
    state = world.find("state")
    state_poses = {m.get("name"): m for m in state.findall("model")} if state is not None else {}
    out: list[Obstacle] = []
    if world.find("include") is not None:
        raise WorldError(f"{p.name}: <include> models are not supported (inline them)")
    for model in world.findall("model"):
        name = model.get("name", "?")
        where = f"{p.name}: model {name}"
        if model.find("include") is not None:
            raise WorldError(f"{where}: <include> models are not supported")
        links = model.findall("link")
        in_state = state_poses.get(name)
        mpose = _pose(in_state if in_state is not None and in_state.find("pose") is not None
                      else model, where)
        for link in links:
            lpose = _pose(link, f"{where} link")
            for col in link.findall("collision"):
                geom = col.find("geometry")
                if geom is None or geom.find("plane") is not None:
                    continue
                cpose = _pose(col, f"{where} collision")
                if any(abs(a) > 1e-9 for a in (*mpose[3:5], *lpose[3:5], *cpose[3:5])):
                    raise WorldError(f"{where}: tilted (roll/pitch) obstacles are not supported")
                yaw0 = mpose[5]
                c, s = math.cos(yaw0), math.sin(yaw0)
                ox, oy = lpose[0] + cpose[0], lpose[1] + cpose[1]  # link and collision offsets
                x, y = mpose[0] + c * ox - s * oy, mpose[1] + s * ox + c * oy
                z = mpose[2] + lpose[2] + cpose[2]
                yaw = yaw0 + lpose[5] + cpose[5]
                cyl, box = geom.find("cylinder"), geom.find("box")
                if cyl is not None:
                    radius = _floats(cyl.findtext("radius"), 1, f"{where} radius")[0]
                    length = _floats(cyl.findtext("length"), 1, f"{where} length")[0]
                    top = z + length / 2
                    if radius <= 0 or top <= 0:
                        raise WorldError(f"{where}: cylinder radius {radius}, top {top} m")
                    out.append(Cylinder((x, y), radius, top))
                elif box is not None:
                    sx, sy, sz = _floats(box.findtext("size"), 3, f"{where} box size")
                    top = z + sz / 2
                    if min(sx, sy) <= 0 or top <= 0:
                        raise WorldError(f"{where}: box size {[sx, sy, sz]}, top {top} m")
                    out.append(Box((x, y), (sx, sy), yaw, top))
                else:
                    kinds = [child.tag for child in geom]
                    raise WorldError(f"{where}: unsupported collision geometry {kinds} "
                                     "(cylinder, box or plane)")
    return out


# ---- conversion -------------------------------------------------------------------------------


def _r(v: float) -> float:
    return round(float(v), 6) + 0.0  # 1 µm, and no -0.0


def barn_world(index: int, obstacles: Sequence[Obstacle]) -> tuple[World, tuple[float, float]]:
    """Our World of BARN world `index` (without shortest_path) and its origin in BARN's frame."""
    sx, sy, syaw = START_BARN
    gx, gy = sx + GOAL_OFFSET[0], sy + GOAL_OFFSET[1]
    xs = [sx, gx] + [b for ob in obstacles for b in (ob.bounds()[0], ob.bounds()[2])]
    ys = [sy, gy] + [b for ob in obstacles for b in (ob.bounds()[1], ob.bounds()[3])]
    lo_x, hi_x = min(xs) - ARENA_PAD, max(xs) + ARENA_PAD
    lo_y, hi_y = min(ys) - ARENA_PAD, max(ys) + ARENA_PAD
    origin = (_r((lo_x + hi_x) / 2), _r((lo_y + hi_y) / 2))
    size = (_r(hi_x - lo_x), _r(hi_y - lo_y))

    def shift(ob: Obstacle) -> Obstacle:
        center = (_r(ob.center[0] - origin[0]), _r(ob.center[1] - origin[1]))
        if isinstance(ob, Cylinder):
            return Cylinder(center, _r(ob.radius), _r(ob.height))
        return Box(center, (_r(ob.size[0]), _r(ob.size[1])), _r(ob.yaw), _r(ob.height))

    world = World(name=f"barn_{index}", size=size, obstacles=tuple(shift(o) for o in obstacles),
                  start=(_r(sx - origin[0]), _r(sy - origin[1]), syaw),
                  goal=(_r(gx - origin[0]), _r(gy - origin[1])), tier="barn", seed=index)
    return world, origin


def _header(index: int, radius: float) -> str:
    split = "test" if is_test(index) else "train"
    return (f"# BARN world {index} ({split} split: test = i % 6 == 0), converted by "
            f"`nav-policy import-barn` from\n"
            f"# jackal_helper/worlds/BARN/world_{index}.world of "
            f"https://github.com/Daffan/the-barn-challenge (MIT licence, see LICENSE here).\n"
            f"# Citation: {CITATION}\n"
            f"# Frame: ours = BARN world frame - source.origin. Start/goal: the challenge's "
            f"(start (-2.25, 3.0, 1.57), goal = start + (0, 10)).\n"
            f"# shortest_path: computed on OUR map (grid shortest path, map inflated by the "
            f"robot radius {radius} m), not BARN's path files.\n")


def convert_world(sdf: Path, index: int, radius: float) -> tuple[World, dict[str, Any]]:
    """(World with shortest_path, YAML mapping) of one BARN SDF file."""
    from nav_policy.sim.generate import analyse_world

    world, origin = barn_world(index, sdf_obstacles(sdf))
    maps = analyse_world(world, radius)  # WorldError if start or goal is blocked/unreachable
    length = round(maps.length, 4)
    world = World(name=world.name, size=world.size, obstacles=world.obstacles,
                  start=world.start, goal=world.goal, tier=world.tier, seed=world.seed,
                  shortest_path=length)
    data = world.to_dict()
    data["source"] = {"dataset": "BARN", "index": index,
                      "split": "test" if is_test(index) else "train",
                      "file": str(WORLD_DIR / f"world_{index}.world"),
                      "origin": list(origin), "start_barn": list(START_BARN),
                      "reference_radius": radius}
    return world, data


def world_yaml(data: dict[str, Any]) -> str:
    """YAML text of a world mapping with one line per obstacle (300 worlds stay small)."""
    rest = {k: v for k, v in plain(data).items() if k != "obstacles"}
    text = yaml.safe_dump(rest, sort_keys=False, default_flow_style=None, width=100)
    lines = [yaml.safe_dump(ob, sort_keys=False, default_flow_style=True, width=1000).strip()
             for ob in plain(data.get("obstacles", []))]
    return text + "obstacles:\n" + "".join(f"- {line}\n" for line in lines)


def import_barn(repo: str | Path, out: str | Path, radius: float,
                indices: Sequence[int] | None = None) -> list[Path]:
    """Convert BARN's .world files under `repo` into `out`/world_{i}.yaml (+ LICENSE, README)."""
    src = Path(repo) / WORLD_DIR
    if not src.is_dir():
        raise ConfigError(f"{repo} is not a BARN Challenge checkout (no {WORLD_DIR}/)")
    idx = list(range(N_WORLDS)) if indices is None else list(indices)
    missing = [i for i in idx if not (src / f"world_{i}.world").is_file()]
    if missing:
        raise ConfigError(f"{src}: world_{missing[0]}.world is missing "
                          f"({len(missing)} of {len(idx)} worlds)")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i in idx:
        _, data = convert_world(src / f"world_{i}.world", i, radius)
        target = out_dir / f"world_{i}.yaml"
        target.write_text(_header(i, radius) + world_yaml(data))
        written.append(target)
    (out_dir / "LICENSE").write_text(LICENCE)
    (out_dir / "README.md").write_text(readme(radius))
    return written


def readme(radius: float) -> str:
    return f"""# BARN worlds (converted)

The 300 static worlds of the BARN Challenge ({CITATION}), converted from
`jackal_helper/worlds/BARN/world_{{i}}.world` of https://github.com/Daffan/the-barn-challenge
(MIT licence, see LICENSE) by `nav-policy import-barn REPO_DIR --out sim/worlds/barn`.

- `world_{{i}}.yaml`: our world format; every cylinder of the SDF file (radius 0.075 m, 0.5 m above
  the ground), shifted by `source.origin` (ours = BARN frame - origin) into an arena padded by
  {ARENA_PAD} m. Start (-2.25, 3.0, yaw 1.57) and goal = start + (0, 10) in BARN's frame, as the
  challenge's run.py since February 2024.
- `shortest_path` is computed on our map (grid shortest path on the world inflated by the robot
  radius {radius} m), not read from BARN's path files.
- Splits: test = worlds i % 6 == 0 (50, what the challenge's test script runs; never trained,
  tuned or selected on), train = the other 250. `nav-policy bench --suite barn-test|barn-train`.
"""


# ---- CLI --------------------------------------------------------------------------------------


def run_import_barn(args: Any) -> int:
    from nav_policy.sim.robot import load_robot_spec

    out = Path(args.out) if args.out else default_dir()
    radius = load_robot_spec().radius
    written = import_barn(args.repo, out, radius)
    print(f"wrote {len(written)} BARN worlds to {out} (reference lengths on our map, robot "
          f"radius {radius} m; test split i % 6 == 0: {len(split_indices('barn-test'))} worlds)")
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("import-barn", help="convert the BARN Challenge worlds to world YAML",
                       description="Convert jackal_helper/worlds/BARN/world_*.world of a BARN "
                                   "Challenge checkout (github.com/Daffan/the-barn-challenge) "
                                   "into world YAML with the challenge's start and goal.")
    p.add_argument("repo", metavar="REPO_DIR", help="checkout of the-barn-challenge")
    p.add_argument("--out", metavar="DIR", help="output folder (default sim/worlds/barn)")
    p.set_defaults(func=run_import_barn)
