"""Register the nav_policy Gymnasium ids (idempotent)."""

from typing import Any

import gymnasium as gym

LOCAL_NAV_ID = "nav_policy/LocalNav-v0"
LOCAL_NAV_MAX_STEPS = 500


def register_envs() -> None:
    if LOCAL_NAV_ID not in gym.registry:
        gym.register(id=LOCAL_NAV_ID, entry_point="nav_policy.envs.local_nav:LocalNavEnv",
                     max_episode_steps=LOCAL_NAV_MAX_STEPS)


def env_keys() -> set[str]:
    """The keyword arguments LocalNav-v0 accepts (its reward terms and the base env's)."""
    import inspect

    from nav_policy.envs.base import BaseNavEnv
    from nav_policy.envs.local_nav import LocalNavEnv

    names: set[str] = set()
    for cls in (LocalNavEnv, BaseNavEnv):
        for p in inspect.signature(cls.__init__).parameters.values():
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                names.add(p.name)
    return names


def check_env_kwargs(env_kwargs: dict[str, Any], where: str) -> None:
    """A training config's `env:` section, checked in this process before any worker starts:
    unknown keys (the closest named) and values the env refuses raise ConfigError."""
    from nav_policy.errors import ConfigError, NavPolicyError
    from nav_policy.yamlcheck import check_keys

    check_keys(env_kwargs, env_keys(), f"{where}: env")
    register_envs()
    try:
        env = gym.make(LOCAL_NAV_ID, **env_kwargs)
        try:
            env.reset(seed=0)
        finally:
            env.close()
    except NavPolicyError as exc:
        raise ConfigError(f"{where}: env: {exc}") from exc
    except (TypeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{where}: env: {first}") from exc


def codec_specs(env_kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """(ObsSpec, ActionSpec) of LocalNav-v0 built with `env_kwargs` (domain randomisation off):
    the codec a model trained in that env is exported and served with."""
    register_envs()
    env = gym.make(LOCAL_NAV_ID, **{k: v for k, v in env_kwargs.items() if k != "randomize"})
    try:
        return env.unwrapped.obs_spec, env.unwrapped.action_spec
    finally:
        env.close()
