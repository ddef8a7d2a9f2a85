"""Gymnasium environments; ids are registered when nav_policy is imported."""

from nav_policy.envs.registration import register_envs

__all__ = ["register_envs"]
