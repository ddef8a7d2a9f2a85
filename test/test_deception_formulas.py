"""DPP formulas against the hand-computed values of nav_policy/deception/examples.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nav_policy.deception import baselines
from nav_policy.deception.examples import TINY_DECOY, TINY_GOAL, TINY_START, tiny_graph
from nav_policy.deception.metrics import (
    deceptive_density,
    evaluate_path,
    ldp,
    path_cost,
    validate_path,
)
from nav_policy.deception.observers import (
    Observer,
    boltzmann_probabilities,
    costdif,
    costdif_probabilities,
)
from nav_policy.deception.problem import Problem


@pytest.fixture()
def problem() -> Problem:
    return Problem.build(tiny_graph(), TINY_START, TINY_GOAL, [TINY_DECOY], 1.5)


def test_per_goal_distances(problem: Problem) -> None:
    np.testing.assert_allclose(problem.dist[0], [3, 2, 1, 0, 3, 2])
    np.testing.assert_allclose(problem.dist[1], [3, 2, 3, 3, 0, 1])
    assert problem.optc == 3.0
    assert problem.budget == pytest.approx(4.5)


def test_costdif(problem: Problem) -> None:
    cd = costdif(problem.dist, problem.start)
    np.testing.assert_allclose(cd[0], [0, -1, -2, -3, 0, -1])
    np.testing.assert_allclose(cd[1], [0, -1, 0, 0, -3, -2])
    np.testing.assert_allclose(costdif(problem.dist, problem.start, 5), [-1, -2])


def test_truthful_and_deceptive(problem: Problem) -> None:
    assert problem.truthful().tolist() == [False, False, True, True, False, False]
    # exaggerated: the decoy strictly more likely (costdif(decoy) < costdif(goal))
    assert problem.exaggerated().tolist() == [False, False, False, False, True, True]


@pytest.mark.parametrize(("node", "p_goal_costdif", "p_goal_boltzmann"), [
    (0, 0.5, 0.5),
    # costdif -1 (goal) vs -2 (decoy): sigma(1) / (sigma(1) + sigma(2)); e^1 / (e^1 + e^2)
    (5, (1 / (1 + math.exp(-1))) / (1 / (1 + math.exp(-1)) + 1 / (1 + math.exp(-2))),
     1 / (1 + math.e)),
])
def test_observers(problem: Problem, node: int, p_goal_costdif: float,
                   p_goal_boltzmann: float) -> None:
    cd = costdif(problem.dist, problem.start, node)
    assert costdif_probabilities(cd, 1.0)[0] == pytest.approx(p_goal_costdif)
    assert boltzmann_probabilities(cd, 1.0)[0] == pytest.approx(p_goal_boltzmann)
    assert costdif_probabilities(cd, 1.0).sum() == pytest.approx(1.0)


def test_observer_priors_and_path(problem: Problem) -> None:
    obs = Observer("boltzmann", beta=1.0, priors=(3.0, 1.0))
    probs = obs.path_probabilities(problem.dist, problem.start, [0, 1, 5, 3])
    assert probs.shape == (4, 2)
    assert probs[0, 0] == pytest.approx(0.75)  # equal likelihoods: the prior
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_rmp_and_target(problem: Problem) -> None:
    assert problem.rmp().tolist() == [1.5]
    assert baselines.rmp_target(problem, 0) == 5


@pytest.mark.parametrize(("name", "path", "cost", "ldp_index", "completion", "density"), [
    ("shortest", [0, 1, 2, 3], 3.0, 1, 1 / 3, 0.5),
    ("pi_d1", [0, 1, 5, 4, 5, 3], 6.0, 4, 4 / 6, 5 / 6),
    ("pi_d2", [0, 1, 5, 3], 4.0, 2, 0.5, 0.75),
    ("pi_d4", [0, 1, 5, 3], 4.0, 2, 0.5, 0.75),
])
def test_classical_paths(problem: Problem, name: str, path: list[int], cost: float,
                         ldp_index: int, completion: float, density: float) -> None:
    got = baselines.plan(problem, name)
    assert got == path
    assert path_cost(problem.graph, got) == pytest.approx(cost)
    assert ldp(problem, got) == (ldp_index, pytest.approx(completion))
    assert deceptive_density(problem, got) == pytest.approx(density)


def test_budget_fallback(problem: Problem) -> None:
    problem.budget = 1.2 * problem.optc  # 3.6: pi_d2 (4.0) does not fit
    plan = baselines.plan_within_budget(problem, "pi_d1")
    assert plan.path == [0, 1, 2, 3]
    assert plan.fallback_from == ["pi_d1", "pi_d2"]
    problem.budget = 1.5 * problem.optc  # 4.5: pi_d1 (6.0) does not, pi_d2 does
    plan = baselines.plan_within_budget(problem, "pi_d1")
    assert plan.path == [0, 1, 5, 3]
    assert plan.fallback_from == ["pi_d1"]


def test_evaluate_path(problem: Problem) -> None:
    m = evaluate_path(problem, [0, 1, 5, 3])
    assert m["cost_ratio"] == pytest.approx(4 / 3)
    assert m["ldp_node"] == 5 and m["ldp_completion"] == pytest.approx(0.5)
    assert m["within_budget"] and m["goal_reached"]
    assert len(m["p_true_goal"]) == 4 and m["p_true_goal"][0] == pytest.approx(0.5)


def test_invalid_path_rejected(problem: Problem) -> None:
    from nav_policy.deception.graphs import GraphError

    with pytest.raises(GraphError, match="not adjacent"):
        validate_path(problem, [0, 2, 3])
    with pytest.raises(GraphError, match="start"):
        validate_path(problem, [1, 2, 3])
