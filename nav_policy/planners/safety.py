"""Safety layer of the local planner node, like Nav2's collision monitor plus a watchdog.

Pure Python (numpy); the node calls it on every control tick, whatever the planner's rate.

- Scan check (scan_problem): an empty scan, one of the wrong length, or one with more than
  `max_invalid_fraction` invalid beams (NaN, -inf, below range_min) is unusable -> zero.
  +inf is a valid "no return" reading (REP 117), so an open field does not stop the robot.
- Collision model (SafetyLayer.filter), `approach` (the default) or `zones`; the robot is a
  disc of `radius` about base_link (rotation in place is then always allowed), or the
  `footprint` of its profile (circle or rectangle; nav_policy.sim.robot.Footprint), the same
  one the planners and the codec read. A rectangle's corners sweep outside it when it turns,
  so for a rectangle the approach model also checks rotation in place. Scan points are in the
  robot frame (ScanGeometry moves them from the lidar's mount pose).
  zones: ahead of the robot (behind it when reversing) a stop box reaches radius + stop_margin
  and a slow box radius + slow_margin, both radius + lateral_margin wide. A scan point in the
  stop box zeroes the linear velocity; a point in the slow box scales it by slow_factor.
  approach (as Nav2's collision monitor's approach model): the disc, grown by approach_margin,
  is swept along the commanded arc (v, w held) for time_before_collision seconds; if it would
  touch a scan point after t seconds, (v, w) are scaled by t / time_before_collision (the same
  arc, slower), and a point it already touches stops the linear motion only if the command
  brings the robot closer to it. Points beside a straight path never count, so the robot can
  pass a gap a few centimetres wider than itself, which the zones' lateral margin forbids.
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

from nav_policy.codecs.scan import MAX_INVALID_FRACTION, scan_problem  # noqa: F401 (re-export)
from nav_policy.sim.robot import Footprint

COLLISION_MODELS = ("zones", "approach")
APPROACH_STEP = 0.05  # s between the poses of the swept arc


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
    max_invalid_fraction: float = MAX_INVALID_FRACTION
    expected_beams: int | None = None
    collision_model: str = "approach"  # approach | zones
    time_before_collision: float = 1.0
    approach_margin: float = 0.02
    footprint: Footprint | None = None  # None: the disc of `radius`

    @property
    def rectangle(self) -> Footprint | None:
        """The rectangle footprint, or None for a disc."""
        fp = self.footprint
        return fp if fp is not None and fp.shape == "rectangle" else None

    @property
    def extent_ahead(self) -> float:
        """Distance from base_link to the front (and back) edge of the body."""
        rect = self.rectangle
        if rect is not None:
            return rect.length / 2.0
        return self.footprint.radius if self.footprint is not None else self.radius

    @property
    def half_width(self) -> float:
        rect = self.rectangle
        if rect is not None:
            return rect.width / 2.0
        return self.footprint.radius if self.footprint is not None else self.radius

    def __post_init__(self) -> None:
        if self.footprint is not None and self.footprint.shape == "circle":
            object.__setattr__(self, "radius", self.footprint.radius)  # one source
        if self.collision_model not in COLLISION_MODELS:
            raise ValueError(f"collision_model {self.collision_model!r} is not one of "
                             f"{', '.join(COLLISION_MODELS)}")
        if not self.time_before_collision > 0 or not self.approach_margin >= 0:
            raise ValueError("time_before_collision must be > 0 and approach_margin >= 0")

    def with_updates(self, **kw: Any) -> SafetyConfig:
        return replace(self, **kw)


@dataclass(frozen=True)
class SafetyResult:
    v: float
    w: float
    state: str  # ok | slow | stop | invalid_scan | stale | goal_reached | idle
    reason: str = ""


class ScanGeometry:
    """Cached cos/sin of a scan's beam angles: turns ranges into robot-frame points."""

    def __init__(self) -> None:
        self._key: tuple[float, float, int] | None = None
        self._cos = np.empty(0)
        self._sin = np.empty(0)

    def points(self, ranges: np.ndarray, angle_min: float, angle_increment: float,
               range_min: float, range_max: float,
               mount: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
        """(M, 2) robot-frame points of the finite returns in [range_min, range_max]; `mount`
        is the lidar's pose on base_link (x, y, yaw)."""
        r = np.asarray(ranges, dtype=np.float64)
        key = (float(angle_min), float(angle_increment), int(r.size))
        if key != self._key:
            a = angle_min + angle_increment * np.arange(r.size)
            self._cos, self._sin, self._key = np.cos(a), np.sin(a), key
        with np.errstate(invalid="ignore"):
            hit = np.isfinite(r) & (r >= range_min) & (r <= range_max)
        d = r[hit]
        pts = np.stack([d * self._cos[hit], d * self._sin[hit]], axis=1)
        mx, my, myaw = (float(m) for m in mount)
        if mx or my or myaw:
            c, s = math.cos(myaw), math.sin(myaw)
            pts = np.stack([mx + c * pts[:, 0] - s * pts[:, 1],
                            my + s * pts[:, 0] + c * pts[:, 1]], axis=1)
        return pts


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
        band = (np.abs(points[:, 1]) <= c.half_width + c.lateral_margin) & (x >= 0.0)
        return float(x[band].min()) if band.any() else math.inf

    def time_to_collision(self, v: float, w: float, points: np.ndarray) -> float:
        """Seconds until the disc (radius + approach_margin) swept along the arc of (v, w)
        touches a point: inf if not within time_before_collision, 0 if it touches one already
        and the first step brings it closer."""
        c = self.config
        if len(points) == 0:
            return math.inf
        if c.rectangle is not None:
            return self._time_to_collision_rect(v, w, points, c.rectangle)
        reach = c.radius + c.approach_margin
        near = points[np.hypot(points[:, 0], points[:, 1]) <= reach + abs(v) * c.time_before_collision]
        if len(near) == 0:
            return math.inf
        t = np.arange(0.0, c.time_before_collision + 1e-9, min(APPROACH_STEP, c.time_before_collision / 4))
        if abs(w) > 1e-6:  # centre of the disc along the arc
            x, y = v / w * np.sin(w * t), v / w * (1.0 - np.cos(w * t))
        else:
            x, y = v * t, np.zeros_like(t)
        d = np.hypot(near[None, :, 0] - x[:, None], near[None, :, 1] - y[:, None])  # (T, M)
        touching = d[0] <= reach
        if (touching & (d[1] < d[0])).any():
            return 0.0
        hit = (d[1:, ~touching] <= reach).any(axis=1)
        return float(t[1 + int(np.argmax(hit))]) if hit.any() else math.inf

    def _time_to_collision_rect(self, v: float, w: float, points: np.ndarray,
                                rect: Footprint) -> float:
        """time_to_collision for a rectangle: the body (grown by approach_margin) at each pose
        of the arc, points tested in its own frame; rotation in place included."""
        c = self.config
        margin = c.approach_margin
        near = points[np.hypot(points[:, 0], points[:, 1])
                      <= rect.circumradius + margin + abs(v) * c.time_before_collision]
        if len(near) == 0:
            return math.inf
        t = np.arange(0.0, c.time_before_collision + 1e-9, min(APPROACH_STEP, c.time_before_collision / 4))
        th = w * t
        if abs(w) > 1e-6:
            x, y = v / w * np.sin(th), v / w * (1.0 - np.cos(th))
        else:
            x, y = v * t, np.zeros_like(t)
        dx = near[None, :, 0] - x[:, None]
        dy = near[None, :, 1] - y[:, None]
        cs, sn = np.cos(th)[:, None], np.sin(th)[:, None]
        bx, by = cs * dx + sn * dy, -sn * dx + cs * dy  # (T, M) in the body frame at t
        ex = np.maximum(np.abs(bx) - rect.length / 2.0, 0.0)
        ey = np.maximum(np.abs(by) - rect.width / 2.0, 0.0)
        d = np.hypot(ex, ey)
        touching = d[0] <= margin
        if (touching & (d[1] < d[0])).any():
            return 0.0
        hit = (d[1:, ~touching] <= margin).any(axis=1)
        return float(t[1 + int(np.argmax(hit))]) if hit.any() else math.inf

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
        turning_rect = c.rectangle is not None and w != 0.0
        if (v != 0.0 or turning_rect) and c.collision_model == "approach":
            t = self.time_to_collision(v, w, points)
            if t <= 0.0:
                state, reason, v = "stop", "obstacle touching the footprint ahead", 0.0
                if c.rectangle is not None:  # a turning rectangle sweeps its corners
                    w = 0.0
            elif t < c.time_before_collision:
                k = t / c.time_before_collision
                state, reason = "slow", f"collision in {t:.2f} s at the commanded speed"
                v, w = v * k, w * k
        elif v != 0.0:
            d = self.nearest_ahead(points, 1.0 if v > 0 else -1.0)
            if d <= c.extent_ahead + c.stop_margin:
                state, reason = "stop", f"obstacle {d:.2f} m {'ahead' if v > 0 else 'behind'}"
                v = 0.0
            elif d <= c.extent_ahead + c.slow_margin:
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
