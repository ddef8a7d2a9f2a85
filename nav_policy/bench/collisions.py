"""How a planner's collisions happen: the last steps before each one, from benchmark episodes.

    python -m nav_policy.bench.collisions --planner rl --tier hard --episodes 20 --seed 0 \\
        --json out/collisions_rl_hard.json

Runs the benchmark's episodes (same worlds and seeds as `nav-policy bench`), records per step
the executed (v, w) and the closest lidar return (clearance = range - radius, and its bearing in
the robot frame), and for each collision reports the approach: speed and turn rate at impact,
the bearing of the obstacle, the clearance `--last` steps before, and the closing rate. The
summary says whether the collisions are head-on (|bearing| < 30 deg), oblique (30-90 deg) or
from behind/side, and at what speed. `--safety-layer` runs the planner behind the node's safety
layer (as `nav-policy bench --safety-layer`).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from typing import Any

import numpy as np

from nav_policy.errors import NavPolicyError


def approach(trace: np.ndarray, last: int) -> dict[str, float]:
    """The approach to a collision from an episode's trace (rows v, w, clearance, bearing; the
    last row is the step into the collision)."""
    tail = trace[-last:]
    clr = tail[:, 2]
    steps = len(tail)
    closing = (clr[0] - clr[-1]) / max(steps - 1, 1) if steps > 1 else math.nan
    return {"v": float(tail[-1, 0]), "w": float(tail[-1, 1]),
            "bearing_deg": float(np.degrees(tail[-1, 3])),
            "clearance_at_impact_step": float(clr[-1]),
            "clearance_before": float(clr[0]), "steps_before": steps - 1,
            "closing_m_per_step": float(closing)}


def kind(bearing_deg: float) -> str:
    b = abs(bearing_deg)
    return "head-on" if b < 30 else "oblique" if b <= 90 else "side/behind"


def summarize(rows: list[dict[str, Any]], v_max: float) -> dict[str, Any]:
    """Outcome rates, and over the collisions: kinds, speeds, clearances."""
    n = len(rows)
    out: dict[str, Any] = {"episodes": n}
    for k in ("success", "collision", "timeout"):
        out[f"{k}_rate"] = sum(r["outcome"] == k for r in rows) / n if n else math.nan
    ok = [r["min_clearance"] for r in rows if r["outcome"] == "success"]
    out["median_min_clearance_successes"] = float(np.median(ok)) if ok else math.nan
    col = [r["approach"] for r in rows if r["outcome"] == "collision"]
    out["collisions"] = len(col)
    if col:
        out["kinds"] = {k: sum(kind(a["bearing_deg"]) == k for a in col) / len(col)
                        for k in ("head-on", "oblique", "side/behind")}
        out["median_speed_at_impact"] = float(np.median([a["v"] for a in col]))
        out["at_full_speed"] = sum(a["v"] >= 0.9 * v_max for a in col) / len(col)
        out["median_abs_bearing_deg"] = float(np.median([abs(a["bearing_deg"]) for a in col]))
        out["median_clearance_before"] = float(np.median([a["clearance_before"] for a in col]))
        out["median_closing_m_per_step"] = float(np.median([a["closing_m_per_step"]
                                                            for a in col]))
    return out


def main(argv: list[str] | None = None) -> int:
    from nav_policy.bench.cli import emit_json, stdout_to_stderr
    from nav_policy.bench.runner import (
        BenchConfig,
        PlannerSpec,
        check_planner_names,
        make_tasks,
        preflight,
        run_tasks,
    )
    from nav_policy.bench.scenarios import parse_tiers
    from nav_policy.sim.robot import load_robot_spec

    ap = argparse.ArgumentParser(prog="python -m nav_policy.bench.collisions",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--planner", required=True, help="rl, ebm, dwa or mppi")
    ap.add_argument("--model", help="model file of a learned planner (default: the shipped one)")
    ap.add_argument("--tier", action="append", help="tiers (default hard)")
    ap.add_argument("--episodes", type=int, default=20, help="episodes per tier (default 20)")
    ap.add_argument("--seed", type=int, default=0, help="benchmark seed (default 0)")
    ap.add_argument("--last", type=int, default=10,
                    help="steps before a collision to look back (default 10 = 1 s)")
    ap.add_argument("--safety-layer", nargs="?", const="approach", default="",
                    choices=["approach", "zones"], metavar="MODEL",
                    help="commands through the node's safety layer, as served (collision model "
                         "approach, the node's default, or zones)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--json", metavar="FILE|-", help="write the results as JSON")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        if args.episodes < 1 or args.last < 2 or args.workers < 1:
            raise NavPolicyError("--episodes and --workers must be >= 1, --last >= 2")
        check_planner_names([args.planner])
        tiers = parse_tiers(args.tier or ["hard"])
        spec = PlannerSpec(args.planner, args.model)
        robot = load_robot_spec()
        preflight([spec], robot)
    except NavPolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cfg = BenchConfig(planners=(spec,), tiers=tuple(tiers), episodes=args.episodes,
                      seed=args.seed, workers=args.workers, safety_layer=args.safety_layer)
    tasks = [replace(t, trace=True) for t in make_tasks(cfg)]
    with stdout_to_stderr(args.json == "-"):
        results = run_tasks(tasks, args.workers, None, not args.no_progress)
    by_tier: dict[str, list[dict[str, Any]]] = {t: [] for t in tiers}
    for res in results:
        m = res.metrics
        outcome = "success" if m["success"] else "collision" if m["collision"] else "timeout"
        row = {"world_seed": res.scenario.world_seed, "outcome": outcome,
               "steps": len(res.trace), "min_clearance": float(np.min(res.trace[:, 2]))}
        if outcome == "collision":
            row["approach"] = approach(res.trace, args.last)
        by_tier[res.scenario.tier].append(row)
    payload = {"planner": args.planner, "model": args.model, "tiers": tiers,
               "episodes": args.episodes, "seed": args.seed, "last": args.last,
               "safety_layer": args.safety_layer,
               "summary": {t: summarize(rows, robot.v_max) for t, rows in by_tier.items()},
               "episodes_by_tier": by_tier}
    out = sys.stderr if args.json == "-" else sys.stdout
    for tier, s in payload["summary"].items():
        line = (f"{args.planner} {tier}: success {s['success_rate']:.2f}, collision "
                f"{s['collision_rate']:.2f}, timeout {s['timeout_rate']:.2f}; median min clearance "
                f"in successes {s['median_min_clearance_successes']:.3f} m")
        print(line, file=out)
        if s["collisions"]:
            kinds = ", ".join(f"{k} {v:.0%}" for k, v in s["kinds"].items())
            print(f"  {s['collisions']} collisions: {kinds}; median speed at impact "
                  f"{s['median_speed_at_impact']:.2f} m/s ({s['at_full_speed']:.0%} at >= 0.9 "
                  f"v_max), |bearing| {s['median_abs_bearing_deg']:.0f} deg, clearance "
                  f"{s['median_clearance_before']:.3f} m {args.last - 1} steps before, closing "
                  f"{100 * s['median_closing_m_per_step']:.1f} cm/step", file=out)
    if args.json:
        emit_json(payload, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
