"""Gymnasium id of the deception env; importing this module is cheap (no scipy, no torch)."""

from __future__ import annotations

import gymnasium as gym

ENV_ID = "nav_policy/DeceptiveGraph-v0"


def register() -> None:
    """Register nav_policy/DeceptiveGraph-v0 with Gymnasium (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="nav_policy.deception.env:DeceptiveGraphEnv")


__all__ = ["ENV_ID", "register"]
