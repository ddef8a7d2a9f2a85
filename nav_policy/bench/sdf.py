"""Benchmark worlds as Gazebo SDF 1.9 worlds (for running the same episodes in Gazebo).

Each world becomes `<tier>_<index>.sdf` with a ground plane, the four arena walls
(`wall_north`, `wall_south`, `wall_east`, `wall_west`), one static model per obstacle
(`box_<i>` / `cylinder_<i>`, i = index in World.obstacles) and one `<actor>` per moving
obstacle (`moving_<i>`) whose `<script><trajectory>` visits the waypoints and comes back at the
obstacle's speed, looping (the simulator's ping-pong motion), or, for a timed obstacle, its
(t, x, y) keys from `delay_start` = its first key's time, looping when the obstacle loops.
Beside it, `<tier>_<index>.yaml` is the world file (start, goal, shortest_path included; usable
as `nav-policy metrics --world`)
and `worlds.json` indexes everything written.
"""

from __future__ import annotations

import itertools
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nav_policy.bench.scenarios import scenarios
from nav_policy.sim.world import Box, Cylinder, MovingObstacle, World, plain

SDF_VERSION = "1.9"
WALL_NAMES: tuple[str, ...] = ("wall_north", "wall_south", "wall_east", "wall_west")
COLORS = {"ground": "0.8 0.8 0.8 1", "wall": "0.4 0.4 0.4 1", "obstacle": "0.35 0.35 0.35 1",
          "moving": "0.8 0.5 0.15 1"}


def _num(value: float) -> str:
    """Up to 6 decimals, trailing zeros dropped (micrometre / microsecond precision)."""
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _vec(*values: float) -> str:
    return " ".join(_num(v) for v in values)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _geometry(parent: ET.Element, shape: Box | Cylinder | MovingObstacle, height: float) -> None:
    geom = _sub(parent, "geometry")
    if isinstance(shape, Box):
        _sub(_sub(geom, "box"), "size", _vec(shape.size[0], shape.size[1], height))
    else:
        cyl = _sub(geom, "cylinder")
        _sub(cyl, "radius", _num(shape.radius))
        _sub(cyl, "length", _num(height))


def _link(parent: ET.Element, shape: Box | Cylinder | MovingObstacle, height: float,
          color: str) -> ET.Element:
    link = _sub(parent, "link", name="link")
    _geometry(_sub(link, "collision", name="collision"), shape, height)
    visual = _sub(link, "visual", name="visual")
    _geometry(visual, shape, height)
    material = _sub(visual, "material")
    for tag in ("ambient", "diffuse"):
        _sub(material, tag, color)
    return link


def _static_model(world_el: ET.Element, name: str, shape: Box | Cylinder, color: str) -> None:
    model = _sub(world_el, "model", name=name)
    _sub(model, "static", "true")
    yaw = shape.yaw if isinstance(shape, Box) else 0.0
    _sub(model, "pose", _vec(shape.center[0], shape.center[1], shape.height / 2, 0, 0, yaw))
    _link(model, shape, shape.height, color)


def _ground(world_el: ET.Element, world: World) -> None:
    model = _sub(world_el, "model", name="ground_plane")
    _sub(model, "static", "true")
    link = _sub(model, "link", name="link")
    for tag in ("collision", "visual"):
        el = _sub(link, tag, name=tag)
        plane = _sub(_sub(el, "geometry"), "plane")
        _sub(plane, "normal", "0 0 1")
        _sub(plane, "size", _vec(world.size[0] + 2, world.size[1] + 2))
        if tag == "visual":
            material = _sub(el, "material")
            for key in ("ambient", "diffuse"):
                _sub(material, key, COLORS["ground"])


def actor_waypoints(m: MovingObstacle) -> list[tuple[float, float, float]]:
    """(time s, x, y) along the waypoints and back to the first, at the obstacle's speed; for
    a timed obstacle its keys, times from its first key (the actor starts after delay_start)."""
    if m.trajectory:
        t0 = m.trajectory[0][0]
        keys = [(t - t0, x, y) for t, x, y in m.trajectory]
        return keys if len(keys) > 1 else keys + [(1.0, keys[0][1], keys[0][2])]
    pts = [(float(p[0]), float(p[1])) for p in m.waypoints]
    x0, y0 = pts[0]
    if m.speed <= 0 or len(pts) == 1:
        return [(0.0, x0, y0), (1.0, x0, y0)]
    out, t = [(0.0, x0, y0)], 0.0
    for (ax, ay), (bx, by) in itertools.pairwise(pts + pts[-2::-1]):
        t += math.hypot(bx - ax, by - ay) / m.speed
        out.append((t, bx, by))
    return out


def _actor(world_el: ET.Element, name: str, m: MovingObstacle) -> None:
    actor = _sub(world_el, "actor", name=name)
    x0, y0 = m.position(0.0)
    _sub(actor, "pose", _vec(x0, y0, m.height / 2, 0, 0, 0))
    _link(actor, m, m.height, COLORS["moving"])
    script = _sub(actor, "script")
    timed = bool(m.trajectory)
    _sub(script, "loop", "true" if not timed or m.loop else "false")
    _sub(script, "delay_start", _num(max(m.trajectory[0][0], 0.0)) if timed else "0")
    _sub(script, "auto_start", "true")
    traj = _sub(script, "trajectory", id="0", type="linear")
    for t, x, y in actor_waypoints(m):
        wp = _sub(traj, "waypoint")
        _sub(wp, "time", _num(t))
        _sub(wp, "pose", _vec(x, y, m.height / 2, 0, 0, 0))


def _scene(world_el: ET.Element) -> None:
    physics = _sub(world_el, "physics", name="1ms", type="ignored")
    _sub(physics, "max_step_size", "0.001")
    _sub(physics, "real_time_factor", "1.0")
    _sub(world_el, "gravity", "0 0 -9.81")
    light = _sub(world_el, "light", name="sun", type="directional")
    _sub(light, "cast_shadows", "true")
    _sub(light, "pose", "0 0 10 0 0 0")
    _sub(light, "diffuse", "0.8 0.8 0.8 1")
    _sub(light, "direction", "-0.5 0.1 -0.9")


def world_sdf(world: World) -> str:
    """The SDF 1.9 text of `world` (model names as in the module docstring)."""
    root = ET.Element("sdf", version=SDF_VERSION)
    world_el = _sub(root, "world", name=world.name)
    _scene(world_el)
    _ground(world_el, world)
    for name, wall in zip(WALL_NAMES, world.walls()):
        _static_model(world_el, name, wall, COLORS["wall"])
    for i, ob in enumerate(world.obstacles):
        kind = "box" if isinstance(ob, Box) else "cylinder"
        _static_model(world_el, f"{kind}_{i}", ob, COLORS["obstacle"])
    for i, m in enumerate(world.moving):
        _actor(world_el, f"moving_{i}", m)
    ET.indent(root)
    return '<?xml version="1.0"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def sidecar(world: World, tier: str, index: int, world_seed: int) -> dict[str, Any]:
    """The index entry of one exported world."""
    return {"file": f"{tier}_{index:03d}.sdf", "world_file": f"{tier}_{index:03d}.yaml",
            "name": world.name, "tier": tier, "index": index, "world_seed": world_seed,
            "start": [float(v) for v in world.start], "goal": [float(v) for v in world.goal],
            "shortest_path": world.shortest_path,
            "models": len(world.obstacles) + len(WALL_NAMES) + 1, "actors": len(world.moving)}


def export_worlds(tiers: Sequence[str], seed: int, count: int, out_dir: Path,
                  radius: float) -> list[dict[str, Any]]:
    """Write the first `count` benchmark worlds of each tier; returns the index entries."""
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for sc in scenarios(tiers, count, seed):
        world, _ = sc.world(radius)
        entry = sidecar(world, sc.tier, sc.index, sc.world_seed)
        (out_dir / entry["file"]).write_text(world_sdf(world))
        world.save(out_dir / entry["world_file"])
        entries.append(entry)
    index = {"seed": seed, "world_naming": "hashed", "tiers": list(tiers), "count": count,
             "robot_radius": radius,
             "worlds": entries}
    (out_dir / "worlds.json").write_text(json.dumps(plain(index), indent=2) + "\n")
    return entries
