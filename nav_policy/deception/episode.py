"""One walk of the agent on a Problem: observation, guarded transition, deception reward.

Shared by the Gymnasium env, the PPO trainer (which steps episodes directly, without
padding) and the runtime planner behind `nav-policy deceive --policy rl`.

Reward (per step, B = budget, c_t = cost of the step just taken):
  + bonus · c_t / B when the node reached is seen for the first time and is deceptive
    (mode "ambiguity": the true goal is not the strict favourite) or exaggerated (mode
    "exaggeration": some decoy is strictly more likely than the true goal); summed over an
    episode this is at most ``bonus`` and grows with the path cost spent while deceiving;
  + goal_reward on reaching the true goal (terminates);
  + timeout_penalty when the step cap is hit (truncates; the guard makes it rare).
An action outside the guard's mask is replaced by the guard's choice (next node of a shortest
path to the goal) and costs ``invalid_penalty``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nav_policy.deception.ego import EgoBuilder, EgoGraph, StaticFeatures, build_ego
from nav_policy.deception.problem import Mode, Problem


@dataclass(frozen=True)
class RewardConfig:
    bonus: float = 1.0
    goal_reward: float = 1.0
    timeout_penalty: float = -0.5
    invalid_penalty: float = -0.1


def step_cap(problem: Problem) -> int:
    """Most steps an episode may take: 4 budget-lengths in median edges, at least 50."""
    return int(max(50, math.ceil(4 * problem.budget / problem.graph.median_edge())))


class Episode:
    """State of one walk; ``path`` holds internal node indices."""

    def __init__(self, problem: Problem, mode: Mode = "ambiguity", hops: int = 3,
                 beta_per_edge: float = 1.0, max_nodes: int | None = None,
                 max_actions: int | None = None, rewards: RewardConfig | None = None) -> None:
        if mode not in ("ambiguity", "exaggeration"):
            raise ValueError(f"unknown mode {mode!r}")
        self.problem = problem
        self.mode = mode
        self.beta_per_edge = beta_per_edge
        self.rewards = rewards or RewardConfig()
        self.builder = EgoBuilder(problem.graph, hops, max_nodes, max_actions)
        self.static = StaticFeatures.from_problem(problem, beta_per_edge)
        self.visited = np.zeros(problem.graph.num_nodes, dtype=bool)
        self.visited[problem.start] = True
        self.path = [problem.start]
        self.spent = 0.0
        self.max_steps = step_cap(problem)
        self.guard_interventions = 0
        self._ego: EgoGraph | None = None

    # ---- state --------------------------------------------------------------------------
    @property
    def current(self) -> int:
        return self.path[-1]

    @property
    def remaining(self) -> float:
        return self.problem.budget - self.spent

    @property
    def done(self) -> bool:
        return self.current == self.problem.goal or self.steps >= self.max_steps

    @property
    def steps(self) -> int:
        return len(self.path) - 1

    def observe(self) -> EgoGraph:
        """The ego graph at the current node (cached until the next step)."""
        if self._ego is None:
            self._ego = build_ego(self.builder, self.current, self.static, self.visited,
                                  self.problem.goal, self.remaining, self.problem.budget)
        return self._ego

    def set_decoys(self, decoys: list[int] | tuple[int, ...]) -> None:
        """A decoy moved: same start, goal, budget and walk so far; new distances and features."""
        self.problem = self.problem.with_decoys(decoys)
        self.static = StaticFeatures.from_problem(self.problem, self.beta_per_edge)
        self._ego = None

    # ---- transition ---------------------------------------------------------------------
    def guard_choice(self) -> int:
        """Candidate index the guard picks: a next node on a shortest path to the goal."""
        ego = self.observe()
        nb = ego.nodes[1:1 + ego.num_actions]
        return int(np.argmin(ego.cand_cost + self.static.d_goal[nb]))

    def _bonus_flag(self, node: int) -> bool:
        m, tol = self.static.margin[node], self.static.tol
        return bool(m <= tol) if self.mode == "ambiguity" else bool(m < -tol)

    def step(self, action: int) -> tuple[float, bool, bool, dict[str, Any]]:
        """Move to candidate `action`; returns (reward, terminated, truncated, info)."""
        ego = self.observe()
        reward = 0.0
        guarded = not (0 <= action < ego.num_actions and bool(ego.cand_mask[action]))
        if guarded:
            self.guard_interventions += 1
            reward += self.rewards.invalid_penalty
            action = self.guard_choice()
        node = int(ego.nodes[1 + action])
        cost = float(ego.cand_cost[action])
        first_visit = not self.visited[node]
        self.spent += cost
        self.path.append(node)
        self.visited[node] = True
        self._ego = None
        if first_visit and node != self.problem.goal and self._bonus_flag(node):
            reward += self.rewards.bonus * cost / self.problem.budget
        terminated = node == self.problem.goal
        truncated = (not terminated) and self.steps >= self.max_steps
        if terminated:
            reward += self.rewards.goal_reward
        elif truncated:
            reward += self.rewards.timeout_penalty
        return reward, terminated, truncated, {"guarded": guarded, "node": node, "cost": cost}

    def finish_shortest(self) -> None:
        """Complete a truncated walk along a shortest path (stays within budget by the guard)."""
        d = self.static.d_goal
        g = self.problem.graph
        while self.current != self.problem.goal:
            u = self.current
            nb, w = g.neighbours(u), g.neighbour_weights(u)
            j = int(np.argmin(w + d[nb]))
            self.spent += float(w[j])
            self.path.append(int(nb[j]))
            self.visited[nb[j]] = True
        self._ego = None


__all__ = ["Episode", "RewardConfig", "step_cap"]
