"""Held-out closed-loop evaluation shared by the trainers: deterministic policy, no sensor noise,
world seeds seed + i (never used in training); success / collision / timeout per tier."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

ENV_ID = "nav_policy/LocalNav-v0"
NOISE_KEYS = ("randomize", "lidar_noise", "lidar_dropout", "actuation_noise", "odom_drift")


def held_out_rates(env_kwargs: Mapping[str, Any], tiers: list[str], episodes: int, seed: int,
                   act: Callable[[np.ndarray], np.ndarray]) -> dict[str, dict[str, float]]:
    """`act(obs)` returns the normalised action; the env's noise settings are dropped."""
    from nav_policy.envs.registration import register_envs

    register_envs()  # the ids, also in a fresh worker process

    env = gym.make(ENV_ID, **{k: v for k, v in env_kwargs.items() if k not in NOISE_KEYS})
    out: dict[str, dict[str, float]] = {}
    try:
        for tier in tiers:
            succ = coll = 0
            for i in range(episodes):
                obs, _ = env.reset(seed=seed + i, options={"tier": tier, "world_seed": seed + i})
                done, info = False, {}
                while not done:
                    obs, _, term, trunc, info = env.step(act(obs))
                    done = term or trunc
                succ += int(info.get("is_success", False))
                coll += int(info.get("collision", False))
            out[tier] = {"success": succ / episodes, "collision": coll / episodes,
                         "timeout": (episodes - succ - coll) / episodes}
    finally:
        env.close()
    return out
