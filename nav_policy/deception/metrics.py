"""Deceptive path metrics (docs/DESIGN.md, "Deceptive path planning").

* truthful node: costdif(s, g_r, n) < costdif(s, g, n) for every decoy g; else deceptive.
* last deceptive point (LDP): the last deceptive node of the path; its *completion* is the
  path cost up to it divided by the whole path cost (0 when only the start is deceptive).
* deceptive density: fraction of the path's nodes that are deceptive.
* exaggeration density / completion: the same with "some decoy strictly more likely than
  the true goal" (the exaggeration objective) in place of "deceptive".
* cost ratio: c(path) / optc(s, g_r); within budget: c(path) <= budget (1e-9 relative slack).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nav_policy.deception.graphs import Graph, GraphError
from nav_policy.deception.observers import Observer, ObserverKind, scaled_beta
from nav_policy.deception.problem import Problem


def step_costs(graph: Graph, path: list[int]) -> np.ndarray:
    """Cost of each edge of the walk (len(path) - 1,); GraphError if two nodes are not adjacent."""
    costs = np.empty(max(len(path) - 1, 0))
    for t in range(len(path) - 1):
        w = graph.edge_weight(path[t], path[t + 1])
        if not np.isfinite(w):
            raise GraphError(f"path step {t}: nodes {graph.ids[path[t]]} and "
                             f"{graph.ids[path[t + 1]]} are not adjacent")
        costs[t] = w
    return costs


def path_cost(graph: Graph, path: list[int]) -> float:
    return float(step_costs(graph, path).sum())


def validate_path(problem: Problem, path: list[int]) -> None:
    """Raise GraphError unless the path starts at s, ends at g_r and is a walk in the graph."""
    if not path or path[0] != problem.start or path[-1] != problem.goal:
        raise GraphError("path must start at the start node and end at the goal")
    step_costs(problem.graph, path)


def last_point_completion(problem: Problem, path: list[int], flags: np.ndarray
                          ) -> tuple[int, float]:
    """(index of the last flagged node, path-cost completion there); (-1, 0.0) if none."""
    hits = np.nonzero(flags[np.asarray(path)])[0]
    if len(hits) == 0:
        return -1, 0.0
    last = int(hits[-1])
    cum = np.concatenate([[0.0], np.cumsum(step_costs(problem.graph, path))])
    total = cum[-1]
    return last, float(cum[last] / total) if total > 0 else 0.0


def ldp(problem: Problem, path: list[int]) -> tuple[int, float]:
    """(index of the last deceptive point in the path, its path completion)."""
    return last_point_completion(problem, path, ~problem.truthful())


def deceptive_density(problem: Problem, path: list[int]) -> float:
    return float(np.mean(~problem.truthful()[np.asarray(path)]))


def default_observer(problem: Problem, beta_per_edge: float = 1.0,
                     kind: ObserverKind = "costdif") -> Observer:
    """The observer used for reporting: β = beta_per_edge / median edge weight."""
    return Observer(kind=kind, beta=scaled_beta(beta_per_edge, problem.graph.median_edge()))


def evaluate_path(problem: Problem, path: list[int], observer: Observer | None = None
                  ) -> dict[str, Any]:
    """All metrics of a path as plain JSON-ready values."""
    validate_path(problem, path)
    observer = observer or default_observer(problem)
    cost = path_cost(problem.graph, path)
    ldp_idx, ldp_comp = ldp(problem, path)
    _, exa_comp = last_point_completion(problem, path, problem.exaggerated())
    probs = observer.path_probabilities(problem.dist, problem.start, path)
    ids = problem.graph.ids
    return {
        "cost_ratio": cost / problem.optc,
        "optimal_cost": problem.optc,
        "budget": problem.budget,
        "budget_ratio": problem.budget_ratio,
        "within_budget": bool(cost <= problem.budget * (1 + 1e-9)),
        "goal_reached": bool(path[-1] == problem.goal),
        "steps": len(path) - 1,
        "ldp_node": int(ids[path[ldp_idx]]) if ldp_idx >= 0 else None,
        "ldp_index": ldp_idx,
        "ldp_completion": ldp_comp,
        "deceptive_density": deceptive_density(problem, path),
        "exaggeration_completion": exa_comp,
        "exaggeration_density": float(np.mean(problem.exaggerated()[np.asarray(path)])),
        "p_true_goal": [round(float(p), 6) for p in probs[:, 0]],
        "observer": {"kind": observer.kind, "beta": observer.beta},
    }


__all__ = ["deceptive_density", "default_observer", "evaluate_path", "last_point_completion",
           "ldp", "path_cost", "step_costs", "validate_path"]
