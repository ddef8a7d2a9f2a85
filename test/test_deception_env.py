"""nav_policy/DeceptiveGraph-v0: Gymnasium checks, determinism, guard behaviour."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from nav_policy.deception.env import ENV_ID, DeceptiveGraphEnv, register
from nav_policy.deception.examples import TINY_DECOY, TINY_GOAL, TINY_START, tiny_graph
from nav_policy.deception.problem import Problem


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    register()
    register()  # idempotent


@pytest.mark.parametrize("mode", ["ambiguity", "exaggeration"])
def test_check_env(mode: str) -> None:
    env = gym.make(ENV_ID, mode=mode)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_same_seed_same_episode() -> None:
    def roll(seed: int) -> list[list[int]]:
        env = DeceptiveGraphEnv()
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(0)
        done = False
        while not done:
            allowed = np.flatnonzero(obs["action_mask"])
            obs, _, term, trunc, info = env.step(int(rng.choice(allowed)))
            done = term or trunc
        return info["path"]

    assert roll(7) == roll(7)


def test_reward_and_guard_on_tiny_graph() -> None:
    env = DeceptiveGraphEnv()
    problem = Problem.build(tiny_graph(), TINY_START, TINY_GOAL, [TINY_DECOY], 1.5)
    obs, _ = env.reset(seed=0, options={"problem": problem})
    assert obs["action_mask"].tolist()[:2] == [1, 0]  # node 0: only neighbour 1
    obs, r, term, _, info = env.step(0)  # to node 1 (deceptive, first visit)
    assert r == pytest.approx(1.0 / 4.5) and not term
    # at node 1 (spent 1, remaining 3.5): neighbours 0, 2, 5 → 0 (1+3) is infeasible
    assert obs["action_mask"][:3].tolist() == [0, 1, 1]
    obs, r, term, _, info = env.step(0)  # forbidden: the guard moves along a shortest path
    assert info["guarded"] and info["node"] == 2
    assert r == pytest.approx(-0.1)  # node 2 is truthful: no bonus
    # at node 2 (remaining 2.5): neighbours 1 (1+2 > 2.5) and the goal 3
    assert obs["action_mask"][:2].tolist() == [0, 1]
    obs, r, term, trunc, info = env.step(1)
    assert term and not trunc and r == pytest.approx(1.0)
    assert info["path"] == [0, 1, 2, 3]
