"""Classical deceptive path planners (Masters & Sardina 2017), exact with Dijkstra.

* ``shortest``: an optimal s → g_r path (no deception).
* ``pi_d1``: s → decoy → g_r (the decoy with the cheapest detour when there are several).
* ``pi_d2``: s → t → g_r, t the node on the shortest decoy → g_r path at the radius of maximum
  probability, rmp = [optc(g_b, g_r) + optc(s, g_r) - optc(s, g_b)] / 2 from g_r: the last
  node of that path that is still deceptive (optc(t, g_r) >= rmp). With several decoys, each
  gives a candidate and the one with the latest last deceptive point wins.
* ``pi_d4``: as pi_d2, but the s → t leg is the cheapest path through deceptive nodes only.

Budgets: a classical plan is computed without a budget, then checked. ``plan_within_budget``
falls back pi_d1/pi_d4 → pi_d2 → shortest when a plan costs more than the budget (pi_d2
first tries every decoy's candidate that fits); the fallback is reported.

Cost: every planner needs the per-goal Dijkstra rows of the Problem; pi_d2 adds one Dijkstra
per decoy from its t, pi_d4 one Dijkstra on the deceptive subgraph, pi_d1 none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from nav_policy.deception.graphs import Graph, GraphError
from nav_policy.deception.metrics import ldp, path_cost
from nav_policy.deception.problem import Problem

ClassicalName = Literal["shortest", "pi_d1", "pi_d2", "pi_d4"]
CLASSICAL = ("shortest", "pi_d1", "pi_d2", "pi_d4")


@dataclass
class Plan:
    """A path (internal indices) and how it was obtained."""

    path: list[int]
    policy: str
    fallback_from: list[str] = field(default_factory=list)


def descend(graph: Graph, dist_to_target: np.ndarray, source: int) -> list[int]:
    """Shortest path from `source` to the target of `dist_to_target` (its zero), following
    w(u, v) + d(v) = d(u); ties go to the lowest index. GraphError if unreachable."""
    if not np.isfinite(dist_to_target[source]):
        raise GraphError(f"node {graph.ids[source]} cannot reach the target")
    path = [int(source)]
    u = int(source)
    for _ in range(graph.num_nodes):
        if dist_to_target[u] <= 0.0:
            return path
        nb, w = graph.neighbours(u), graph.neighbour_weights(u)
        u = int(nb[np.argmin(w + dist_to_target[nb])])
        path.append(u)
    raise GraphError("shortest path descent did not terminate (non-positive weights?)")


def join(*legs: list[int]) -> list[int]:
    """Concatenate legs that share their end/start nodes."""
    out = list(legs[0])
    for leg in legs[1:]:
        out.extend(leg[1:])
    return out


def shortest(problem: Problem) -> list[int]:
    return descend(problem.graph, problem.dist[0], problem.start)


def pi_d1(problem: Problem) -> list[int]:
    """s → decoy → g_r through the decoy with the cheapest detour."""
    detour = problem.dist[1:, problem.start] + problem.dist[0, list(problem.decoys)]
    k = int(np.argmin(detour))
    g = problem.graph
    return join(descend(g, problem.dist[1 + k], problem.start),
                descend(g, problem.dist[0], problem.decoys[k]))


def rmp_target(problem: Problem, k: int) -> int:
    """t for decoy k: on the shortest decoy → g_r path, the last node with optc(t, g_r) >= rmp."""
    rmp = float(problem.rmp()[k])
    leg = descend(problem.graph, problem.dist[0], problem.decoys[k])
    d = problem.dist[0, leg]
    ok = np.nonzero(d >= rmp - problem.tol())[0]
    return int(leg[ok[-1]]) if len(ok) else int(leg[0])


def pi_d2_candidates(problem: Problem) -> list[list[int]]:
    """One s → t → g_r path per decoy."""
    g = problem.graph
    out = []
    for k in range(len(problem.decoys)):
        t = rmp_target(problem, k)
        out.append(join(descend(g, g.distances(t), problem.start),
                        descend(g, problem.dist[0], t)))
    return out


def _best_by_ldp(problem: Problem, paths: list[list[int]]) -> list[int]:
    return max(paths, key=lambda p: (ldp(problem, p)[1], -path_cost(problem.graph, p)))


def pi_d2(problem: Problem) -> list[int]:
    return _best_by_ldp(problem, pi_d2_candidates(problem))


def _predecessor_path(pred: np.ndarray, source: int, target: int) -> list[int] | None:
    if target != source and pred[target] < 0:
        return None
    path = [int(target)]
    while path[-1] != source:
        path.append(int(pred[path[-1]]))
    return path[::-1]


def deceptive_leg(problem: Problem, target: int) -> list[int] | None:
    """Cheapest s → target path whose nodes are all deceptive (None if there is none)."""
    g = problem.graph
    ok = ~problem.truthful()
    src = np.repeat(np.arange(g.num_nodes), np.diff(g.indptr))
    keep = ok[src] & ok[g.indices]
    n = g.num_nodes
    mat = csr_matrix((g.weights[keep], (src[keep], g.indices[keep])), shape=(n, n))
    _, pred = dijkstra(mat, directed=True, indices=problem.start, return_predecessors=True)
    return _predecessor_path(pred, problem.start, target)


def pi_d4(problem: Problem) -> list[int]:
    """pi_d2's t, reached through deceptive nodes only; pi_d2 itself if no such path."""
    best = None
    for k in range(len(problem.decoys)):
        t = rmp_target(problem, k)
        leg = deceptive_leg(problem, t)
        if leg is not None:
            cand = join(leg, descend(problem.graph, problem.dist[0], t))
            best = cand if best is None else _best_by_ldp(problem, [best, cand])
    return best if best is not None else pi_d2(problem)


_PLANNERS = {"shortest": shortest, "pi_d1": pi_d1, "pi_d2": pi_d2, "pi_d4": pi_d4}


def plan(problem: Problem, name: str) -> list[int]:
    """Unbudgeted classical plan by name."""
    try:
        return _PLANNERS[name](problem)
    except KeyError:
        raise GraphError(f"unknown classical policy {name!r}; choose from "
                         f"{', '.join(CLASSICAL)}") from None


def fits(problem: Problem, path: list[int]) -> bool:
    return path_cost(problem.graph, path) <= problem.budget * (1 + 1e-9)


def plan_within_budget(problem: Problem, name: str) -> Plan:
    """Classical plan that respects the budget, falling back as the module docstring says."""
    chain = {"pi_d1": ["pi_d1", "pi_d2"], "pi_d4": ["pi_d4", "pi_d2"],
             "pi_d2": ["pi_d2"], "shortest": []}.get(name)
    if chain is None:
        plan(problem, name)  # raises the unknown-policy error
    tried: list[str] = []
    for step in chain or []:
        if step == "pi_d2":
            fitting = [p for p in pi_d2_candidates(problem) if fits(problem, p)]
            if fitting:
                return Plan(_best_by_ldp(problem, fitting), name, tried)
        else:
            path = plan(problem, step)
            if fits(problem, path):
                return Plan(path, name, tried)
        tried.append(step)
    return Plan(shortest(problem), name, tried)


__all__ = ["CLASSICAL", "Plan", "deceptive_leg", "descend", "pi_d1", "pi_d2",
           "pi_d2_candidates", "pi_d4", "plan", "plan_within_budget", "rmp_target", "shortest"]
