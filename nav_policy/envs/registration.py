"""Register the nav_policy Gymnasium ids (idempotent)."""

import gymnasium as gym

LOCAL_NAV_ID = "nav_policy/LocalNav-v0"
LOCAL_NAV_MAX_STEPS = 500


def register_envs() -> None:
    if LOCAL_NAV_ID not in gym.registry:
        gym.register(id=LOCAL_NAV_ID, entry_point="nav_policy.envs.local_nav:LocalNavEnv",
                     max_episode_steps=LOCAL_NAV_MAX_STEPS)
    from nav_policy.deception.registration import register as register_deception

    register_deception()
