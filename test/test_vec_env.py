"""BatchedSubprocVecEnv steps real LocalNav envs exactly as SB3's DummyVecEnv does."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from nav_policy.envs.registration import LOCAL_NAV_ID
from nav_policy.envs.vec import BatchedSubprocVecEnv
from nav_policy.errors import ConfigError


def _fn(pool_dir: str):
    def make() -> gym.Env:
        import nav_policy  # noqa: F401 - registers the env in the worker

        return gym.make(LOCAL_NAV_ID, tier="easy", world_pool=2, world_pool_dir=pool_dir)

    return make


def test_batched_matches_dummy(tmp_path):
    fns = [_fn(str(tmp_path)) for _ in range(3)]
    ref, vec = DummyVecEnv(fns), BatchedSubprocVecEnv(fns, workers=2)
    try:
        assert [len(b) for b in vec.blocks] == [2, 1]
        for v in (ref, vec):
            v.seed(5)
        assert np.array_equal(ref.reset(), vec.reset())
        rng = np.random.default_rng(0)
        dones = 0
        for _ in range(150):
            a = rng.uniform(-1, 1, (3, 2)).astype(np.float32)
            o1, r1, d1, i1 = ref.step(a)
            o2, r2, d2, i2 = vec.step(a)
            assert np.array_equal(o1, o2) and np.array_equal(r1, r2) and np.array_equal(d1, d2)
            for x, y in zip(i1, i2):
                assert x.keys() == y.keys()
                if "terminal_observation" in x:
                    assert np.array_equal(x["terminal_observation"], y["terminal_observation"])
            dones += int(d1.sum())
        assert dones > 0  # auto-resets were exercised
        # per-env calls reach the env through its wrappers, in global order
        vec.env_method("set_tiers", ["medium"], indices=[2])
        assert vec.get_attr("tiers") == [["easy"], ["easy"], ["medium"]]
        assert vec.get_attr("tiers", indices=[2, 0]) == [["medium"], ["easy"]]
    finally:
        ref.close()
        vec.close()


def test_batched_rejects_bad_worker_counts(tmp_path):
    with pytest.raises(ConfigError, match="workers"):
        BatchedSubprocVecEnv([_fn(str(tmp_path))], workers=2)
