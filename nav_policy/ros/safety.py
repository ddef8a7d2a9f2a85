"""Safety layer of the local planner node, like Nav2's collision monitor plus a watchdog.

Pure Python (numpy); the node calls it on every control tick, whatever the planner's rate.

- Scan check (scan_problem): an empty scan, one of the wrong length, or one with more than
  `max_invalid_fraction` invalid beams (NaN, -inf, below range_min) is unusable -> zero.
  +inf is a valid "no return" reading (REP 117), so an open field does not stop the robot.
- Zones (SafetyLayer.filter): the robot is a disc of `radius` at the scan origin. Ahead of it
  (behind it when reversing) a stop box reaches radius + stop_margin and a slow box radius +
  slow_margin, both radius + lateral_margin wide. A scan point in the stop box zeroes the
  linear velocity (rotation in place stays allowed: the footprint is round); a point in the
  slow box scales it by slow_factor.
- Limits: velocity clamps, then acceleration limits against the last published command.
  Stops (zone, watchdog, invalid scan, goal reached) are immediate and bypass deceleration.
- Watchdog: scan or odom older than `timeout` -> zero and a WARN.

The layer only ever reduces the planner's command; it never adds motion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SafetyConfig:
    radius: float
    stop_margin: float = 0.10
    slow_margin: float = 0.25
    lateral_margin: float = 0.05
    slow_factor: float = 0.5
    min_vel_x: float = 0.0
    max_vel_x: float = 0.5
    max_vel_theta: float = 2.0
    acc_lim_x: float = 2.5
    acc_lim_theta: float = 3.2
    max_invalid_fraction: float = 0.5
    expected_beams: int | None = None

    def with_updates(self, **kw: Any) -> SafetyConfig:
        return replace(self, **kw)


@dataclass(frozen=True)
class SafetyResult:
    v: float
    w: float
    state: str  # ok | slow | stop | invalid_scan | stale | goal_reached | idle
    reason: str = ""


def scan_problem(ranges: np.ndarray, range_min: float, expected_beams: int | None,
                 max_invalid_fraction: float) -> str | None:
    """Why a scan cannot be driven on, or None (see module docstring)."""
    r = np.asarray(ranges, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        return "empty scan"
    if expected_beams is not None and r.size != expected_beams:
        return f"scan has {r.size} beams, expected {expected_beams}"
    with np.errstate(invalid="ignore"):
        valid = (np.isfinite(r) & (r >= range_min)) | np.isposinf(r)
    bad = int(r.size - np.count_nonzero(valid))
    if bad > max_invalid_fraction * r.size or bad == r.size:
        return f"{bad} of {r.size} beams are invalid (NaN, -inf or below range_min)"
    return None


class ScanGeometry:
    """Cached cos/sin of a scan's beam angles: turns ranges into robot-frame points."""

    def __init__(self) -> None:
        self._key: tuple[float, float, int] | None = None
        self._cos = np.empty(0)
        self._sin = np.empty(0)

    def points(self, ranges: np.ndarray, angle_min: float, angle_increment: float,
               range_min: float, range_max: float) -> np.ndarray:
        """(M, 2) points of the finite returns in [range_min, range_max]."""
        r = np.asarray(ranges, dtype=np.float64)
        key = (float(angle_min), float(angle_increment), int(r.size))
        if key != self._key:
            a = angle_min + angle_increment * np.arange(r.size)
            self._cos, self._sin, self._key = np.cos(a), np.sin(a), key
        with np.errstate(invalid="ignore"):
            hit = np.isfinite(r) & (r >= range_min) & (r <= range_max)
        d = r[hit]
        return np.stack([d * self._cos[hit], d * self._sin[hit]], axis=1)


class SafetyLayer:
    """Zones + limits on (v, w); keeps the last output for the acceleration limits."""

    def __init__(self, config: SafetyConfig) -> None:
        self.config = config
        self.last = (0.0, 0.0)

    def reset(self) -> None:
        self.last = (0.0, 0.0)

    def zero(self, state: str, reason: str = "") -> SafetyResult:
        self.last = (0.0, 0.0)
        return SafetyResult(0.0, 0.0, state, reason)

    def nearest_ahead(self, points: np.ndarray, direction: float) -> float:
        """Distance along the motion direction (+1 forward, -1 back) to the nearest point in
        the zone band (|y| <= radius + lateral_margin), inf when none."""
        c = self.config
        if len(points) == 0:
            return math.inf
        x = points[:, 0] * direction
        band = (np.abs(points[:, 1]) <= c.radius + c.lateral_margin) & (x >= 0.0)
        return float(x[band].min()) if band.any() else math.inf

    def filter(self, v: float, w: float, points: np.ndarray, dt: float) -> SafetyResult:
        """The command to publish for planner output (v, w), scan `points` (robot frame) and
        `dt` seconds since the last published command."""
        c = self.config
        if not (math.isfinite(v) and math.isfinite(w)):
            return self.zero("stop", "non-finite planner command")
        v = min(max(v, c.min_vel_x), c.max_vel_x)
        w = min(max(w, -c.max_vel_theta), c.max_vel_theta)
        dt = min(max(dt, 0.0), 0.5)
        lv, lw = self.last
        dv, dw = c.acc_lim_x * dt, c.acc_lim_theta * dt
        v = lv + min(max(v - lv, -dv), dv)
        w = lw + min(max(w - lw, -dw), dw)
        state, reason = "ok", ""
        if v != 0.0:
            d = self.nearest_ahead(points, 1.0 if v > 0 else -1.0)
            if d <= c.radius + c.stop_margin:
                state, reason = "stop", f"obstacle {d:.2f} m {'ahead' if v > 0 else 'behind'}"
                v = 0.0
            elif d <= c.radius + c.slow_margin:
                state, reason = "slow", f"obstacle {d:.2f} m {'ahead' if v > 0 else 'behind'}"
                v *= c.slow_factor
        self.last = (v, w)
        return SafetyResult(v, w, state, reason)


class Watchdog:
    """Age of each named input against a timeout (times in seconds, one clock)."""

    def __init__(self, timeout: float, names: tuple[str, ...] = ("scan", "odom")) -> None:
        self.timeout = float(timeout)
        self.last: dict[str, float | None] = {n: None for n in names}

    def feed(self, name: str, t: float) -> None:
        self.last[name] = t

    def problem(self, now: float) -> str | None:
        for name, t in self.last.items():
            if t is None:
                return f"no {name} received yet"
            age = now - t
            if age > self.timeout:
                return f"{name} is {age:.2f} s old (watchdog_timeout {self.timeout:.2f} s)"
        return None
