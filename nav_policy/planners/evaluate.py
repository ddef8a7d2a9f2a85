"""Quick, rerunnable success-rate check of a classical planner on LocalNav-v0.

    python -m nav_policy.planners.evaluate --planner dwa --tier easy --episodes 30 --seed 0
    python -m nav_policy.planners.evaluate --planner mppi --tier hard --episodes 30 --seed 0 \
        --with-path --param w_goal=4.0 --json -

Episode i uses env.reset(seed=S+i, options={"tier": T, "world_seed": S+i}) and the planner is
built with seed S+i, so the same command gives the same numbers. Goal-only mode (frame.path
None) unless --with-path, which feeds the grid shortest path on the static map
(nav_policy.planners.global_path). 10 Hz control, 500-step limit (the env's registration).
Weights were tuned on seeds 1000-1099; report on other seeds (0..29).

This is the planners' own acceptance check; the benchmark harness (nav-policy bench) is the
place for SPL/BARN comparisons across planners.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from typing import Any, cast

import gymnasium as gym
import numpy as np
import yaml

from nav_policy.envs.local_nav import LocalNavEnv
from nav_policy.envs.registration import LOCAL_NAV_ID
from nav_policy.errors import NavPolicyError
from nav_policy.planners import CLASSICAL_PLANNERS, make_planner
from nav_policy.planners.base import LocalPlanner
from nav_policy.planners.episode import drive
from nav_policy.planners.global_path import global_path
from nav_policy.sim.generate import TIERS


@dataclass
class Episode:
    seed: int
    outcome: str  # success | collision | timeout
    steps: int
    path_length: float
    shortest: float
    compute_s: list[float]


def run_episode(env: gym.Env, planner: LocalPlanner, tier: str, seed: int,
                with_path: bool) -> Episode:
    """One seeded episode; returns its outcome and the planner's per-step compute times."""
    env.reset(seed=seed, options={"tier": tier, "world_seed": seed})
    base = cast(LocalNavEnv, env.unwrapped)
    assert base.world is not None and base.maps is not None
    path = global_path(base.world, base.robot.radius) if with_path else None
    run = drive(env, planner, path=path)
    traj = np.array(base.trajectory)[:, :2]
    driven = float(np.hypot(*np.diff(traj, axis=0).T).sum()) if len(traj) > 1 else 0.0
    return Episode(seed=seed, outcome=run.outcome, steps=run.steps, path_length=driven,
                   shortest=float(base.maps.length), compute_s=list(run.compute_ns / 1e9))


def summarise(episodes: list[Episode]) -> dict[str, Any]:
    """Rates, SPL and compute-time percentiles (microseconds) over episodes."""
    n = len(episodes)
    outcomes = [e.outcome for e in episodes]
    times = np.concatenate([e.compute_s for e in episodes]) if episodes else np.zeros(1)
    spl = [float(e.outcome == "success") * e.shortest / max(e.path_length, e.shortest)
           for e in episodes]
    return {
        "episodes": n,
        "success_rate": outcomes.count("success") / n,
        "collision_rate": outcomes.count("collision") / n,
        "timeout_rate": outcomes.count("timeout") / n,
        "spl": float(np.mean(spl)),
        "success_steps_mean": float(np.mean([float(e.steps) for e in episodes
                                             if e.outcome == "success"] or [math.nan])),
        "compute_us_p50": float(np.percentile(times, 50) * 1e6),
        "compute_us_p99": float(np.percentile(times, 99) * 1e6),
        "failures": {e.seed: e.outcome for e in episodes if e.outcome != "success"},
    }


def _param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m nav_policy.planners.evaluate",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--planner", required=True, choices=CLASSICAL_PLANNERS)
    ap.add_argument("--tier", default="easy", choices=tuple(TIERS))
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--with-path", action="store_true", help="feed the global grid path")
    ap.add_argument("--param", type=_param, action="append", default=[],
                    help="planner parameter override KEY=VALUE (repeatable)")
    ap.add_argument("--json", metavar="FILE|-", help="write the summary as JSON ('-' = stdout)")
    ap.add_argument("--verbose", action="store_true", help="one line per episode on stderr")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.episodes < 1:
        print("error: --episodes must be >= 1", file=sys.stderr)
        return 2
    params = dict(args.param)
    env = gym.make(LOCAL_NAV_ID, tier=args.tier)
    episodes: list[Episode] = []
    try:
        for i in range(args.episodes):
            seed = args.seed + i
            robot = cast(LocalNavEnv, env.unwrapped).robot
            planner = make_planner(args.planner, robot=robot, seed=seed, **params)
            ep = run_episode(env, planner, args.tier, seed, args.with_path)
            episodes.append(ep)
            if args.verbose:
                print(f"seed {seed}: {ep.outcome} in {ep.steps} steps, "
                      f"{ep.path_length:.2f} m (shortest {ep.shortest:.2f} m)", file=sys.stderr)
    except NavPolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        env.close()
    summary = {"planner": args.planner, "tier": args.tier, "seed": args.seed,
               "world_naming": "sequential",
               "with_path": args.with_path, "params": params, **summarise(episodes)}
    if args.json:
        text = json.dumps(summary, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as fh:
                fh.write(text + "\n")
    if args.json != "-":
        print(f"{args.planner} {args.tier} seeds {args.seed}..{args.seed + args.episodes - 1}"
              f"{' with path' if args.with_path else ''}: success {summary['success_rate']:.2f} "
              f"collision {summary['collision_rate']:.2f} timeout {summary['timeout_rate']:.2f} "
              f"SPL {summary['spl']:.2f} steps {summary['success_steps_mean']:.0f} "
              f"compute p50 {summary['compute_us_p50'] / 1e3:.1f} ms "
              f"p99 {summary['compute_us_p99'] / 1e3:.1f} ms", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
