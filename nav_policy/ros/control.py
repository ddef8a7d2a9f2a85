"""One control tick of the local planner node, without ROS: inputs in, command out.

LocalController owns the planner (make_planner's LocalPlanner interface), the safety layer,
the watchdog and the policy scheduler. The node feeds it the latest scan, odometry, goal and
plan, calls tick(now) from its timer and publishes the result.

Train/serve parity: a learned policy was trained at its model's control_hz, so it is evaluated
at that rate (PolicyScheduler) and its command is held between evaluations; the safety layer
and the watchdog still run on every tick. Classical planners are evaluated on every tick.

Goals: goal_pose sets the goal and drops any plan; a non-empty plan (nav_msgs/Path) sets the
goal to its last point and the planner follows a carrot `lookahead_distance` along it
(classical planners also get the path itself); an empty plan cancels. Poses, goal and plan
must be in the odometry frame.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nav_policy.planners.base import lookahead_point
from nav_policy.planners.safety import (
    SafetyLayer,
    SafetyResult,
    ScanGeometry,
    Watchdog,
    scan_problem,
)
from nav_policy.ros.convert import OdomData, ScanData, make_frame

STOP_REPEATS = 3  # zero commands published when a goal ends, then the node goes quiet


class PolicyScheduler:
    """Decides on which ticks the planner runs: every `period` seconds (None: every tick).

    A tick up to half a control period early still counts (timer jitter); after a stall the
    schedule restarts from now instead of bursting to catch up.
    """

    def __init__(self, period: float | None, control_period: float) -> None:
        self.period = period
        self.slack = 0.5 * control_period
        self.next_due: float | None = None

    def reset(self) -> None:
        self.next_due = None

    def due(self, now: float) -> bool:
        if self.period is None:
            return True
        if self.next_due is not None and now < self.next_due - self.slack:
            return False
        nxt = (self.next_due if self.next_due is not None else now) + self.period
        self.next_due = nxt if nxt > now else now + self.period
        return True


@dataclass
class TickResult:
    v: float
    w: float
    state: str  # ok | slow | stop | stale | invalid_scan | planner_stop | goal_reached | idle
    reason: str = ""
    level: str = "OK"  # OK | WARN
    publish: bool = True
    evaluated: bool = False  # the planner ran on this tick
    compute_s: float = 0.0  # planner time on this tick (0 when held)
    scan_stamp: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


class LocalController:
    """Scan/odom/goal/plan in, one safe (v, w) per tick out. Times are seconds, one clock."""

    def __init__(self, planner: Any, safety: SafetyLayer, control_period: float,
                 policy_period: float | None = None, watchdog_timeout: float = 0.25,
                 goal_tolerance: float = 0.25, lookahead_distance: float = 1.5,
                 mount: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> None:
        self.planner = planner
        self.mount = tuple(float(m) for m in mount)  # the lidar's pose on base_link
        self.safety = safety
        self.control_period = float(control_period)
        self.scheduler = PolicyScheduler(policy_period, control_period)
        self.watchdog = Watchdog(watchdog_timeout)
        self.goal_tolerance = float(goal_tolerance)
        self.lookahead_distance = float(lookahead_distance)
        self.geometry = ScanGeometry()
        self.scan: ScanData | None = None
        self.points = np.zeros((0, 2))
        self.odom: OdomData | None = None
        self.goal: tuple[float, float] | None = None
        self.path: np.ndarray | None = None
        self.reached = False
        self.held: tuple[float, float] | None = None
        self.held_info: dict[str, Any] = {}
        self.last_publish: float | None = None
        self.quiet_ticks = 0
        self.goal_events: list[str] = []  # "reached" / "new" since the last drain

    # ---- inputs ---------------------------------------------------------------------------
    def set_scan(self, scan: ScanData, now: float) -> None:
        self.scan = scan
        self.points = self.geometry.points(scan.ranges, scan.angle_min, scan.angle_increment,
                                           scan.range_min, scan.range_max, self.mount)
        self.watchdog.feed("scan", now)

    def set_odom(self, odom: OdomData, now: float) -> None:
        self.odom = odom
        self.watchdog.feed("odom", now)

    def set_goal(self, goal: tuple[float, float]) -> None:
        if not all(math.isfinite(g) for g in goal):
            return
        self.goal = (float(goal[0]), float(goal[1]))
        self.path = None
        self._restart()

    def set_path(self, path: np.ndarray) -> None:
        pts = np.asarray(path, dtype=np.float64).reshape(-1, 2)
        if len(pts) == 0 or not np.isfinite(pts).all():
            self.goal, self.path = None, None  # cancel
            self.quiet_ticks = 0
            return
        end = (float(pts[-1, 0]), float(pts[-1, 1]))
        same_goal = self.goal is not None and math.dist(end, self.goal) <= self.goal_tolerance
        self.path, self.goal = pts, end
        if not same_goal or self.reached:
            self._restart()

    def _restart(self) -> None:
        self.reached = False
        self.held = None
        self.quiet_ticks = 0
        self.scheduler.reset()
        self.planner.reset()
        self.goal_events.append("new")

    # ---- tick ------------------------------------------------------------------------------
    def distance_to_goal(self) -> float | None:
        if self.goal is None or self.odom is None:
            return None
        return math.hypot(self.goal[0] - self.odom.x, self.goal[1] - self.odom.y)

    def tick(self, now: float) -> TickResult:
        stamp = self.scan.stamp if self.scan is not None else 0.0
        stale = self.watchdog.problem(now)
        if self.goal is None or self.reached:
            state = "goal_reached" if self.reached else "idle"
            return self._quiet(state, stale or "", "WARN" if stale else "OK", stamp)
        if stale:
            return self._stop("stale", stale, stamp)
        assert self.scan is not None and self.odom is not None
        problem = scan_problem(self.scan.ranges, self.scan.range_min,
                               self.safety.config.expected_beams,
                               self.safety.config.max_invalid_fraction)
        if problem:
            return self._stop("invalid_scan", problem, stamp)
        dist = self.distance_to_goal()
        if dist is not None and dist <= self.goal_tolerance:
            self.reached = True
            self.goal_events.append("reached")
            self.quiet_ticks = 0
            return self._quiet("goal_reached", f"within {dist:.2f} m of the goal", "OK", stamp)
        evaluated, compute_s = False, 0.0
        if self.held is None or self.scheduler.due(now):
            if self.held is None:  # (re)start the schedule at this tick
                self.scheduler.reset()
                self.scheduler.due(now)
            t0 = time.perf_counter()
            v, w = self.planner.compute(self._frame())
            compute_s = time.perf_counter() - t0
            self.held = (float(v), float(w))
            self.held_info = dict(getattr(self.planner, "last_info", {}) or {})
            evaluated = True
        v, w = self.held
        dt = self.control_period if self.last_publish is None else now - self.last_publish
        res: SafetyResult = self.safety.filter(v, w, self.points, dt)
        self.last_publish = now
        state, reason, level = res.state, res.reason, "WARN" if res.state == "stop" else "OK"
        planner_reason = self.held_info.get("reason")
        if self.held == (0.0, 0.0) and planner_reason and res.state == "ok":
            state, reason, level = "planner_stop", str(planner_reason), "WARN"
        return TickResult(res.v, res.w, state, reason, level, True, evaluated, compute_s, stamp,
                          self.held_info)

    def _frame(self) -> Any:
        assert self.scan is not None and self.odom is not None and self.goal is not None
        target = self.goal
        if self.path is not None and len(self.path) > 0:
            p = lookahead_point(self.path, np.array([self.odom.x, self.odom.y]),
                                self.lookahead_distance)
            target = (float(p[0]), float(p[1]))
        return make_frame(self.scan, self.odom, target, self.path, self.mount)

    def _stop(self, state: str, reason: str, stamp: float) -> TickResult:
        self.held = None
        self.scheduler.reset()
        res = self.safety.zero(state, reason)
        self.last_publish = None
        return TickResult(res.v, res.w, state, reason, "WARN", True, scan_stamp=stamp)

    def _quiet(self, state: str, reason: str, level: str, stamp: float) -> TickResult:
        self.held = None
        self.safety.zero(state)
        self.last_publish = None
        publish = self.quiet_ticks < STOP_REPEATS
        self.quiet_ticks += 1
        return TickResult(0.0, 0.0, state, reason, level, publish, scan_stamp=stamp)
