"""LocalNav-v0: Gymnasium API conformance, determinism, episode ends, rewards, rendering, vec envs."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from nav_policy.envs.local_nav import LocalNavEnv
from nav_policy.envs.registration import LOCAL_NAV_ID, LOCAL_NAV_MAX_STEPS
from nav_policy.errors import WorldError
from nav_policy.paths import sim_path
from nav_policy.sim.render import GOAL, ROBOT
from nav_policy.sim.simulator import MOTION_MODES
from nav_policy.sim.world import Box, World

REWARD_TERMS = {"progress", "goal", "collision", "proximity", "step", "smoothness"}
STOP = np.array([-1.0, 0.0], dtype=np.float32)  # v = v_min = 0, w = 0
FORWARD = np.array([1.0, 0.0], dtype=np.float32)  # v = v_max, w = 0


@pytest.fixture(params=MOTION_MODES)
def motion_mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture()
def env(motion_mode: str) -> Iterator[gym.Env[np.ndarray, np.ndarray]]:
    e = gym.make(LOCAL_NAV_ID, tier="medium", motion_mode=motion_mode)
    yield e
    e.close()


def _lane(obstacle_x: float | None = None) -> World:
    """An empty 8 x 4 m arena; start at x = -2 facing the goal at x = 0 (optionally a box between)."""
    obstacles = (Box(center=(obstacle_x, 0.0), size=(0.2, 1.0)),) if obstacle_x is not None else ()
    return World(name="lane", size=(8.0, 4.0), obstacles=obstacles, start=(-2.0, 0.0, 0.0),
                 goal=(0.0, 0.0) if obstacle_x is None else (3.0, 0.0))


def _local_nav(env: gym.Env[np.ndarray, np.ndarray]) -> LocalNavEnv:
    inner = env.unwrapped
    assert isinstance(inner, LocalNavEnv)
    return inner


def _rollout(env: gym.Env[np.ndarray, np.ndarray], seed: int,
             steps: int = 40) -> tuple[list[np.ndarray], list[float]]:
    """Observations and rewards for a fixed action sequence after reset(seed=seed)."""
    actions = np.random.default_rng(123).uniform(-1, 1, size=(steps, 2)).astype(np.float32)
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for a in actions:
        obs, reward, terminated, truncated, _ = env.step(a)
        observations.append(obs)
        rewards.append(float(reward))
        if terminated or truncated:
            break
    return observations, rewards


# ---- API -------------------------------------------------------------------------------------
def test_check_env_without_warnings(motion_mode: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = gym.make(LOCAL_NAV_ID, motion_mode=motion_mode, render_mode="rgb_array")
        check_env(e.unwrapped)
        e.close()
    messages = [f"{w.category.__name__}: {w.message}" for w in caught]
    assert messages == [], messages


def test_spaces(env: gym.Env[np.ndarray, np.ndarray]) -> None:
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    assert env.observation_space.shape == (67,) and env.observation_space.dtype == np.float32
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert env.spec is not None and env.spec.max_episode_steps == LOCAL_NAV_MAX_STEPS


def test_same_seed_same_trajectory(motion_mode: str) -> None:
    a = gym.make(LOCAL_NAV_ID, tier="dynamic", motion_mode=motion_mode)
    b = gym.make(LOCAL_NAV_ID, tier="dynamic", motion_mode=motion_mode)
    obs_a, rew_a = _rollout(a, seed=42)
    _rollout(b, seed=7)  # history in b must not matter
    obs_b, rew_b = _rollout(b, seed=42)
    assert len(obs_a) == len(obs_b) > 5
    for x, y in zip(obs_a, obs_b):
        np.testing.assert_array_equal(x, y)
    assert rew_a == rew_b
    a.close()
    b.close()


def test_different_seeds_differ(env: gym.Env[np.ndarray, np.ndarray]) -> None:
    obs_a, rew_a = _rollout(env, seed=1, steps=5)
    obs_b, rew_b = _rollout(env, seed=2, steps=5)
    assert not np.array_equal(obs_a[0], obs_b[0])
    assert rew_a != rew_b


def test_world_seed_option_is_reproducible(env: gym.Env[np.ndarray, np.ndarray]) -> None:
    _, info_a = env.reset(seed=1, options={"tier": "easy", "world_seed": 11})
    _, info_b = env.reset(seed=2, options={"tier": "easy", "world_seed": 11})
    assert info_a["world"] == info_b["world"] == "easy_11" and info_a["tier"] == "easy"


def test_fixed_world_file(motion_mode: str) -> None:
    path = sim_path("worlds") / "room_doorway.yaml"
    e = gym.make(LOCAL_NAV_ID, world=path, motion_mode=motion_mode)
    _, info = e.reset(seed=0)
    assert info["world"] == "room_doorway"
    assert tuple(_local_nav(e).sim.pose[:2]) == pytest.approx((-3.5, -2.5), abs=1e-3)
    e.close()


# ---- episode end -----------------------------------------------------------------------------
def test_truncated_only_by_time_limit(motion_mode: str) -> None:
    e = gym.make(LOCAL_NAV_ID, motion_mode=motion_mode, max_episode_steps=5)
    e.reset(seed=0, options={"world": _lane()})
    ends = [e.step(STOP)[2:4] for _ in range(5)]
    assert ends == [(False, False)] * 4 + [(False, True)]
    e.close()


def test_unwrapped_env_never_truncates() -> None:
    e = LocalNavEnv(tier="easy")
    e.reset(seed=0, options={"world": _lane()})
    for _ in range(LOCAL_NAV_MAX_STEPS + 5):
        _, _, terminated, truncated, _ = e.step(STOP)
        assert not terminated and not truncated
    e.close()


def test_terminated_on_goal(env: gym.Env[np.ndarray, np.ndarray]) -> None:
    env.reset(seed=0, options={"world": _lane()})
    for _ in range(60):
        _, _, terminated, truncated, info = env.step(FORWARD)
        if terminated:
            break
    assert terminated and not truncated
    assert info["is_success"] and not info["collision"]
    assert info["distance_to_goal"] <= _local_nav(env).goal_tolerance
    assert info["reward_terms"]["goal"] == pytest.approx(_local_nav(env).weights["goal"])


def test_terminated_on_collision(env: gym.Env[np.ndarray, np.ndarray]) -> None:
    env.reset(seed=0, options={"world": _lane(obstacle_x=-1.0)})
    for _ in range(60):
        _, _, terminated, truncated, info = env.step(FORWARD)
        if terminated:
            break
    assert terminated and not truncated
    assert info["collision"] and not info["is_success"]
    assert info["reward_terms"]["collision"] == pytest.approx(_local_nav(env).weights["collision"])


# ---- rewards ---------------------------------------------------------------------------------
def test_reward_terms_sum_to_reward(env: gym.Env[np.ndarray, np.ndarray]) -> None:
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(30):
        _, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        terms: dict[str, Any] = info["reward_terms"]
        assert set(terms) == REWARD_TERMS
        assert reward == pytest.approx(sum(terms.values()), abs=1e-9)
        if terminated or truncated:
            env.reset()


def test_progress_rewards_driving_to_goal(env: gym.Env[np.ndarray, np.ndarray]) -> None:
    env.reset(seed=0, options={"world": _lane()})
    _, _, _, _, info = env.step(FORWARD)
    _, _, _, _, info = env.step(FORWARD)
    assert info["reward_terms"]["progress"] > 0.0
    assert info["reward_terms"]["proximity"] == 0.0  # nothing within the margin


# ---- errors ----------------------------------------------------------------------------------
def test_unknown_tier() -> None:
    with pytest.raises(WorldError, match=r"unknown tier 'nope'"):
        gym.make(LOCAL_NAV_ID, tier="nope")


def test_start_inside_obstacle_on_reset() -> None:
    e = gym.make(LOCAL_NAV_ID)
    bad = World(name="blocked", size=(6.0, 4.0), obstacles=(Box((-2.0, 0.0), (0.5, 0.5)),),
                start=(-2.0, 0.0, 0.0), goal=(2.0, 0.0))
    with pytest.raises(WorldError, match=r"'blocked': start .* inside an obstacle"):
        e.reset(seed=0, options={"world": bad})
    e.close()


# ---- rendering -------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(10.0, 10.0), (6.0, 4.0)])
@pytest.mark.parametrize("render_size", [160, 320])
def test_render_shape_and_goal_colour(size: tuple[float, float], render_size: int) -> None:
    world = World(name="r", size=size, obstacles=(Box((0.0, 1.0), (0.5, 0.5)),),
                  start=(-1.5, -1.0, 0.0), goal=(1.5, -1.0))
    e = gym.make(LOCAL_NAV_ID, render_mode="rgb_array", render_size=render_size)
    e.reset(seed=0, options={"world": world})
    e.step(FORWARD)
    img = e.render()
    scale = render_size / max(size)
    assert isinstance(img, np.ndarray) and img.dtype == np.uint8
    assert img.shape == (round(size[1] * scale), round(size[0] * scale), 3)
    for colour in (GOAL, ROBOT):
        assert np.all(img == np.array(colour, np.uint8), axis=-1).any(), f"no {colour} pixel"
    e.close()


def test_render_none_without_render_mode(env: gym.Env[np.ndarray, np.ndarray]) -> None:
    env.reset(seed=0)
    assert env.render() is None


# ---- vectorised ----------------------------------------------------------------------------
def test_subproc_vec_env_steps() -> None:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    # "module:id" makes each worker import nav_policy (and so register the id) before gym.make
    venv = make_vec_env(f"nav_policy:{LOCAL_NAV_ID}", n_envs=2, seed=0, vec_env_cls=SubprocVecEnv,
                        env_kwargs={"tier": "easy"})
    try:
        obs = venv.reset()
        assert isinstance(obs, np.ndarray) and obs.shape == (2, 67)
        assert not np.array_equal(obs[0], obs[1])  # seeds 0 and 1: different worlds
        rng = np.random.default_rng(0)
        for _ in range(30):
            obs, rewards, _, infos = venv.step(rng.uniform(-1, 1, (2, 2)).astype(np.float32))
            assert isinstance(obs, np.ndarray) and obs.shape == (2, 67)
            assert rewards.shape == (2,) and len(infos) == 2
            assert np.all(np.isfinite(obs)) and np.all(np.isfinite(rewards))
    finally:
        venv.close()
