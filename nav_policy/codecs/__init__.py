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
    CODEC_VERSIONS,
    V1_FOOTPRINT,
    ObservationEncoder,
    ObsSpec,
    encode_observation,
    goal_features,
    pool_points,
    pool_scan,
    resample_scan,
    scan_points,
    seen_sectors,
)

__all__ = [
    "CODEC_VERSION", "CODEC_VERSIONS", "V1_FOOTPRINT", "ActionSpec", "ObsSpec",
    "ObservationEncoder", "SensorFrame", "decode_action", "encode_action", "encode_observation",
    "goal_features", "initial_prev_action", "pool_points", "pool_scan", "resample_scan",
    "scan_points", "seen_sectors",
]
