"""`nav-policy deceive`: a deceptive path on a graph file, as one JSON object.

    nav-policy deceive --graph FILE --start S --goal G --decoy D [--decoy D2 ...]
                       [--mode ambiguity|exaggeration] [--budget RATIO]
                       [--policy rl|pi_d1|pi_d2|pi_d4|shortest] [--model FILE] [--json FILE|-]

Output: {"path": [node ids], "cost": float, "metrics": {...}}. Without --json the object is
printed (indented) on stdout; `--json -` prints it as exactly one line on stdout; `--json FILE`
writes it and prints a one-line summary on stderr. Bad input exits 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

POLICIES = ("rl", "pi_d1", "pi_d2", "pi_d4", "shortest")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("deceive", help="plan a deceptive path on a weighted graph (JSON out)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--graph", type=Path, required=True, help="node-link JSON graph file")
    p.add_argument("--start", type=int, required=True, help="start node id")
    p.add_argument("--goal", type=int, required=True, help="true goal node id")
    p.add_argument("--decoy", type=int, action="append", required=True,
                   help="decoy goal node id (repeat for several)")
    p.add_argument("--mode", choices=["ambiguity", "exaggeration"], default="ambiguity")
    p.add_argument("--budget", type=float, default=1.5,
                   help="path cost budget as a multiple of optc(start, goal) (default 1.5)")
    p.add_argument("--policy", choices=POLICIES, default="rl")
    p.add_argument("--model", type=Path, help="dpp ONNX model (default models/dpp_<mode>.onnx)")
    p.add_argument("--observer", choices=["costdif", "boltzmann"], default="costdif",
                   help="observer used for the reported P(true goal)")
    p.add_argument("--beta", type=float, default=1.0,
                   help="observer beta per median edge weight (default 1)")
    p.add_argument("--json", metavar="FILE|-", help="write the JSON to FILE, or '-' for stdout")
    p.set_defaults(func=run_deceive)


def plan_path(args: argparse.Namespace) -> dict[str, Any]:
    """Plan and score; raises NavPolicyError subclasses on bad input."""
    from nav_policy.deception.baselines import plan_within_budget
    from nav_policy.deception.graphs import load_graph
    from nav_policy.deception.metrics import evaluate_path, path_cost
    from nav_policy.deception.observers import Observer, scaled_beta
    from nav_policy.deception.problem import Problem

    graph = load_graph(args.graph)
    problem = Problem.from_ids(graph, args.start, args.goal, list(args.decoy), args.budget)
    info: dict[str, Any] = {"policy": args.policy, "mode": args.mode}
    if args.policy == "rl":
        path, extra = _run_rl(problem, args)
        info.update(extra)
    else:
        plan = plan_within_budget(problem, args.policy)
        path = plan.path
        info["fallback_from"] = plan.fallback_from
    observer = Observer(args.observer, scaled_beta(args.beta, graph.median_edge()))
    metrics = {**info, **evaluate_path(problem, path, observer)}
    return {"path": [int(graph.ids[i]) for i in path], "cost": path_cost(graph, path),
            "metrics": metrics}


def _run_rl(problem: Any, args: argparse.Namespace) -> tuple[list[int], dict[str, Any]]:
    from nav_policy.deception.policy import OnnxPolicy, default_model, run_policy

    model = args.model or default_model(args.mode)
    policy = OnnxPolicy(model)
    roll = run_policy(problem, policy, args.mode)
    return roll.path, {"model": str(model), "guard_overrides": roll.masked_choices,
                       "guard_interventions": roll.guard_interventions,
                       "truncated": roll.truncated, "decisions": roll.decisions}


def run_deceive(args: argparse.Namespace) -> int:
    from nav_policy.errors import ConfigError

    if args.beta <= 0:
        raise ConfigError(f"--beta must be > 0, got {args.beta}")
    result = plan_path(args)
    if args.json == "-":
        sys.stdout.write(json.dumps(result) + "\n")
    elif args.json:
        try:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        except OSError as exc:
            raise ConfigError(f"cannot write {args.json}: {exc.strerror or exc}") from exc
        m = result["metrics"]
        print(f"wrote {args.json}: {len(result['path'])} nodes, cost ratio {m['cost_ratio']:.3f}"
              f", LDP completion {m['ldp_completion']:.3f}", file=sys.stderr)
    else:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


__all__ = ["POLICIES", "add_parsers", "plan_path", "run_deceive"]
