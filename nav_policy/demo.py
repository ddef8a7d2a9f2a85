"""`nav-policy demo`: one headless simulated episode with a planner, and a top-down PNG.

The end-to-end demo (sim + ROS nodes + instruction) replaces this once those parts land.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run a simulated episode and write a top-down picture")
    p.add_argument("--headless", action="store_true", help="no GUI (the default here)")
    p.add_argument("--planner", default="dwa", help="rl | ebm | dwa | mppi")
    p.add_argument("--model", type=Path, help="ONNX model for rl/ebm (default: models/)")
    p.add_argument("--tier", default="medium")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("out/demo"))
    p.add_argument("--json", metavar="FILE", help="write the summary JSON ('-' = stdout)")
    p.set_defaults(func=run_demo)


def run_episode(planner_name: str, tier: str, seed: int, model: Path | None = None
                ) -> dict[str, Any]:
    import gymnasium as gym
    import numpy as np

    import nav_policy  # noqa: F401
    from nav_policy.codecs import encode_action
    from nav_policy.planners import make_planner

    env = gym.make("nav_policy/LocalNav-v0", tier=tier)
    base = env.unwrapped
    planner = make_planner(planner_name, robot=base.robot, model=model, seed=seed)
    env.reset(seed=seed, options={"tier": tier, "world_seed": seed})
    planner.reset()
    done, info, speeds = False, {}, [0.0]
    t0 = time.perf_counter()
    while not done:
        v, w = planner.compute(base.sensors())
        _, _, term, trunc, info = env.step(encode_action(v, w, base.action_spec))
        speeds.append(base.sim.v)
        done = term or trunc
    traj = np.array(base.trajectory)
    result = {
        "planner": planner_name, "tier": tier, "seed": seed, "world": base.world.name,
        "success": bool(info["is_success"]), "collision": bool(info["collision"]),
        "time_s": round(base.sim.t, 2),
        "path_length_m": round(float(np.hypot(*np.diff(traj[:, :2], axis=0).T).sum()), 3),
        "shortest_path_m": base.world.shortest_path, "wall_s": round(time.perf_counter() - t0, 2),
    }
    result["_render"] = (base.world, base.maps, traj, np.array(speeds), base.robot,
                         base.sensors())
    env.close()
    return result


def _picture(result: dict[str, Any], path: Path) -> None:
    from nav_policy.sim.render import REF_PATH, TopDown

    world, maps, traj, speeds, robot, frame = result["_render"]
    view = TopDown(world, 600)
    view.polyline(maps.path, REF_PATH, 1).goal(world.goal)
    view.speed_path(traj, speeds, robot.v_max)
    view.lidar(traj[-1], frame.ranges, frame.beam_angles())
    view.robot(traj[-1], robot.radius)
    view.save(str(path))


def run_demo(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    print("nav-policy demo: the full demo (sim + ROS nodes + instruction) lands with the ROS "
          "nodes; running one simulated episode.", file=sys.stderr)
    result = run_episode(args.planner, args.tier, args.seed, args.model)
    png = args.out / "trajectory.png"
    _picture(result, png)
    result.pop("_render")
    result["picture"] = str(png)
    text = json.dumps(result)
    if args.json == "-":
        print(text)
    elif args.json:
        Path(args.json).write_text(text + "\n")
    outcome = "reached the goal" if result["success"] else (
        "collided" if result["collision"] else "timed out")
    print(f"{args.planner} on {result['world']}: {outcome} in {result['time_s']} s, "
          f"path {result['path_length_m']} m (shortest {result['shortest_path_m']} m); "
          f"picture: {png}", file=sys.stderr)
    return 0 if result["success"] else 1
