"""The budget guard: whatever the policy prefers, the walk ends at the goal within budget."""

from __future__ import annotations

import numpy as np
import pytest

from nav_policy.deception.ego import EgoGraph, guard_mask
from nav_policy.deception.examples import TINY_DECOY, TINY_GOAL, TINY_START, tiny_graph
from nav_policy.deception.metrics import path_cost, validate_path
from nav_policy.deception.policy import LogitPolicy, RulePolicy, run_policy
from nav_policy.deception.problem import Problem
from nav_policy.deception.tasks import (
    GraphFamily,
    TaskConfig,
    make_graph,
    sample_problem,
)


class AdversarialPolicy:
    """Prefers the candidate farthest from the goal (and unvisited-agnostic): worst case."""

    hops, beta_per_edge, mode = 3, 1.0, "ambiguity"

    def logits(self, ego: EgoGraph) -> np.ndarray:
        return ego.x[1:1 + ego.num_actions, 3].astype(float)  # relative distance to the goal


def test_guard_mask_hand_example() -> None:
    problem = Problem.build(tiny_graph(), TINY_START, TINY_GOAL, [TINY_DECOY], 1.2)
    g = problem.graph
    # at node 1 after one unit step: remaining 3.6 - 1 = 2.6; neighbours 0, 2, 5
    mask = guard_mask(g.neighbours(1), g.neighbour_weights(1), problem.dist[0], 2.6, 1e-9)
    assert g.neighbours(1).tolist() == [0, 2, 5]
    assert mask.tolist() == [False, True, False]


@pytest.mark.parametrize("ratio", [1.0, 1.2, 1.5, 2.0])
@pytest.mark.parametrize("family", [GraphFamily("grid", (12,)), GraphFamily("rgg", (120,))])
@pytest.mark.parametrize("policy", [AdversarialPolicy(), RulePolicy("ambiguity"),
                                    RulePolicy("exaggeration")])
def test_any_policy_stays_within_budget(ratio: float, family: GraphFamily,
                                        policy: LogitPolicy) -> None:
    rng = np.random.default_rng(int(ratio * 10))
    for _ in range(3):
        problem = sample_problem(make_graph(family, rng), TaskConfig(), rng, ratio)
        assert problem is not None
        roll = run_policy(problem, policy)
        validate_path(problem, roll.path)
        assert path_cost(problem.graph, roll.path) <= problem.budget * (1 + 1e-9)
        assert not roll.truncated
