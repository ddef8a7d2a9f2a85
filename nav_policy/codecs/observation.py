"""Observation codec, versions 1 and 2 (ObsSpec.version; see docs/DESIGN.md, "Codec").

Version 1 (the shipped models) -- layout of the observation vector (float32):

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

v1 sector i covers robot-frame angles [-pi + i w, -pi + (i + 1) w), w = 2 pi / S. A scan in the
simulator's own geometry (spec.beams beams from angle_min -pi, the model's range limits, the
lidar at the robot centre) is pooled by beam index exactly as the models were trained. Any
other scan is resampled by angle into the same sectors (resample_scan below): a v1 model is
refused only where the sensor does not fit it, with CodecError naming the mismatch: a field of
view under 360 degrees (v1 has no notion of an unseen sector) or a range_max shorter than the
model's. A longer range_max is clipped; the beam count, angle_min and the mount pose are free.

Version 2 (CODEC_VERSIONS[-1]; for models trained from now on):

    [0 : S)       ranges by sector, from the robot centre, clipped to [range_min, range_max];
                  an unseen sector reads range_min (as if blocked: an unsure robot stops)
    [S : 2S)      seen mask: 1 where the lidar's field of view covers the sector's centre
                  direction (from its mount pose), 0 where it does not
    [2S : 2S+KS)  history (spec.history = K >= 0): the K previous scans' points re-expressed
                  in the CURRENT robot frame by odometry and pooled the same way (block k is
                  k steps back); static obstacles land where they are now, moving ones where
                  they were, so their velocity is observable; a sector outside that past
                  scan's field of view reads range_min. At an episode's start the missing
                  past repeats the first scan (no motion).
    then          goal distance, cos, sin, v, w, previous action (2), as in v1

Sectors are built by angle from angle_min/angle_increment whatever the beam count; the points
are moved from the lidar's mount pose (SensorFrame.mount) into the robot frame before
pooling. The sensor's range_max may exceed the model's (clipped) but not fall short of it
(CodecError). The footprint (circle or rectangle) is part of the v2 spec, and `min_fov_deg`
is the narrowest field of view the model was trained to accept. With history, use
ObservationEncoder (it keeps the past scans); encode_observation serves the stateless cases.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import asdict, dataclass, fields

import numpy as np

from nav_policy.codecs.frame import SensorFrame
from nav_policy.codecs.scan import MAX_INVALID_FRACTION, scan_problem
from nav_policy.errors import CodecError, ConfigError
from nav_policy.sim.robot import Footprint

CODEC_VERSION = "1"  # the default (the shipped models' version)
CODEC_VERSIONS = ("1", "2")
V1_FIELDS = ("beams", "sectors", "range_min", "range_max", "goal_max", "v_max", "w_max",
             "max_invalid_fraction")
V1_FOOTPRINT = Footprint.circle(0.2)  # what every v1 model was trained with (the diffbot)
FULL_TURN = 2.0 * math.pi


@dataclass(frozen=True)
class ObsSpec:
    beams: int = 360  # v1: the beam count of the simulator's scan; v2: unused (any count)
    sectors: int = 60
    range_min: float = 0.12
    range_max: float = 3.5
    goal_max: float = 10.0
    v_max: float = 0.5
    w_max: float = 2.0
    max_invalid_fraction: float = MAX_INVALID_FRACTION
    version: str = CODEC_VERSION
    history: int = 0  # v2: past scans stacked (re-expressed in the current robot frame)
    min_fov_deg: float = 360.0  # v2: narrowest lidar field of view the model accepts
    footprint: Footprint | None = None  # v2: the robot outline the model was trained with

    def __post_init__(self) -> None:
        if self.version not in CODEC_VERSIONS:
            raise CodecError(f"codec version {self.version!r} is not one of "
                             f"{', '.join(CODEC_VERSIONS)}")
        if self.version == "1":
            if self.sectors <= 0 or self.beams <= 0 or self.beams % self.sectors:
                raise CodecError(f"lidar beams ({self.beams}) must be a positive multiple of "
                                 f"sectors ({self.sectors})")
            if self.history or self.footprint is not None or self.min_fov_deg != 360.0:
                raise CodecError("history, min_fov_deg and footprint are codec v2 fields")
        else:
            if self.sectors <= 0:
                raise CodecError(f"sectors must be positive, got {self.sectors}")
            if not (isinstance(self.history, int) and 0 <= self.history <= 16):
                raise CodecError(f"history must be an integer in [0, 16], got {self.history}")
            if not 0.0 < self.min_fov_deg <= 360.0:
                raise CodecError(f"min_fov_deg must be in (0, 360], got {self.min_fov_deg}")
            if self.footprint is None:
                object.__setattr__(self, "footprint", V1_FOOTPRINT)
        if not 0 < self.range_min < self.range_max:
            raise CodecError(f"need 0 < range_min < range_max, got {self.range_min}, {self.range_max}")

    @property
    def size(self) -> int:
        if self.version == "1":
            return self.sectors + 7
        return self.sectors * (2 + self.history) + 7

    @property
    def model_footprint(self) -> Footprint:
        """The footprint the model was trained with (v1: the diffbot's disc)."""
        return self.footprint if self.footprint is not None else V1_FOOTPRINT

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        s = self.sectors
        tail_low = [0.0, -1, -1, -self.v_max, -self.w_max, -1, -1]
        tail_high = [self.goal_max, 1, 1, self.v_max, self.w_max, 1, 1]
        if self.version == "1":
            low = np.concatenate([np.full(s, self.range_min), tail_low])
            high = np.concatenate([np.full(s, self.range_max), tail_high])
        else:
            k = self.history
            low = np.concatenate([np.full(s, self.range_min), np.zeros(s),
                                  np.full(k * s, self.range_min), tail_low])
            high = np.concatenate([np.full(s, self.range_max), np.ones(s),
                                   np.full(k * s, self.range_max), tail_high])
        return low.astype(np.float32), high.astype(np.float32)

    def to_json(self) -> str:
        data = asdict(self)
        if self.version == "1":  # exactly the fields v1 files carry
            return json.dumps({k: data[k] for k in V1_FIELDS}, sort_keys=True)
        data.pop("beams")
        data["footprint"] = self.model_footprint.to_dict()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ObsSpec:
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(data) - known)
            if unknown:
                raise ValueError(f"unknown field(s) {', '.join(unknown)}")
            if data.get("footprint") is not None:
                data["footprint"] = Footprint.from_dict(data["footprint"])
            return cls(**data)
        except (TypeError, ValueError, ConfigError) as exc:
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


# ---- resampling by angle (v2, and v1 on a foreign lidar) ------------------------------------
SECTOR_EPS = 1e-6  # in sector widths: a beam on a sector boundary goes to the upper sector
FULL_FOV_TOL = 1e-3  # rad: a scan covering 2 pi minus this is a full turn (float32 fields)


@dataclass(frozen=True)
class ScanPoints:
    """A scan's returns as robot-frame points, and its field of view (robot frame)."""

    x: np.ndarray
    y: np.ndarray
    angle: np.ndarray | None  # beam directions (robot frame) when the lidar is at the centre
    dist: np.ndarray | None  # and the ranges themselves (exact distances from the centre)
    fov_start: float  # robot-frame angle where the covered arc starts (counter-clockwise)
    fov_span: float  # radians covered, >= 2 pi - FULL_FOV_TOL for a full turn


def _fov(frame: SensorFrame, n: int) -> tuple[float, float]:
    inc = float(frame.angle_increment)
    first, last = float(frame.angle_min), float(frame.angle_min) + inc * (n - 1)
    return min(first, last) - abs(inc) / 2.0 + float(frame.mount[2]), abs(inc) * n


def scan_points(frame: SensorFrame, spec: ObsSpec) -> ScanPoints:
    """Check the scan (as pool_scan does, against the sensor's own range_min) and move its
    returns from the lidar's mount pose into the robot frame."""
    r = np.asarray(frame.ranges, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        raise CodecError("empty or non-1D scan")
    geometry = (frame.angle_min, frame.angle_increment, frame.range_min, frame.range_max,
                *frame.mount)
    if not all(math.isfinite(float(g)) for g in geometry) or frame.angle_increment == 0:
        raise CodecError("non-finite or zero scan geometry (angles, range limits or mount)")
    if frame.range_max < spec.range_max - 1e-6:
        raise CodecError(f"scan range [{frame.range_min}, {frame.range_max}] differs from the "
                         f"model's [{spec.range_min}, {spec.range_max}]: the sensor's range_max "
                         f"{frame.range_max} m is shorter than the model's {spec.range_max} m")
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(r) & (r >= frame.range_min)
    no_return = np.isposinf(r)
    bad = ~(valid | no_return)
    if bad.mean() > spec.max_invalid_fraction:
        raise CodecError(f"{int(bad.sum())} of {r.size} beams are invalid (NaN, -inf or below "
                         f"range_min)")
    mx, my, myaw = (float(m) for m in frame.mount)
    idx = np.flatnonzero(valid)
    a = frame.angle_min + frame.angle_increment * idx.astype(np.float64) + myaw
    d = r[idx]
    start, span = _fov(frame, r.size)
    if mx == 0.0 and my == 0.0:
        return ScanPoints(d * np.cos(a), d * np.sin(a), a, d, start, span)
    return ScanPoints(mx + d * np.cos(a), my + d * np.sin(a), None, None, start, span)


def seen_sectors(fov_start: float, fov_span: float, sectors: int) -> np.ndarray:
    """Sectors whose centre direction lies in the covered arc (all of them for a full turn)."""
    if fov_span >= FULL_TURN - FULL_FOV_TOL:
        return np.ones(sectors, dtype=bool)
    centres = -math.pi + (np.arange(sectors) + 0.5) * (FULL_TURN / sectors)
    return np.mod(centres - fov_start, FULL_TURN) <= fov_span


def pool_points(x: np.ndarray, y: np.ndarray, seen: np.ndarray, spec: ObsSpec,
                angle: np.ndarray | None = None, dist: np.ndarray | None = None) -> np.ndarray:
    """Min-pool robot-frame points by bearing into spec.sectors sectors of distance from the
    robot centre: range_max where a seen sector holds no point, clipped to [range_min,
    range_max], range_min where the sector is unseen."""
    s = spec.sectors
    if angle is None:
        angle = np.arctan2(y, x)
    if dist is None:
        dist = np.hypot(x, y)
    idx = np.floor(np.mod(angle + math.pi, FULL_TURN) * (s / FULL_TURN) + SECTOR_EPS)
    idx = idx.astype(np.int64) % s
    out = np.full(s, spec.range_max, dtype=np.float64)
    np.minimum.at(out, idx, dist)
    out = np.clip(out, spec.range_min, spec.range_max)
    out[~seen] = spec.range_min
    return out


def resample_scan(frame: SensorFrame, spec: ObsSpec) -> np.ndarray:
    """v1 sectors of any 360-degree scan, resampled by angle (see the module docstring)."""
    pts = scan_points(frame, spec)
    if pts.fov_span < FULL_TURN - FULL_FOV_TOL:
        raise CodecError(f"the lidar covers {math.degrees(pts.fov_span):.1f} degrees but a codec "
                         "v1 model needs a 360-degree scan (fov_deg; v1 has no unseen-sector "
                         "mask: use a codec v2 model)")
    seen = np.ones(spec.sectors, dtype=bool)
    return pool_points(pts.x, pts.y, seen, spec, pts.angle, pts.dist)


def _v1_native(frame: SensorFrame, spec: ObsSpec) -> bool:
    """The simulator's own geometry: pooled by beam index, as the v1 models were trained."""
    n = len(frame.ranges)
    return (n == spec.beams and not frame.mounted
            and math.isclose(frame.range_min, spec.range_min, abs_tol=1e-6)
            and math.isclose(frame.range_max, spec.range_max, abs_tol=1e-6)
            and abs(float(frame.angle_min) + math.pi) < 1e-4
            and abs(float(frame.angle_increment) * n - FULL_TURN) < 1e-4)


def _tail(obs: np.ndarray, start: int, frame: SensorFrame, prev_action: np.ndarray,
          spec: ObsSpec) -> None:
    v, w = frame.velocity
    if not (math.isfinite(v) and math.isfinite(w)):
        raise CodecError("non-finite odometry velocity")
    a = np.asarray(prev_action, dtype=np.float64).reshape(-1)
    if a.size != 2 or not np.all(np.isfinite(a)):
        raise CodecError("previous action must be 2 finite numbers")
    obs[start: start + 3] = goal_features(frame.pose, frame.goal, spec)
    obs[start + 3] = np.clip(v, -spec.v_max, spec.v_max)
    obs[start + 4] = np.clip(w, -spec.w_max, spec.w_max)
    obs[start + 5:] = np.clip(a, -1.0, 1.0)


def encode_observation(frame: SensorFrame, prev_action: np.ndarray, spec: ObsSpec) -> np.ndarray:
    """The policy input for one control step (see module docstring for the layouts).
    Stateless: a v2 spec with history needs ObservationEncoder."""
    if spec.version != "1":
        if spec.history:
            raise CodecError(f"obs_spec has history {spec.history}: encode with an "
                             "ObservationEncoder, which keeps the past scans")
        return ObservationEncoder(spec).encode(frame, prev_action)
    if not _v1_native(frame, spec):
        obs = np.empty(spec.size, dtype=np.float32)
        obs[: spec.sectors] = resample_scan(frame, spec)
        _tail(obs, spec.sectors, frame, prev_action, spec)
        return obs
    return _encode_v1_native(frame, prev_action, spec)


@dataclass(frozen=True)
class _Past:
    pose: tuple[float, float, float]
    x: np.ndarray
    y: np.ndarray
    fov_start: float
    fov_span: float


class ObservationEncoder:
    """Encodes frames step by step; keeps the last `spec.history` scans (v2). One per episode
    stream: call reset() when the episode (or the robot's run) starts again. For v1 specs and
    v2 specs without history it is stateless and equals encode_observation."""

    def __init__(self, spec: ObsSpec) -> None:
        self.spec = spec
        self._past: deque[_Past] = deque(maxlen=max(spec.history, 1))

    def reset(self) -> None:
        self._past.clear()

    def encode(self, frame: SensorFrame, prev_action: np.ndarray) -> np.ndarray:
        spec = self.spec
        if spec.version == "1":
            return encode_observation(frame, prev_action, spec)
        s, k = spec.sectors, spec.history
        pts = scan_points(frame, spec)
        if pts.fov_span < math.radians(spec.min_fov_deg) - FULL_FOV_TOL:
            raise CodecError(f"the lidar covers {math.degrees(pts.fov_span):.1f} degrees; the "
                             f"model accepts at least {spec.min_fov_deg:g} (fov_deg)")
        if not all(math.isfinite(float(q)) for q in frame.pose):
            raise CodecError("non-finite pose or goal")
        obs = np.empty(spec.size, dtype=np.float32)
        seen = seen_sectors(pts.fov_start, pts.fov_span, s)
        obs[:s] = pool_points(pts.x, pts.y, seen, spec, pts.angle, pts.dist)
        obs[s: 2 * s] = seen
        _tail(obs, s * (2 + k), frame, prev_action, spec)
        if k:
            now = _Past(tuple(float(q) for q in frame.pose), pts.x, pts.y, pts.fov_start,
                        pts.fov_span)
            past = list(self._past)
            x0, y0, yaw0 = now.pose
            c0, s0 = math.cos(yaw0), math.sin(yaw0)
            for j in range(1, k + 1):
                p = past[-j] if j <= len(past) else (past[0] if past else now)
                dyaw = p.pose[2] - yaw0
                c, sn = math.cos(dyaw), math.sin(dyaw)
                ox, oy = p.pose[0] - x0, p.pose[1] - y0
                tx, ty = c0 * ox + s0 * oy, -s0 * ox + c0 * oy
                x = c * p.x - sn * p.y + tx
                y = sn * p.x + c * p.y + ty
                seen_j = seen_sectors(p.fov_start + dyaw, p.fov_span, s)
                obs[s * (1 + j): s * (2 + j)] = pool_points(x, y, seen_j, spec)
            self._past.append(now)
        return obs


def _encode_v1_native(frame: SensorFrame, prev_action: np.ndarray, spec: ObsSpec) -> np.ndarray:
    """v1 as trained (unchanged since codec version 1 shipped)."""
    if not (math.isclose(frame.range_min, spec.range_min, abs_tol=1e-6)
            and math.isclose(frame.range_max, spec.range_max, abs_tol=1e-6)):
        raise CodecError(f"scan range [{frame.range_min}, {frame.range_max}] differs from the "
                         f"model's [{spec.range_min}, {spec.range_max}]")
    obs = np.empty(spec.size, dtype=np.float32)
    obs[: spec.sectors] = pool_scan(frame.ranges, spec)
    _tail(obs, spec.sectors, frame, prev_action, spec)  # goal, odometry, previous action
    return obs
