"""How closely the MuJoCo and PyBullet backends agree, in figures (the tests hold the bounds).

    python -m nav_policy.bench.parity [--worlds 5] [--poses 20] [--episodes 10] [--seed 100]
        [--json FILE]

Per tier: lidar beams from collision-free poses along each world's shortest path (moving
obstacles at advancing times), each backend against the exact caster
(nav_policy.sim.exact_lidar) and against each other; then episodes with the same seeded
forward-biased random actions on both backends, noise off: same length and outcome or not.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from nav_policy.sim.exact_lidar import exact_scan
from nav_policy.sim.generate import TIERS, generate_world
from nav_policy.sim.robot import load_robot_spec
from nav_policy.sim.simulator import make_simulator


def _gap(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        d = np.abs(u - v)
    d[np.isinf(u) & np.isinf(v)] = 0.0
    return d


def lidar_parity(tier: str, worlds: int, poses: int, seed: int) -> dict[str, Any]:
    robot = load_robot_spec()
    lid = robot.lidar
    sims = {b: make_simulator(robot, b) for b in ("mujoco", "pybullet")}
    gaps: dict[str, list[np.ndarray]] = {"mujoco_exact": [], "pybullet_exact": [], "between": []}
    kinds = []
    for w in range(worlds):
        world, maps = generate_world(tier, seed + w, robot.radius)
        for sim in sims.values():
            sim.load_world(world)
        rng = np.random.default_rng(seed + w)
        path = maps.path
        for k, i in enumerate(np.linspace(1, len(path) - 2, poses).astype(int)):
            x, y = (float(v) for v in path[i])
            t = 0.5 * k
            if float(world.clearance(np.array(x), np.array(y), t=t)) <= robot.radius + 0.01:
                continue
            pose = (x, y, float(rng.uniform(-np.pi, np.pi)))
            scans = {}
            for b, sim in sims.items():
                sim.reset(pose)
                sim.t = t
                sim._move_obstacles()
                sim._place_robot()
                scans[b] = sim.scan().astype(np.float64)
            ref, kind = exact_scan(world, x, y, pose[2] + sims["mujoco"].beam_angles, t,
                                   lid.range_max, lid.height)
            gaps["mujoco_exact"].append(_gap(scans["mujoco"], ref))
            gaps["pybullet_exact"].append(_gap(scans["pybullet"], ref))
            gaps["between"].append(_gap(scans["mujoco"], scans["pybullet"]))
            kinds.append(kind)
    for sim in sims.values():
        sim.close()
    g = {k: np.concatenate(v) for k, v in gaps.items()}
    kind = np.concatenate(kinds)
    flat, cyl = kind == 0, kind > 0
    between = g["between"]
    return {
        "beams": int(between.size), "box_or_wall_beams": int(flat.sum()),
        "cylinder_beams": int(cyl.sum()),
        "mujoco_vs_exact_max_m": float(g["mujoco_exact"].max()),
        "pybullet_vs_exact_max_finite_m": float(np.max(g["pybullet_exact"][
            np.isfinite(g["pybullet_exact"])])),
        "within_1mm": float(np.mean(between <= 1e-3)),
        "within_1mm_box_or_wall": float(np.mean(between[flat] <= 1e-3)),
        "within_1mm_cylinder": float(np.mean(between[cyl] <= 1e-3)),
        "within_1cm": float(np.mean(between <= 1e-2)),
        "over_5cm": int(np.sum(between > 0.05)),
        "difference_is_pybullets": bool(np.allclose(
            between, g["pybullet_exact"], rtol=0.0, atol=1e-5, equal_nan=True)),
    }


def episode_parity(tier: str, episodes: int, seed: int) -> dict[str, Any]:
    import gymnasium as gym

    from nav_policy.envs.registration import LOCAL_NAV_ID

    same = 0
    outcomes: dict[str, int] = {}
    for e in range(episodes):
        rng = np.random.default_rng(seed + e)
        actions = np.column_stack([rng.uniform(0.2, 1.0, 500), rng.uniform(-0.6, 0.6, 500)])
        ends = []
        for backend in ("mujoco", "pybullet"):
            env = gym.make(LOCAL_NAV_ID, tier=tier, backend=backend)
            env.reset(seed=seed + e, options={"world_seed": seed + e})
            end: tuple[Any, ...] = ()
            for n, a in enumerate(actions.astype(np.float32), 1):
                _, _, term, trunc, info = env.step(a)
                if term or trunc:
                    end = (n, bool(info["is_success"]), bool(info["collision"]), bool(trunc))
                    break
            env.close()
            ends.append(end)
        same += int(ends[0] == ends[1])
        key = "goal" if ends[0][1] else "collision" if ends[0][2] else "timeout"
        outcomes[key] = outcomes.get(key, 0) + 1
    return {"episodes": episodes, "same_length_and_outcome": same, "mujoco_outcomes": outcomes}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m nav_policy.bench.parity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worlds", type=int, default=5, help="worlds per tier for the lidar")
    p.add_argument("--poses", type=int, default=20, help="poses per world")
    p.add_argument("--episodes", type=int, default=10, help="episodes per tier (0: skip)")
    p.add_argument("--seed", type=int, default=100, help="first world seed")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = p.parse_args(argv)
    command = " ".join(["python -m nav_policy.bench.parity", *(sys.argv[1:] if argv is None
                                                             else argv)])
    rows = {}
    for tier in TIERS:
        rows[tier] = lidar_parity(tier, args.worlds, args.poses, args.seed)
        if args.episodes:
            rows[tier] |= episode_parity(tier, args.episodes, args.seed)
        print(f"  {tier}: {rows[tier]}", file=sys.stderr)
    lines = ["| tier | beams | MuJoCo vs exact, max | PyBullet vs exact, max | within 1 mm "
             "| boxes/walls within 1 mm | cylinders within 1 mm | within 1 cm | > 5 cm "
             "| episodes with the same length and outcome |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for tier, r in rows.items():
        eps = (f"{r['same_length_and_outcome']} / {r['episodes']}" if "episodes" in r else "-")
        lines.append(f"| {tier} | {r['beams']} | {r['mujoco_vs_exact_max_m']:.1e} m "
                     f"| {r['pybullet_vs_exact_max_finite_m']:.3f} m | {r['within_1mm']:.2%} "
                     f"| {r['within_1mm_box_or_wall']:.2%} | {r['within_1mm_cylinder']:.2%} "
                     f"| {r['within_1cm']:.2%} | {r['over_5cm']} | {eps} |")
    print(f"`{command}`\n\n" + "\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": command, "tiers": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
