"""Observation and action codecs: the one place sensor data becomes policy input and policy
output becomes velocity. Used by the envs, the exporter and the ROS nodes alike."""

from nav_policy.codecs.action import (
    ActionSpec,
    decode_action,
    encode_action,
    initial_prev_action,
)
from nav_policy.codecs.frame import SensorFrame
from nav_policy.codecs.observation import (
    CODEC_VERSION,
    ObsSpec,
    encode_observation,
    goal_features,
    pool_scan,
)

__all__ = [
    "CODEC_VERSION", "ActionSpec", "ObsSpec", "SensorFrame", "decode_action", "encode_action",
    "encode_observation", "goal_features", "initial_prev_action", "pool_scan",
]
