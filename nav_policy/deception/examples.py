"""A six-node example with hand-computed values (docs/DECEPTION.md, tests).

    decoy 4 ─1─ 5 ──2── 3 goal
                │       │
                1       1
                │       │
    start 0 ─1─ 1 ──1── 2

optc(·, goal 3):  0:3 1:2 2:1 3:0 4:3 5:2      optc(·, decoy 4): 0:3 1:2 2:3 3:3 4:0 5:1
costdif(goal):    0:0 1:-1 2:-2 3:-3 4:0 5:-1  costdif(decoy):   0:0 1:-1 2:0 3:0 4:-3 5:-2
truthful: 2 and 3; deceptive: 0, 1, 4, 5.
rmp = [optc(4,3) + optc(0,3) - optc(0,4)] / 2 = (3 + 3 - 3) / 2 = 1.5; the decoy → goal path is
4, 5, 3 with optc(·, 3) = 3, 2, 0, so t = 5.
shortest 0-1-2-3 (cost 3, LDP node 1, completion 1/3); pi_d2 0-1-5-3 (cost 4, LDP node 5,
completion 2/4); pi_d1 0-1-5-4-5-3 (cost 6, LDP the second visit of 5, completion 4/6);
pi_d4 = pi_d2 here.
"""

from __future__ import annotations

import numpy as np

from nav_policy.deception.graphs import Graph, build_graph

TINY_START, TINY_GOAL, TINY_DECOY = 0, 3, 4


def tiny_graph() -> Graph:
    """The six-node example above (ids = internal indices 0..5)."""
    pos = np.array([[0, 0], [1, 0], [2, 0], [2, 1], [0, 1], [1, 1]], dtype=float)
    edges = np.array([[0, 1], [1, 2], [2, 3], [1, 5], [5, 4], [5, 3]])
    weights = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 2.0])
    return build_graph(np.arange(6), pos, edges, weights, name="tiny")


__all__ = ["TINY_DECOY", "TINY_GOAL", "TINY_START", "tiny_graph"]
