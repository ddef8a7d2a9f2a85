"""Random deceptive planning tasks: graph families, start/goal/decoys and budgets.

Training and evaluation draw from the same families with disjoint seeds. A task's budget
ratio is drawn uniformly from ``budget_ratio``, or (with probability ``paper_budget_prob``)
as in Fatemi et al. 2024: T_max ~ U[optc(s, g_r), optc(s, g_d) + optc(g_d, g_r)].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nav_policy.deception.graphs import Graph, grid_graph, random_geometric_graph
from nav_policy.deception.problem import Problem


@dataclass(frozen=True)
class GraphFamily:
    """kind grid: side lengths; kind rgg: node counts. Obstacles only for grids."""

    kind: str  # "grid" | "rgg"
    sizes: tuple[int, ...]
    connectivity: tuple[int, ...] = (4, 8)
    obstacle_density: tuple[float, float] = (0.0, 0.2)
    mean_degree: tuple[float, float] = (6.0, 10.0)


def make_graph(family: GraphFamily, rng: np.random.Generator) -> Graph:
    size = int(rng.choice(family.sizes))
    if family.kind == "grid":
        return grid_graph(size, size, float(rng.uniform(*family.obstacle_density)),
                          int(rng.choice(family.connectivity)), rng)
    if family.kind == "rgg":
        return random_geometric_graph(size, mean_degree=float(rng.uniform(*family.mean_degree)),
                                      rng=rng)
    raise ValueError(f"unknown graph family {family.kind!r}")


@dataclass(frozen=True)
class TaskConfig:
    families: tuple[GraphFamily, ...] = (
        GraphFamily("grid", (8,)), GraphFamily("grid", (16,)), GraphFamily("rgg", (50, 100, 150)))
    family_weights: tuple[float, ...] = (0.35, 0.35, 0.3)
    decoys: tuple[int, int] = (1, 2)
    budget_ratio: tuple[float, float] = (1.0, 2.2)
    paper_budget_prob: float = 0.3
    min_goal_edges: float = 3.0  # optc(s, g_r) >= this many median edges
    decoy_min_frac: float = 0.3  # decoys at least this x optc(s, g_r) from start and goal


def sample_endpoints(graph: Graph, cfg: TaskConfig, rng: np.random.Generator,
                     n_decoys: int) -> tuple[int, int, list[int]] | None:
    """(start, goal, decoys) in internal indices, or None when this draw does not fit."""
    n = graph.num_nodes
    if n < 3 + n_decoys:
        return None
    goal = int(rng.integers(n))
    d_goal = graph.distances(goal)
    far = np.nonzero(np.isfinite(d_goal) & (d_goal >= cfg.min_goal_edges * graph.median_edge()))[0]
    if len(far) == 0:
        return None
    start = int(rng.choice(far))
    d0 = d_goal[start]
    d_start = graph.distances(start)
    ok = np.nonzero((d_goal >= cfg.decoy_min_frac * d0) & (d_start >= cfg.decoy_min_frac * d0)
                    & np.isfinite(d_goal))[0]
    ok = ok[(ok != start) & (ok != goal)]
    if len(ok) < n_decoys:
        return None
    decoys = [int(v) for v in rng.choice(ok, size=n_decoys, replace=False)]
    return start, goal, decoys


def sample_ratio(problem: Problem, cfg: TaskConfig, rng: np.random.Generator) -> float:
    if rng.random() < cfg.paper_budget_prob:
        via = (problem.dist[1:, problem.start] + problem.dist[0, list(problem.decoys)]).min()
        return float(rng.uniform(1.0, max(1.0, via / problem.optc)))
    return float(rng.uniform(*cfg.budget_ratio))


def sample_problem(graph: Graph, cfg: TaskConfig, rng: np.random.Generator,
                   ratio: float | None = None, tries: int = 20) -> Problem | None:
    """A task on `graph`; ratio None draws one. None if the graph cannot host a task."""
    for _ in range(tries):
        n_decoys = int(rng.integers(cfg.decoys[0], cfg.decoys[1] + 1))
        ends = sample_endpoints(graph, cfg, rng, n_decoys)
        if ends is None:
            continue
        problem = Problem.build(graph, ends[0], ends[1], ends[2], 1.0)
        r = sample_ratio(problem, cfg, rng) if ratio is None else ratio
        problem.budget = r * problem.optc
        return problem
    return None


class TaskSampler:
    """Draws tasks from a pool of graphs that is refreshed as training goes."""

    def __init__(self, cfg: TaskConfig, rng: np.random.Generator, pool_size: int = 48,
                 refresh_prob: float = 0.1) -> None:
        self.cfg = cfg
        self.rng = rng
        self.refresh_prob = refresh_prob
        w = np.asarray(cfg.family_weights, dtype=float)
        self._weights = w / w.sum()
        self.pool = [self._new_graph() for _ in range(pool_size)]

    def _new_graph(self) -> Graph:
        fam = self.cfg.families[int(self.rng.choice(len(self.cfg.families), p=self._weights))]
        return make_graph(fam, self.rng)

    def sample(self) -> Problem:
        while True:
            k = int(self.rng.integers(len(self.pool)))
            if self.rng.random() < self.refresh_prob:
                self.pool[k] = self._new_graph()
            problem = sample_problem(self.pool[k], self.cfg, self.rng)
            if problem is not None:
                return problem


__all__ = ["GraphFamily", "TaskConfig", "TaskSampler", "make_graph", "sample_endpoints",
           "sample_problem", "sample_ratio"]
