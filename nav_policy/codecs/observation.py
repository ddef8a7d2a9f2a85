"""Observation codec.

Layout of the observation vector (float32), version CODEC_VERSION:

    [0 : S)     lidar min-pooled into S sectors, metres, clipped to [range_min, range_max]
    S           goal distance, metres, clipped to goal_max
    S+1, S+2    cos, sin of the goal heading in the robot frame
    S+3, S+4    current v (m/s) and w (rad/s) from odometry
    S+5, S+6    previous action in [-1, 1]^2 (the policy's own last output)

Values are raw (SI); normalisation lives inside the trained/exported model, so the env, the
exporter and the ROS node all feed exactly this vector.

Invalid beams (NaN, -inf, below range_min) are ignored by the pooling; +inf (no return) reads
as range_max. A scan of the wrong length, or one that nav_policy.codecs.scan.scan_problem
refuses (the rule every planner shares), raises CodecError: the caller must stop the robot.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np

from nav_policy.codecs.frame import SensorFrame
from nav_policy.codecs.scan import MAX_INVALID_FRACTION, scan_problem
from nav_policy.errors import CodecError

CODEC_VERSION = "1"


@dataclass(frozen=True)
class ObsSpec:
    beams: int = 360
    sectors: int = 60
    range_min: float = 0.12
    range_max: float = 3.5
    goal_max: float = 10.0
    v_max: float = 0.5
    w_max: float = 2.0
    max_invalid_fraction: float = MAX_INVALID_FRACTION

    def __post_init__(self) -> None:
        if self.sectors <= 0 or self.beams <= 0 or self.beams % self.sectors:
            raise CodecError(f"lidar beams ({self.beams}) must be a positive multiple of "
                             f"sectors ({self.sectors})")
        if not 0 < self.range_min < self.range_max:
            raise CodecError(f"need 0 < range_min < range_max, got {self.range_min}, {self.range_max}")

    @property
    def size(self) -> int:
        return self.sectors + 7

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        s = self.sectors
        low = np.concatenate([np.full(s, self.range_min), [0.0, -1, -1, -self.v_max, -self.w_max,
                                                            -1, -1]])
        high = np.concatenate([np.full(s, self.range_max), [self.goal_max, 1, 1, self.v_max,
                                                             self.w_max, 1, 1]])
        return low.astype(np.float32), high.astype(np.float32)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ObsSpec:
        try:
            data = json.loads(text)
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise CodecError(f"invalid obs_spec {text[:80]!r}: {exc}") from exc


def pool_scan(ranges: np.ndarray, spec: ObsSpec) -> np.ndarray:
    """Min-pool raw ranges into spec.sectors sectors, clipped to [range_min, range_max]."""
    r = np.asarray(ranges, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        raise CodecError("empty or non-1D scan")
    if r.size != spec.beams:
        raise CodecError(f"scan has {r.size} beams, the model expects {spec.beams}")
    problem = scan_problem(r, spec.range_min, None, spec.max_invalid_fraction)
    if problem:
        raise CodecError(problem)
    valid = np.isfinite(r) & (r >= spec.range_min)
    r = np.where(valid, r, spec.range_max)
    pooled = r.reshape(spec.sectors, -1).min(axis=1)
    return np.clip(pooled, spec.range_min, spec.range_max)


def goal_features(pose: tuple[float, float, float], goal: tuple[float, float],
                  spec: ObsSpec) -> tuple[float, float, float]:
    """(distance clipped to goal_max, cos heading, sin heading) of the goal in the robot frame."""
    x, y, yaw = pose
    dx, dy = goal[0] - x, goal[1] - y
    if not all(math.isfinite(v) for v in (dx, dy, yaw)):
        raise CodecError("non-finite pose or goal")
    heading = math.atan2(dy, dx) - yaw
    return min(math.hypot(dx, dy), spec.goal_max), math.cos(heading), math.sin(heading)


def encode_observation(frame: SensorFrame, prev_action: np.ndarray, spec: ObsSpec) -> np.ndarray:
    """The policy input for one control step (see module docstring for the layout)."""
    if not (math.isclose(frame.range_min, spec.range_min, abs_tol=1e-6)
            and math.isclose(frame.range_max, spec.range_max, abs_tol=1e-6)):
        raise CodecError(f"scan range [{frame.range_min}, {frame.range_max}] differs from the "
                         f"model's [{spec.range_min}, {spec.range_max}]")
    v, w = frame.velocity
    if not (math.isfinite(v) and math.isfinite(w)):
        raise CodecError("non-finite odometry velocity")
    a = np.asarray(prev_action, dtype=np.float64).reshape(-1)
    if a.size != 2 or not np.all(np.isfinite(a)):
        raise CodecError("previous action must be 2 finite numbers")
    obs = np.empty(spec.size, dtype=np.float32)
    obs[: spec.sectors] = pool_scan(frame.ranges, spec)
    obs[spec.sectors: spec.sectors + 3] = goal_features(frame.pose, frame.goal, spec)
    obs[spec.sectors + 3] = np.clip(v, -spec.v_max, spec.v_max)
    obs[spec.sectors + 4] = np.clip(w, -spec.w_max, spec.w_max)
    obs[spec.sectors + 5:] = np.clip(a, -1.0, 1.0)
    return obs
