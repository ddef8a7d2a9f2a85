"""`nav_policy/DeceptiveGraph-v0`: reach a true goal on a weighted graph while hiding it.

The agent walks on an undirected weighted graph from a start node to a true goal g_r; an
observer (docs/DESIGN.md, Masters & Sardina cost difference) watches and infers the goal among g_r
and the decoys. The agent sees only its k-hop ego graph.

Action space
    Discrete(max_actions): index of the neighbour of the agent's node to move to, in the order
    of ``obs["action_mask"]``. Indices beyond the node's degree, and neighbours from which the
    goal can no longer be reached within the remaining budget, are masked; choosing one
    anyway moves along a shortest path instead (the budget guard) and costs
    ``invalid_penalty``.

Observation space (Dict, padded; see nav_policy/deception/ego.py for the feature columns)
    x            float32 (max_nodes, 15)  node features; row 0 = agent, rows 1..A = neighbours
    node_mask    int8 (max_nodes,)        1 for real ego nodes
    edge_index   int64 (2, max_edges)     local edges, both directions
    edge_mask    int8 (max_edges,)        1 for real edges
    cand_weight  float32 (max_actions,)   edge weight to each neighbour / median edge weight
    action_mask  int8 (max_actions,)      1 where the guard allows the move

Reward (nav_policy/deception/episode.py): + bonus · c_t / budget for each first visit of a
deceptive node (``mode="ambiguity"``) or of a node where a decoy is strictly more likely than
the true goal (``mode="exaggeration"``); + goal_reward at the goal; timeout_penalty at the
step cap.

Episode end
    terminated: the agent reached the true goal (always within the budget, by the guard).
    truncated: the step cap (4 budget-lengths in median edges, at least 50) was hit.

Tasks: each reset draws a graph (8x8 / 16x16 grids with obstacles, 4- or 8-connected, and
random geometric graphs of 50-150 nodes), start, goal, 1-2 decoys and a budget ratio, from
``self.np_random``; ``reset(options={"problem": Problem})`` runs a given task instead, and
``options={"budget_ratio": r}`` fixes the ratio.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from nav_policy.deception.ego import NODE_FEATURES, EgoGraph, hops_for_layers
from nav_policy.deception.episode import Episode, RewardConfig
from nav_policy.deception.problem import Mode, Problem
from nav_policy.deception.registration import ENV_ID, register
from nav_policy.deception.tasks import TaskConfig, TaskSampler, sample_problem

WEIGHT_HIGH = 100.0


class DeceptiveGraphEnv(gym.Env[dict[str, np.ndarray], int]):
    metadata = {"render_modes": []}  # noqa: RUF012 - Gymnasium's own convention

    def __init__(self, mode: Mode = "ambiguity", gnn_layers: int = 2, max_nodes: int = 256,
                 max_actions: int = 16, max_edges: int | None = None,
                 beta_per_edge: float = 1.0, budget_ratio: float | None = None,
                 tasks: TaskConfig | None = None, rewards: RewardConfig | None = None,
                 pool_size: int = 8) -> None:
        super().__init__()
        self.mode: Mode = mode
        self.hops = hops_for_layers(gnn_layers)
        self.max_nodes, self.max_actions = max_nodes, max_actions
        self.max_edges = max_edges or 8 * max_nodes
        self.beta_per_edge = beta_per_edge
        self.budget_ratio = budget_ratio
        self.tasks = tasks or TaskConfig()
        self.rewards = rewards or RewardConfig()
        self.pool_size = pool_size
        self._sampler: TaskSampler | None = None
        self.episode: Episode | None = None
        self.action_space = spaces.Discrete(max_actions)  # type: ignore[assignment]
        self.observation_space = spaces.Dict({  # type: ignore[assignment]
            "x": spaces.Box(-1.0, 3.0, (max_nodes, NODE_FEATURES), np.float32),
            "node_mask": spaces.MultiBinary(max_nodes),
            "edge_index": spaces.Box(0, max_nodes - 1, (2, self.max_edges), np.int64),
            "edge_mask": spaces.MultiBinary(self.max_edges),
            "cand_weight": spaces.Box(0.0, WEIGHT_HIGH, (max_actions,), np.float32),
            "action_mask": spaces.MultiBinary(max_actions),
        })

    # ---- gym API ------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None or self._sampler is None:
            self._sampler = TaskSampler(self.tasks, self.np_random, pool_size=self.pool_size)
        options = options or {}
        problem = options.get("problem") or self._draw(options.get("budget_ratio",
                                                                   self.budget_ratio))
        self.episode = Episode(problem, self.mode, self.hops, self.beta_per_edge,
                               self.max_nodes, self.max_actions, self.rewards)
        return self._obs(), self._info()

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self.episode is None:
            raise RuntimeError("call reset() before step()")
        reward, terminated, truncated, info = self.episode.step(int(action))
        return self._obs(), float(reward), terminated, truncated, {**self._info(), **info}

    def action_masks(self) -> np.ndarray:
        """Boolean mask over actions (the name sb3-contrib's MaskablePPO looks for)."""
        return self._obs()["action_mask"].astype(bool)

    # ---- helpers ------------------------------------------------------------------------
    def _draw(self, ratio: float | None) -> Problem:
        assert self._sampler is not None
        if ratio is None:
            return self._sampler.sample()
        while True:
            k = int(self.np_random.integers(len(self._sampler.pool)))
            problem = sample_problem(self._sampler.pool[k], self.tasks, self.np_random, ratio)
            if problem is not None:
                return problem

    def _info(self) -> dict[str, Any]:
        ep = self.episode
        assert ep is not None
        return {"path": list(ep.path), "spent": ep.spent, "budget": ep.problem.budget,
                "optimal_cost": ep.problem.optc}

    def _obs(self) -> dict[str, np.ndarray]:
        assert self.episode is not None
        return pad_ego(self.episode.observe(), self.max_nodes, self.max_actions, self.max_edges)


def pad_ego(ego: EgoGraph, max_nodes: int, max_actions: int, max_edges: int
            ) -> dict[str, np.ndarray]:
    """Fixed-size arrays of an ego graph (edges beyond max_edges are dropped)."""
    n = min(len(ego.nodes), max_nodes)
    a = min(ego.num_actions, max_actions)
    keep = (ego.edge_index[0] < n) & (ego.edge_index[1] < n)
    edges = ego.edge_index[:, keep][:, :max_edges]
    x = np.zeros((max_nodes, NODE_FEATURES), dtype=np.float32)
    x[:n] = ego.x[:n]
    out: dict[str, np.ndarray] = {
        "x": x,
        "node_mask": np.zeros(max_nodes, dtype=np.int8),
        "edge_index": np.zeros((2, max_edges), dtype=np.int64),
        "edge_mask": np.zeros(max_edges, dtype=np.int8),
        "cand_weight": np.zeros(max_actions, dtype=np.float32),
        "action_mask": np.zeros(max_actions, dtype=np.int8),
    }
    out["node_mask"][:n] = 1
    out["edge_index"][:, :edges.shape[1]] = edges
    out["edge_mask"][:edges.shape[1]] = 1
    out["cand_weight"][:a] = np.minimum(ego.cand_weight[:a], WEIGHT_HIGH)
    out["action_mask"][:a] = ego.cand_mask[:a]
    return out


__all__ = ["ENV_ID", "DeceptiveGraphEnv", "pad_ego", "register"]
