"""Register the nav_policy Gymnasium ids (idempotent)."""

from typing import Any

import gymnasium as gym

LOCAL_NAV_ID = "nav_policy/LocalNav-v0"
LOCAL_NAV_MAX_STEPS = 500


def register_envs() -> None:
    if LOCAL_NAV_ID not in gym.registry:
        gym.register(id=LOCAL_NAV_ID, entry_point="nav_policy.envs.local_nav:LocalNavEnv",
                     max_episode_steps=LOCAL_NAV_MAX_STEPS)


def codec_specs(env_kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """(ObsSpec, ActionSpec) of LocalNav-v0 built with `env_kwargs` (domain randomisation off):
    the codec a model trained in that env is exported and served with."""
    register_envs()
    env = gym.make(LOCAL_NAV_ID, **{k: v for k, v in env_kwargs.items() if k != "randomize"})
    try:
        return env.unwrapped.obs_spec, env.unwrapped.action_spec
    finally:
        env.close()
