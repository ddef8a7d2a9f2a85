"""One deceptive path planning instance: graph, start, true goal, decoys, budget.

It holds the per-goal Dijkstra distances every other part needs (observer, truthfulness,
classical baselines, the RL features and the RL budget guard): ``dist[0]`` = optc(·, g_r),
``dist[1:]`` = optc(·, decoy) — one Dijkstra per goal, O(k · (E + V log V)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from nav_policy.deception.graphs import Graph, GraphError
from nav_policy.deception.observers import costdif

Mode = Literal["ambiguity", "exaggeration"]
DEFAULT_BUDGET = 1.5


@dataclass
class Problem:
    """Internal node indices throughout; ``budget`` is an absolute cost."""

    graph: Graph
    start: int
    goal: int
    decoys: tuple[int, ...]
    budget: float
    dist: np.ndarray  # (1 + n_decoys, n_nodes)
    _from_start: np.ndarray | None = field(default=None, repr=False)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def build(cls, graph: Graph, start: int, goal: int, decoys: list[int] | tuple[int, ...],
              budget_ratio: float = DEFAULT_BUDGET) -> Problem:
        """Validated instance from internal indices; GraphError on bad input."""
        _check_ratio(budget_ratio)
        decoys = tuple(int(d) for d in decoys)
        if not decoys:
            raise GraphError("at least one decoy is needed")
        if start == goal:
            raise GraphError("start and goal are the same node")
        if goal in decoys:
            raise GraphError("a decoy is the true goal")
        dist = np.atleast_2d(graph.distances([goal, *decoys]))
        if not math.isfinite(dist[0, start]):
            raise GraphError(f"goal {graph.ids[goal]} cannot be reached from start "
                             f"{graph.ids[start]} (disconnected)")
        for k, d in enumerate(decoys, start=1):
            if not math.isfinite(dist[k, start]):
                raise GraphError(f"decoy {graph.ids[d]} is not connected to the start")
        return cls(graph, int(start), int(goal), decoys, float(budget_ratio * dist[0, start]),
                   dist)

    @classmethod
    def from_ids(cls, graph: Graph, start_id: int, goal_id: int, decoy_ids: list[int],
                 budget_ratio: float = DEFAULT_BUDGET) -> Problem:
        """Same, from external node ids (unknown ids raise GraphError)."""
        return cls.build(graph, graph.index(start_id), graph.index(goal_id),
                         [graph.index(d) for d in decoy_ids], budget_ratio)

    # ---- derived quantities -------------------------------------------------------------
    @property
    def optc(self) -> float:
        """optc(s, g_r)."""
        return float(self.dist[0, self.start])

    @property
    def budget_ratio(self) -> float:
        return self.budget / self.optc

    def from_start(self) -> np.ndarray:
        """optc(s, ·), computed on first use (the baselines need it, the policy does not)."""
        if self._from_start is None:
            self._from_start = self.graph.distances(self.start)
        return self._from_start

    def costdif(self) -> np.ndarray:
        """(1 + n_decoys, n_nodes) costdif(s, g, n) for every goal and node."""
        return costdif(self.dist, self.start)

    def margin(self) -> np.ndarray:
        """min over decoys costdif(s, g, n) - costdif(s, g_r, n): > 0 exactly where n is
        truthful, < 0 where some decoy is strictly more likely than the true goal."""
        cd = self.costdif()
        return cd[1:].min(axis=0) - cd[0]

    def truthful(self) -> np.ndarray:
        """Bool per node: costdif(s, g_r, n) < costdif(s, g, n) for every decoy g."""
        return self.margin() > self.tol()

    def exaggerated(self) -> np.ndarray:
        """Bool per node: some decoy is strictly more likely than the true goal."""
        return self.margin() < -self.tol()

    def rmp(self) -> np.ndarray:
        """Radius of maximum probability per decoy:
        [optc(g_b, g_r) + optc(s, g_r) - optc(s, g_b)] / 2."""
        d_bg = self.dist[0, list(self.decoys)]
        return (d_bg + self.optc - self.dist[1:, self.start]) / 2.0

    def with_decoys(self, decoys: list[int] | tuple[int, ...]) -> Problem:
        """Same start, goal and budget, new decoys (one Dijkstra per new decoy)."""
        new = Problem.build(self.graph, self.start, self.goal, decoys, 1.0)
        new.budget = self.budget
        new._from_start = self._from_start
        return new

    def tol(self) -> float:
        """Absolute tolerance of cost comparisons (1e-9 x optc(s, g_r))."""
        return 1e-9 * self.optc


def _check_ratio(ratio: float) -> None:
    if not (isinstance(ratio, (int, float)) and math.isfinite(ratio) and ratio >= 1.0):
        raise GraphError(f"budget ratio must be a number >= 1 (x optc(start, goal)), got {ratio}")


__all__ = ["DEFAULT_BUDGET", "Mode", "Problem"]
