"""The agent's local view: its k-hop ego graph with per-node features (Fatemi et al. 2024).

Layout of an :class:`EgoGraph` (the same for the env, the trainer, the ONNX model and the
CLI): local node 0 is the agent's node, nodes 1..A are its neighbours in action order (the
action picks one of them), the rest are the other nodes within ``hops`` hops, nearest hops
first. ``edge_index`` holds both directions of every edge between ego nodes.

Node features (float32, NODE_FEATURES columns), ℓ = the graph's median edge weight,
d_r = optc(·, g_r), d_b = min over decoys optc(·, decoy), R = remaining budget, B = budget:

 0 is the agent's node          1 visited before            2 is the true goal
 3 clip((d_r(n) - d_r(cur))/ℓ, ±4)/4                        4 same for d_b
 5 clip(margin(n)/ℓ, ±4)/4, margin = min_b costdif_b - costdif_r (> 0: truthful)
 6 deceptive (margin <= 0)      7 exaggerated (margin < 0)
 8 P(g_r | n)                   9 max over decoys P(decoy | n)   (costdif observer)
10 tanh((R - d_r(n))/4ℓ)       11 tanh((R - d_r(n))/32ℓ)        (slack if the agent were at n)
12 R / B                       13 tanh((d_r(n) - min rmp)/4ℓ)   14 min(d_r(n)/optc(s, g_r), 3)

All distances come from the per-goal Dijkstra rows of the Problem, so the features are
independent of graph size and of the graph's unit of length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nav_policy.deception.graphs import Graph
from nav_policy.deception.observers import Observer, scaled_beta
from nav_policy.deception.problem import Problem

NODE_FEATURES = 15
FEATURE_NAMES = (
    "is_current", "visited", "is_goal", "d_goal_rel", "d_decoy_rel", "margin", "deceptive",
    "exaggerated", "p_goal", "p_decoy_max", "slack_short", "slack_long", "budget_left",
    "rmp_offset", "goal_progress",
)


@dataclass
class EgoGraph:
    """One observation; see the module docstring for the layout."""

    nodes: np.ndarray  # (N,) internal graph indices, nodes[0] = agent
    x: np.ndarray  # (N, F) float32
    edge_index: np.ndarray  # (2, E) int64 local indices
    cand_weight: np.ndarray  # (A,) float32 edge weight / ℓ to each candidate (model input)
    cand_mask: np.ndarray  # (A,) bool: the budget guard allows this candidate
    cand_cost: np.ndarray  # (A,) float64 exact edge weight (budget accounting)

    @property
    def num_actions(self) -> int:
        return len(self.cand_weight)


@dataclass
class StaticFeatures:
    """Per-node quantities fixed for one problem (recomputed when a decoy moves)."""

    d_goal: np.ndarray
    d_decoy: np.ndarray
    margin: np.ndarray
    p_goal: np.ndarray
    p_decoy: np.ndarray
    rmp_min: float
    scale: float
    optc: float
    tol: float

    @classmethod
    def from_problem(cls, problem: Problem, beta_per_edge: float = 1.0) -> StaticFeatures:
        scale = problem.graph.median_edge()
        probs = Observer("costdif", scaled_beta(beta_per_edge, scale)).probabilities(
            problem.costdif())
        return cls(d_goal=problem.dist[0], d_decoy=problem.dist[1:].min(axis=0),
                   margin=problem.margin(), p_goal=probs[0], p_decoy=probs[1:].max(axis=0),
                   rmp_min=float(problem.rmp().min()), scale=scale, optc=problem.optc,
                   tol=1e-9 * problem.optc)


class EgoBuilder:
    """Extracts ego graphs from one graph, reusing a scratch index array (O(ego) per call)."""

    def __init__(self, graph: Graph, hops: int = 3, max_nodes: int | None = None,
                 max_actions: int | None = None) -> None:
        self.graph = graph
        self.hops = hops
        self.max_nodes = max_nodes
        self.max_actions = max_actions
        self._local = np.full(graph.num_nodes, -1, dtype=np.int64)

    def candidates(self, cur: int, d_goal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Neighbours of `cur` and their weights; the best (w + d_goal) first if capped."""
        nb, w = self.graph.neighbours(cur), self.graph.neighbour_weights(cur)
        if self.max_actions is not None and len(nb) > self.max_actions:
            keep = np.sort(np.argsort(w + d_goal[nb], kind="stable")[:self.max_actions])
            nb, w = nb[keep], w[keep]
        return nb, w

    def ego_nodes(self, cur: int, cands: np.ndarray) -> np.ndarray:
        """cur, its candidates, then BFS layers up to `hops`, truncated to max_nodes."""
        g, local = self.graph, self._local
        order = [np.array([cur], dtype=np.int64), cands.astype(np.int64)]
        local[cur] = 0
        local[cands] = 1
        frontier = cands
        for _ in range(self.hops - 1):
            if len(frontier) == 0:
                break
            nxt = np.concatenate([g.indices[g.indptr[u]:g.indptr[u + 1]] for u in frontier])
            nxt = np.unique(nxt[local[nxt] < 0])
            local[nxt] = 1
            order.append(nxt)
            frontier = nxt
        nodes = np.concatenate(order)
        local[nodes] = -1
        if self.max_nodes is not None and len(nodes) > self.max_nodes:
            nodes = nodes[:max(self.max_nodes, 1 + len(cands))]
        return nodes

    def edges(self, nodes: np.ndarray) -> np.ndarray:
        """(2, E) local edge index of the subgraph induced by `nodes` (both directions)."""
        g, local = self.graph, self._local
        local[nodes] = np.arange(len(nodes))
        starts, ends = g.indptr[nodes], g.indptr[nodes + 1]
        deg = ends - starts
        src = np.repeat(np.arange(len(nodes)), deg)
        idx = np.concatenate([g.indices[a:b] for a, b in zip(starts, ends)]) if len(nodes) else \
            np.zeros(0, dtype=np.int64)
        dst = local[idx]
        local[nodes] = -1
        keep = dst >= 0
        return np.stack([src[keep], dst[keep]]).astype(np.int64)


def node_features(nodes: np.ndarray, cur: int, sf: StaticFeatures, visited: np.ndarray,
                  goal: int, remaining: float, budget: float) -> np.ndarray:
    """(N, NODE_FEATURES) float32 for ego `nodes` (see the module docstring)."""
    s = sf.scale
    dg, dd, mg = sf.d_goal[nodes], sf.d_decoy[nodes], sf.margin[nodes]
    slack = remaining - dg
    x = np.empty((len(nodes), NODE_FEATURES), dtype=np.float32)
    x[:, 0] = nodes == cur
    x[:, 1] = visited[nodes]
    x[:, 2] = nodes == goal
    x[:, 3] = np.clip((dg - sf.d_goal[cur]) / s, -4, 4) / 4
    x[:, 4] = np.clip((dd - sf.d_decoy[cur]) / s, -4, 4) / 4
    x[:, 5] = np.clip(mg / s, -4, 4) / 4
    x[:, 6] = mg <= sf.tol
    x[:, 7] = mg < -sf.tol
    x[:, 8] = sf.p_goal[nodes]
    x[:, 9] = sf.p_decoy[nodes]
    x[:, 10] = np.tanh(slack / (4 * s))
    x[:, 11] = np.tanh(slack / (32 * s))
    x[:, 12] = remaining / budget if budget > 0 else 0.0
    x[:, 13] = np.tanh((dg - sf.rmp_min) / (4 * s))
    x[:, 14] = np.minimum(dg / sf.optc, 3.0) if sf.optc > 0 else 0.0
    return x


def guard_mask(cand: np.ndarray, weights: np.ndarray, d_goal: np.ndarray, remaining: float,
               tol: float) -> np.ndarray:
    """The budget guard: candidate j is allowed iff w(cur, j) + optc(j, g_r) <= remaining.

    Whenever remaining >= optc(cur, g_r) (true at the start since budget >= optc(s, g_r), and
    kept by the guard), the next node of a shortest path passes, so the goal stays reachable
    within the budget whatever the policy prefers.
    """
    return weights + d_goal[cand] <= remaining + tol


def build_ego(builder: EgoBuilder, cur: int, sf: StaticFeatures, visited: np.ndarray,
              goal: int, remaining: float, budget: float) -> EgoGraph:
    """Full observation at node `cur`."""
    cands, w = builder.candidates(cur, sf.d_goal)
    nodes = builder.ego_nodes(cur, cands)
    mask = guard_mask(cands, w, sf.d_goal, remaining, sf.tol)
    if len(mask) and not mask.any():  # only by rounding: keep the shortest-path move
        mask[int(np.argmin(w + sf.d_goal[cands]))] = True
    return EgoGraph(nodes=nodes,
                    x=node_features(nodes, cur, sf, visited, goal, remaining, budget),
                    edge_index=builder.edges(nodes),
                    cand_weight=(w / sf.scale).astype(np.float32),
                    cand_mask=mask,
                    cand_cost=np.asarray(w, dtype=np.float64))


def hops_for_layers(layers: int) -> int:
    """k = GNN layers + 1: a candidate's embedding then sees everything it aggregates."""
    return int(layers) + 1


__all__ = [
    "FEATURE_NAMES",
    "NODE_FEATURES",
    "EgoBuilder",
    "EgoGraph",
    "StaticFeatures",
    "build_ego",
    "guard_mask",
    "hops_for_layers",
    "node_features",
]
