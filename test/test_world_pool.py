"""World pools: pooled worlds are generate_world's, bit for bit, from memory and from disk."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from nav_policy.envs.registration import LOCAL_NAV_ID, register_envs
from nav_policy.errors import ConfigError
from nav_policy.sim.generate import generate_world
from nav_policy.sim.pool import POOL_SEED_BASE, WorldPool, pool_seeds


def _same(a, b) -> None:
    (wa, ma), (wb, mb) = a, b
    assert wa == wb
    for x, y in ((ma.field, mb.field), (ma.grid.clearance, mb.grid.clearance),
                 (ma.path, mb.path)):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    assert ma.grid.resolution == mb.grid.resolution and ma.grid.origin == mb.grid.origin


def test_pool_worlds_equal_generated_and_persist(tmp_path):
    pool = WorldPool(2, 0.2, tmp_path)
    seed = int(pool.seeds("easy")[0])
    assert seed >= POOL_SEED_BASE
    fresh = generate_world("easy", seed, 0.2)
    _same(pool.get("easy", seed), fresh)
    assert pool.generated == 1 and pool.get("easy", seed) is pool.get("easy", seed)
    again = WorldPool(2, 0.2, tmp_path)  # another process: loads, does not generate
    _same(again.get("easy", seed), fresh)
    assert (again.generated, again.loaded) == (0, 1)
    assert list(pool_seeds("easy", 2)) == list(again.seeds("easy"))


def test_pool_errors(tmp_path):
    with pytest.raises(ConfigError, match="pool size"):
        WorldPool(0, 0.2)
    with pytest.raises(ConfigError, match="unknown tier"):
        WorldPool(1, 0.2).seeds("moon")
    pool = WorldPool(1, 0.2, tmp_path)
    bad = tmp_path / "easy_5_r0.2_g0.05.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="unreadable"):
        pool.get("easy", 5)


def test_env_draws_from_its_pool_and_matches_unpooled(tmp_path):
    register_envs()
    env = gym.make(LOCAL_NAV_ID, tier="easy", world_pool=2, world_pool_dir=tmp_path)
    seeds = set(env.unwrapped.pool.seeds("easy").tolist())
    for s in range(4):
        env.reset(seed=s)
        assert env.unwrapped.world.seed in seeds
    # an explicit world seed gives the same episode start with or without the pool
    plain = gym.make(LOCAL_NAV_ID, tier="easy")
    a, _ = env.reset(seed=1, options={"world_seed": 3})
    b, _ = plain.reset(seed=1, options={"world_seed": 3})
    assert np.array_equal(a, b)
    act = np.array([0.5, 0.1], np.float32)
    assert np.array_equal(env.step(act)[0], plain.step(act)[0])
    env.close()
    plain.close()
