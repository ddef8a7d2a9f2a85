"""Deceptive path planning benchmark (a script, not a test).

    python -m nav_policy.deception.bench --model models/dpp_ambiguity.onnx \
        --json runs/dpp_bench.json --markdown runs/dpp_bench.md --plots docs

On graphs drawn with a seed never used in training (a fresh graph per episode), for every
graph size and budget ratio, on the same start/goal/decoys for all planners:
  * goal reached within budget (RL with the guard),
  * LDP completion of RL vs pi_d2 at the same budget (pi_d2 as in baselines.plan_within_budget:
    the rmp plan when it fits the budget, else the shortest path),
  * tunability: LDP completion vs budget ratio (plot),
  * adaptivity: a decoy moved mid-route; deception w.r.t. the new decoy after the move, RL
    informed (features recomputed) vs RL uninformed vs the pi_d2 plan made for the old decoy,
  * a reference hand rule under the same guard (policy.RulePolicy), to show what learning adds,
  * runtime: per-goal Dijkstra precompute, RL time per decision (ego graph + ONNX, one
    thread), classical plan times — vs graph size (plot).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from nav_policy.deception.baselines import plan_within_budget
from nav_policy.deception.episode import Episode
from nav_policy.deception.metrics import (
    evaluate_path,
    last_point_completion,
    ldp,
    path_cost,
    step_costs,
)
from nav_policy.deception.policy import OnnxPolicy, RulePolicy, run_policy
from nav_policy.deception.problem import Problem
from nav_policy.deception.tasks import (
    GraphFamily,
    TaskConfig,
    make_graph,
    sample_endpoints,
)

CLASSICAL = ("shortest", "pi_d1", "pi_d2", "pi_d4")


def family(kind: str, size: int) -> GraphFamily:
    if kind == "grid":
        return GraphFamily("grid", (size,), (4, 8), (0.0, 0.2))
    return GraphFamily("rgg", (size,), mean_degree=(6.0, 10.0))


def draw_task(kind: str, size: int, rng: np.random.Generator, tasks: TaskConfig
              ) -> tuple[Problem, float]:
    """A fresh graph and endpoints (budget ratio 1; callers set the budget), and the time of
    the per-goal Dijkstra runs (true goal and each decoy) every planner starts from."""
    while True:
        graph = make_graph(family(kind, size), rng)
        ends = sample_endpoints(graph, tasks, rng, int(rng.integers(1, 3)))
        if ends is not None:
            t0 = time.perf_counter()
            problem = Problem.build(graph, ends[0], ends[1], ends[2], 1.0)
            return problem, time.perf_counter() - t0


def at_budget(problem: Problem, ratio: float) -> Problem:
    return Problem(problem.graph, problem.start, problem.goal, problem.decoys,
                   ratio * problem.optc, problem.dist)


def completion(problem: Problem, path: list[int], mode: str) -> float:
    """LDP completion (ambiguity) or last-exaggerated-point completion (exaggeration)."""
    if mode == "ambiguity":
        return ldp(problem, path)[1]
    return last_point_completion(problem, path, problem.exaggerated())[1]


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def run_cell(policy: OnnxPolicy, problem: Problem, ratio: float, precompute_s: float
             ) -> dict[str, Any]:
    """One task at one budget: RL and every classical planner, with timings."""
    p = at_budget(problem, ratio)
    roll, rl_s = timed(run_policy, p, policy)
    rl = evaluate_path(p, roll.path)
    density = "deceptive_density" if policy.mode == "ambiguity" else "exaggeration_density"
    row: dict[str, Any] = {
        "nodes": p.graph.num_nodes, "budget": ratio, "precompute_s": precompute_s,
        "rl_completion": completion(p, roll.path, policy.mode), "rl_density": rl[density],
        "rl_cost_ratio": rl["cost_ratio"],
        "rl_ok": bool(rl["goal_reached"] and rl["within_budget"] and not roll.truncated),
        "rl_decision_s": float(np.mean(roll.decision_seconds)) if roll.decisions else 0.0,
        "rl_decisions": roll.decisions, "rl_total_s": rl_s,
        "rl_guard_overrides": roll.masked_choices,
    }
    rule = run_policy(p, RulePolicy(policy.mode, policy.hops, policy.beta_per_edge))
    row["rule_completion"] = completion(p, rule.path, policy.mode)
    for name in CLASSICAL:
        plan, secs = timed(plan_within_budget, p, name)
        row[f"{name}_s"] = secs
        row[f"{name}_completion"] = completion(p, plan.path, policy.mode)
        row[f"{name}_cost_ratio"] = path_cost(p.graph, plan.path) / p.optc
        row[f"{name}_fallback"] = bool(plan.fallback_from)
    return row


def size_table(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Aggregate by (kind, size, budget)."""
    groups: dict[tuple[str, int, float], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["kind"], r["size"], r["budget"])].append(r)
    out = {}
    for (kind, size, budget), rs in sorted(groups.items()):
        rl = float(np.mean([r["rl_completion"] for r in rs]))
        d2 = float(np.mean([r["pi_d2_completion"] for r in rs]))
        out[f"{kind}:{size}:{budget}"] = {
            "kind": kind, "size": size, "budget": budget, "episodes": len(rs),
            "nodes_mean": float(np.mean([r["nodes"] for r in rs])),
            "goal_within_budget": float(np.mean([r["rl_ok"] for r in rs])),
            "rl_completion": rl, "pi_d2_completion": d2,
            "ratio_to_pi_d2": rl / d2 if d2 > 0 else float("inf"),
            "pi_d2_fits": float(np.mean([not r["pi_d2_fallback"] for r in rs])),
            "rl_density": float(np.mean([r["rl_density"] for r in rs])),
            "rl_cost_ratio": float(np.mean([r["rl_cost_ratio"] for r in rs])),
            "pi_d2_cost_ratio": float(np.mean([r["pi_d2_cost_ratio"] for r in rs])),
            "pi_d1_completion": float(np.mean([r["pi_d1_completion"] for r in rs])),
            "pi_d4_completion": float(np.mean([r["pi_d4_completion"] for r in rs])),
            "rule_completion": float(np.mean([r["rule_completion"] for r in rs])),
        }
    return out


def best_of(fn: Any, repeats: int) -> float:
    """Shortest of `repeats` timings of fn() in ms: robust to other jobs on a shared CPU."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


def runtime_case(policy: OnnxPolicy, problem: Problem, repeats: int) -> dict[str, float]:
    """Timings (ms) on one task at budget 1.5, each the best of `repeats` runs.

    re-target = reacting to a moved decoy: one new Dijkstra (from the new decoy) plus one
    decision for the policy; the same Dijkstra plus a full pi_d2 re-plan for pi_d2.
    """
    p = at_budget(problem, 1.5)
    g = p.graph
    out = {"nodes": float(g.num_nodes),
           "per_goal_dijkstra_ms": best_of(lambda: Problem.build(
               g, p.start, p.goal, list(p.decoys), 1.5), repeats),
           "one_dijkstra_ms": best_of(lambda: g.distances(p.goal), repeats)}
    for name in CLASSICAL:
        out[f"{name}_ms"] = best_of(lambda name=name: plan_within_budget(p, name), repeats)
    decisions = run_policy(p, policy).decisions
    out["rl_episode_ms"] = best_of(lambda: run_policy(p, policy), repeats)
    out["rl_decision_ms"] = out["rl_episode_ms"] / max(decisions, 1)
    out["retarget_rl_ms"] = out["one_dijkstra_ms"] + out["rl_decision_ms"]
    out["retarget_pi_d2_ms"] = out["one_dijkstra_ms"] + out["pi_d2_ms"]
    return out


def runtime_table(policy: OnnxPolicy, sizes: list[tuple[str, int]], tasks_per_size: int,
                  repeats: int, rng: np.random.Generator, tasks: TaskConfig
                  ) -> list[dict[str, Any]]:
    """Median over tasks of each best-of timing, per graph kind and size."""
    out = []
    for kind, size in sizes:
        cases = [runtime_case(policy, draw_task(kind, size, rng, tasks)[0], repeats)
                 for _ in range(tasks_per_size)]
        out.append({"kind": kind, "size": size,
                    **{k: float(np.median([c[k] for c in cases])) for k in cases[0]}})
        print(f"[bench] runtime {kind} {size} done", file=sys.stderr, flush=True)
    return out


# ---- tunability and adaptivity ------------------------------------------------------------
def tunability(policy: OnnxPolicy, problems: list[Problem], ratios: list[float]
               ) -> dict[str, list[float]]:
    rl, d2 = [], []
    for ratio in ratios:
        a, b = [], []
        for problem in problems:
            p = at_budget(problem, ratio)
            a.append(completion(p, run_policy(p, policy).path, policy.mode))
            b.append(completion(p, plan_within_budget(p, "pi_d2").path, policy.mode))
        rl.append(float(np.mean(a)))
        d2.append(float(np.mean(b)))
    return {"budgets": ratios, "rl_completion": rl, "pi_d2_completion": d2}


def adaptivity_case(policy: OnnxPolicy, problem: Problem, new_decoy: int,
                    move_frac: float = 0.3) -> dict[str, float]:
    """Move decoy 0 to `new_decoy` once the walk has spent move_frac of the budget."""
    moved = problem.with_decoys([new_decoy, *problem.decoys[1:]])

    def results(path: list[int], moved_at: int) -> dict[str, float]:
        after = np.asarray(path[moved_at:])
        return {"after_density": float(np.mean(~moved.truthful()[after])),
                "completion": ldp(moved, path)[1]}

    state = {"moved_at": -1}

    def informed(ep: Episode) -> None:
        if state["moved_at"] < 0 and ep.spent >= move_frac * problem.budget:
            state["moved_at"] = len(ep.path) - 1
            ep.set_decoys(moved.decoys)

    out = {}
    path = run_policy(problem, policy, on_step=informed).path
    out.update({f"informed_{k}": v for k, v in results(path, max(state["moved_at"], 0)).items()})
    for name, other in (("uninformed", run_policy(problem, policy).path),
                        ("pi_d2_old", plan_within_budget(problem, "pi_d2").path)):
        at = index_at_cost(problem, other, move_frac * problem.budget)
        out.update({f"{name}_{k}": v for k, v in results(other, at).items()})
    return out


def index_at_cost(problem: Problem, path: list[int], cost: float) -> int:
    """First path index whose cumulative cost reaches `cost` (the last index if never)."""
    cum = np.concatenate([[0.0], np.cumsum(step_costs(problem.graph, path))])
    return min(int(np.searchsorted(cum, cost)), len(path) - 1)


def adaptivity(policy: OnnxPolicy, problems: list[Problem], rng: np.random.Generator,
               tasks: TaskConfig) -> dict[str, float]:
    cases = []
    for problem in problems:
        ends = sample_endpoints(problem.graph, tasks, rng, 1)
        if ends is None or ends[2][0] in (problem.goal, problem.start):
            continue
        cases.append(adaptivity_case(policy, problem, ends[2][0]))
    keys = cases[0].keys() if cases else []
    return {"episodes": len(cases), **{k: float(np.mean([c[k] for c in cases])) for k in keys}}


# ---- plots and markdown -------------------------------------------------------------------
def plot_tunability(tune: dict[str, Any], path: Path, title: str,
                    ylabel: str = "last deceptive point, path completion") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for k, (key, fam) in enumerate(tune.items()):
        color = f"C{k}"
        ax.plot(fam["budgets"], fam["rl_completion"], "o-", color=color,
                label=f"GNN policy, {key}")
        ax.plot(fam["budgets"], fam["pi_d2_completion"], "s--", color=color, alpha=0.7,
                label=f"pi_d2 at the same budget, {key}")
    ax.set_xlabel("budget ratio (x optimal cost)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


RUNTIME_LINES = (
    ("rl_decision_ms", "GNN policy, per decision", "o-"),
    ("retarget_rl_ms", "GNN policy, re-target (1 Dijkstra + 1 decision)", "o:"),
    ("per_goal_dijkstra_ms", "per-goal Dijkstra (goal + decoys)", "k:"),
    ("pi_d2_ms", "pi_d2 plan", "s--"),
    ("pi_d4_ms", "pi_d4 plan", "^--"),
    ("shortest_ms", "shortest plan", "x--"),
)


def plot_runtime(rt: list[dict[str, Any]], path: Path) -> None:
    """One panel per graph kind, time vs nodes on log-log axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in ("grid", "rgg") if any(r["kind"] == k for r in rt)]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.0 * len(kinds), 3.8), sharey=True,
                             squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        rows = sorted((r for r in rt if r["kind"] == kind), key=lambda r: r["nodes"])
        n = [r["nodes"] for r in rows]
        for key, label, style in RUNTIME_LINES:
            ax.plot(n, [r[key] for r in rows], style, label=label, ms=4)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("graph nodes")
        ax.set_title("grids with obstacles" if kind == "grid" else "random geometric graphs",
                     fontsize=9)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("time (ms; best of repeats, median over tasks)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_plots(result: dict[str, Any], plots: Path) -> None:
    """The tunability and runtime figures of a result dict (also used by --replot)."""
    mode = result["mode"]
    tag = "" if mode == "ambiguity" else "_exaggeration"
    plots.mkdir(parents=True, exist_ok=True)
    plot_tunability(result["tunability"], plots / f"dpp_deception_vs_budget{tag}.png",
                    f"Deception ({mode}) vs budget (unseen graphs, mean over tasks)",
                    "last deceptive point, path completion" if mode == "ambiguity"
                    else "last exaggerated point, path completion")
    plot_runtime(result["runtime"], plots / f"dpp_runtime{tag}.png")


def markdown(table: dict[str, dict[str, Any]], rt: list[dict[str, Any]], mode: str) -> str:
    metric = "LDP completion" if mode == "ambiguity" else "last exaggerated point completion"
    header = (f"| graph | nodes | budget | n | goal within budget | {metric} RL | "
              f"{metric} pi_d2 | RL / pi_d2 | pi_d2 fits budget | RL cost ratio | "
              "pi_d2 cost ratio | rule (reference) |")
    lines = [header, "|" + "---|" * 12]
    for c in table.values():
        name = f"grid {c['size']}x{c['size']}" if c["kind"] == "grid" else f"RGG {c['size']}"
        lines.append(f"| {name} | {c['nodes_mean']:.0f} | {c['budget']:.1f} | {c['episodes']} | "
                     f"{c['goal_within_budget']:.0%} | {c['rl_completion']:.3f} | "
                     f"{c['pi_d2_completion']:.3f} | {c['ratio_to_pi_d2']:.2f} | "
                     f"{c['pi_d2_fits']:.0%} | {c['rl_cost_ratio']:.2f} | "
                     f"{c['pi_d2_cost_ratio']:.2f} | {c['rule_completion']:.3f} |")
    runtime_header = ("| graph | nodes | per-goal Dijkstra ms | RL ms/decision | RL ms/episode | "
                      "shortest ms | pi_d1 ms | pi_d2 ms | pi_d4 ms | re-target RL ms | "
                      "re-target pi_d2 ms |")
    lines += ["", runtime_header, "|" + "---|" * 11]
    for r in rt:
        name = f"grid {r['size']}x{r['size']}" if r["kind"] == "grid" else f"RGG {r['size']}"
        lines.append(f"| {name} | {r['nodes']:.0f} | {r['per_goal_dijkstra_ms']:.2f} | "
                     f"{r['rl_decision_ms']:.3f} | {r['rl_episode_ms']:.1f} | "
                     f"{r['shortest_ms']:.2f} | {r['pi_d1_ms']:.2f} | {r['pi_d2_ms']:.2f} | "
                     f"{r['pi_d4_ms']:.2f} | {r['retarget_rl_ms']:.2f} | "
                     f"{r['retarget_pi_d2_ms']:.2f} |")
    return "\n".join(lines) + "\n"


# ---- main ---------------------------------------------------------------------------------
def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("models/dpp_ambiguity.onnx"))
    p.add_argument("--grid-sizes", type=_ints, default=[8, 16, 32, 64, 100])
    p.add_argument("--rgg-sizes", type=_ints, default=[50, 200, 1000, 5000])
    p.add_argument("--budgets", type=_floats, default=[1.2, 1.5, 2.0])
    p.add_argument("--episodes", type=int, default=20, help="tasks per graph size")
    p.add_argument("--tune-budgets", type=_floats,
                   default=[1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.8, 2.0, 2.2, 2.5])
    p.add_argument("--tune-episodes", type=int, default=30)
    p.add_argument("--adapt-episodes", type=int, default=40)
    p.add_argument("--runtime-tasks", type=int, default=10, help="tasks per size for timing")
    p.add_argument("--repeats", type=int, default=3, help="timings per task (best is kept)")
    p.add_argument("--seed", type=int, default=424242, help="never used in training")
    p.add_argument("--json", type=Path, default=Path("runs/dpp_bench.json"))
    p.add_argument("--markdown", type=Path, default=Path("runs/dpp_bench.md"))
    p.add_argument("--plots", type=Path, default=Path("docs"))
    p.add_argument("--replot", type=Path, metavar="JSON",
                   help="only redraw the figures of an earlier --json result")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.replot is not None:
        write_plots(json.loads(args.replot.read_text()), args.plots)
        return 0
    policy = OnnxPolicy(args.model)
    tasks = TaskConfig()
    rng = np.random.default_rng(args.seed)
    t_start = time.time()
    rows: list[dict[str, Any]] = []
    for kind, sizes in (("grid", args.grid_sizes), ("rgg", args.rgg_sizes)):
        for size in sizes:
            t0 = time.time()
            for _ in range(args.episodes):
                problem, pre_s = draw_task(kind, size, rng, tasks)
                for ratio in args.budgets:
                    rows.append({"kind": kind, "size": size,
                                 **run_cell(policy, problem, ratio, pre_s)})
            print(f"[bench] {kind} {size}: {time.time() - t0:.1f} s", file=sys.stderr, flush=True)
    table = size_table(rows)
    sizes = [("grid", n) for n in args.grid_sizes] + [("rgg", n) for n in args.rgg_sizes]
    rt = runtime_table(policy, sizes, args.runtime_tasks, args.repeats, rng, tasks)
    tune, adapt = {}, {}
    for kind, size in (("grid", 16), ("rgg", 200)):
        probs = [draw_task(kind, size, rng, tasks)[0] for _ in range(args.tune_episodes)]
        tune[f"{kind} {size}"] = tunability(policy, probs, args.tune_budgets)
        adapt_probs = [at_budget(draw_task(kind, size, rng, tasks)[0], 1.8)
                       for _ in range(args.adapt_episodes)]
        adapt[f"{kind} {size}"] = adaptivity(policy, adapt_probs, rng, tasks)
        print(f"[bench] tunability/adaptivity {kind} {size} done", file=sys.stderr, flush=True)
    result = {"model": str(args.model), "mode": policy.mode, "seed": args.seed,
              "episodes_per_size": args.episodes, "wall_s": time.time() - t_start,
              "table": table, "runtime": rt, "tunability": tune, "adaptivity": adapt,
              "rows": rows}
    write_plots(result, args.plots)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(table, rt, policy.mode)
    args.markdown.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
