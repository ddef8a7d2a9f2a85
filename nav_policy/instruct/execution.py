"""Mission execution as a pure state machine: plan + poses in, goals / commands / status out.

MissionRunner runs a Plan step by step with MissionGeometry. The ROS node
(nav_policy.ros.mission_executor_node) feeds it odometry and a clock and publishes what each
tick() returns: a new goal for the local planner (goal_pose, plus a grid path on `plan` when a
map is known), an in-place rotation command (turn steps), a cancel (stop the robot: the
planner's goal is cleared and a zero command is sent), and status events for mission_status.

Arrival is judged from odometry: the step's last point within `arrival_tolerance`,
intermediate points (go_past abreast, door approach) within `pass_tolerance`. A drive step
fails on `step_timeout_s`, or when the distance to its current point has not shrunk by
`stall_progress_m` for `stall_timeout_s` (blocked or unreachable). Before that, after
`recovery_after_s` without progress (a local planner stuck against a corner), it stops the
planner, backs off `backoff_m` when the map says it is free behind, rotates in place toward
the route and sends the point again (`max_recoveries` times per point).
Any failure stops the robot and ends the mission ("failed", with the reason). Status events are dicts:

    {"mission": int, "state": accepted|running|recovering|step_done|succeeded|failed|cancelled,
     "step": int (0-based), "steps": int, "action": str|null, "target": str|null,
     "goal": [x, y]|null, "distance_m": float|null, "reason": str, "elapsed_s": float}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nav_policy.instruct.mission import (
    MissionGeometry,
    Point,
    Pose2D,
    StepTarget,
    StepUnreachable,
    wrap_angle,
)
from nav_policy.instruct.schema import Plan, Step


@dataclass(frozen=True)
class ExecConfig:
    """Tolerances, timeouts and the in-place rotation controller."""

    arrival_tolerance: float = 0.3  # m, the step's final point
    pass_tolerance: float = 0.5  # m, intermediate points
    heading_tolerance_deg: float = 4.0
    step_timeout_s: float = 120.0  # a drive or turn step taking longer fails
    stall_timeout_s: float = 20.0  # no progress for this long fails (blocked / unreachable)
    stall_progress_m: float = 0.15
    turn_speed: float = 1.0  # rad/s, largest in-place rotation rate
    turn_gain: float = 2.0  # rad/s per rad of heading error
    min_turn_speed: float = 0.25  # rad/s, smallest rate while turning
    recovery_after_s: float = 6.0  # no progress this long: rotate toward the route, resend
    max_recoveries: int = 3  # per point
    backoff_m: float = 0.3  # recovery: first back off this far (when free behind)
    backoff_speed: float = 0.15  # m/s


@dataclass
class TickOutput:
    """What the node publishes after one tick (all optional)."""

    goal: Point | None = None  # goal_pose
    path: np.ndarray | None = None  # plan (grid route to `goal`)
    cmd: tuple[float, float] | None = None  # cmd_vel (turn steps)
    cancel: bool = False  # stop the planner (empty plan) and send a zero cmd_vel
    events: list[dict[str, Any]] = field(default_factory=list)


class MissionRunner:
    """One mission: a Plan run step by step. States: running, succeeded, failed, cancelled."""

    def __init__(self, plan: Plan, geometry: MissionGeometry, config: ExecConfig | None = None,
                 mission_id: int = 0, plan_paths: bool = True) -> None:
        self.plan = plan
        self.steps: list[Step] = list(plan.steps)
        self.geometry = geometry
        self.cfg = config or ExecConfig()
        self.mission_id = mission_id
        self.plan_paths = plan_paths and geometry.free is not None
        self.state = "running"
        self.index = -1
        self.target: StepTarget | None = None
        self.waypoint = 0
        self.t0: float | None = None
        self.step_t0 = 0.0
        self.best = math.inf
        self.progress_t = 0.0
        self.distance: float | None = None
        self.targets: list[StepTarget] = []  # every step's target, for reports and pictures
        self.route: np.ndarray | None = None  # grid route to the current point
        self.recovering: float | None = None  # heading of an in-place recovery rotation
        self.recoveries = 0
        self.backoff: tuple[Point, float] | None = None  # (start, deadline) of a back-off

    # ---- events ---------------------------------------------------------------------------
    def event(self, state: str, now: float, reason: str = "") -> dict[str, Any]:
        step = self.steps[self.index] if 0 <= self.index < len(self.steps) else None
        goal = self.current_point()
        tol = None
        if goal is not None and self.target is not None:  # the radius that counts as reached
            last = self.waypoint == len(self.target.waypoints) - 1
            tol = self.cfg.arrival_tolerance if last else self.cfg.pass_tolerance
        return {"mission": self.mission_id, "state": state, "tolerance": tol, "step": min(max(self.index, 0), max(len(self.steps) - 1, 0)),
                "steps": len(self.steps), "action": step.action if step else None,
                "target": step.target if step else None,
                "goal": [goal[0], goal[1]] if goal else None,
                "distance_m": None if self.distance is None else round(self.distance, 3),
                "reason": reason, "elapsed_s": round(now - (self.t0 or now), 3)}

    def current_point(self) -> Point | None:
        t = self.target
        if t is None or t.kind != "drive" or self.waypoint >= len(t.waypoints):
            return None
        return t.waypoints[self.waypoint]

    @property
    def done(self) -> bool:
        return self.state != "running"

    # ---- ticking --------------------------------------------------------------------------
    def tick(self, pose: Pose2D, now: float) -> TickOutput:
        """Advance with the latest pose; returns what to publish."""
        out = TickOutput()
        if self.done:
            return out
        if self.t0 is None:
            self.t0 = now
            out.events.append(self.event("accepted", now, f"{len(self.steps)} steps"))
            self._start_step(0, pose, now, out)
        guard = 0
        while not self.done and guard <= len(self.steps):
            guard += 1
            finished = self._run_step(pose, now, out)
            if not finished:
                break
            out.events.append(self.event("step_done", now))
            self._start_step(self.index + 1, pose, now, out)
        return out

    def cancel(self, now: float, reason: str) -> TickOutput:
        """Abort (a new mission, shutdown): stop the robot and report."""
        out = TickOutput()
        if not self.done:
            self.state = "cancelled"
            out.cancel = True
            out.events.append(self.event("cancelled", now, reason))
        return out

    def _fail(self, now: float, reason: str, out: TickOutput) -> None:
        self.state = "failed"
        out.cancel = True
        out.goal, out.path, out.cmd = None, None, None
        out.events.append(self.event("failed", now, reason))

    def _start_step(self, index: int, pose: Pose2D, now: float, out: TickOutput) -> None:
        self.index = index
        self.distance = None
        self.recoveries, self.recovering, self.route, self.backoff = 0, None, None, None
        if index >= len(self.steps):
            self.state = "succeeded"
            self.target = None
            out.cancel = True
            out.events.append(self.event("succeeded", now, "all steps done"))
            return
        step = self.steps[index]
        try:
            hint = self.geometry.hint(self.steps, index)
            self.target = self.geometry.target(step, pose, hint)
        except StepUnreachable as exc:
            self.target = None
            self._fail(now, f"step {index + 1} ({step.action} {step.target or ''}) is "
                            f"unreachable: {exc}".replace("  ", " "), out)
            return
        self.targets.append(self.target)
        self.waypoint = 0
        self.step_t0 = now
        if self.target.kind == "drive":
            self._send_waypoint(pose, now, out)
        else:
            out.cancel = True  # planner idle while turning, waiting or holding
        out.events.append(self.event("running", now, self.target.note))

    def _send_waypoint(self, pose: Pose2D, now: float, out: TickOutput) -> None:
        p = self.current_point()
        assert p is not None
        out.goal = p
        out.path = self.geometry.free.path(pose.xy, p) if self.plan_paths else None  # type: ignore[union-attr]
        self.route = out.path
        self.best = math.dist(pose.xy, p)
        self.progress_t = now

    def _route_heading(self, pose: Pose2D, p: Point, ahead: float = 0.8) -> float:
        """Heading toward the route `ahead` m on from the robot (toward p without a route)."""
        target = p
        if self.route is not None and len(self.route) > 1:
            from nav_policy.planners.base import lookahead_point

            q = lookahead_point(self.route, np.array(pose.xy), ahead)
            target = (float(q[0]), float(q[1]))
        return math.atan2(target[1] - pose.y, target[0] - pose.x)

    def _recover(self, pose: Pose2D, now: float, out: TickOutput) -> None:
        """Rotate in place toward the route (the planner stopped), then resend the point."""
        assert self.recovering is not None
        if self.backoff is not None:
            start, until = self.backoff
            if math.dist(start, pose.xy) < self.cfg.backoff_m and now < until:
                out.cmd = (-self.cfg.backoff_speed, 0.0)
                return
            self.backoff = None
            p = self.current_point()
            assert p is not None
            self.recovering = self._route_heading(pose, p)
        err = wrap_angle(self.recovering - pose.yaw)
        if abs(err) > math.radians(3 * self.cfg.heading_tolerance_deg):
            out.cmd = self._rotation(err)
            return
        self.recovering = None
        out.cmd = (0.0, 0.0)
        self._send_waypoint(pose, now, out)

    def _run_step(self, pose: Pose2D, now: float, out: TickOutput) -> bool:
        """True when the current step has finished."""
        t = self.target
        if t is None:
            return False
        if t.kind == "drive":
            return self._drive(pose, now, out)
        if t.kind == "turn":
            return self._turn(pose, now, out)
        if t.kind == "wait":
            return now - self.step_t0 >= float(t.duration_s or 0.0)
        return True  # stop, skip

    def _drive(self, pose: Pose2D, now: float, out: TickOutput) -> bool:
        t = self.target
        assert t is not None
        p = self.current_point()
        assert p is not None
        if self.recovering is not None:
            self._recover(pose, now, out)
            return False
        d = math.dist(pose.xy, p)
        self.distance = d
        last = self.waypoint == len(t.waypoints) - 1
        if d <= (self.cfg.arrival_tolerance if last else self.cfg.pass_tolerance):
            if last:
                return True
            self.waypoint += 1
            self.recoveries = 0
            self._send_waypoint(pose, now, out)
            return False
        if d < self.best - self.cfg.stall_progress_m:
            self.best, self.progress_t = d, now
        if now - self.step_t0 > self.cfg.step_timeout_s:
            self._fail(now, f"timeout: step {self.index + 1} not done after "
                            f"{self.cfg.step_timeout_s:g} s ({d:.2f} m from its point)", out)
        elif now - self.progress_t > self.cfg.stall_timeout_s:
            self._fail(now, f"unreachable: no progress toward ({p[0]:.2f}, {p[1]:.2f}) for "
                            f"{self.cfg.stall_timeout_s:g} s ({d:.2f} m away)", out)
        elif now - self.progress_t > self.cfg.recovery_after_s * (self.recoveries + 1) and \
                self.recoveries < self.cfg.max_recoveries:
            self.recoveries += 1
            self.recovering = self._route_heading(pose, p)
            behind = (pose.x - self.cfg.backoff_m * math.cos(pose.yaw),
                      pose.y - self.cfg.backoff_m * math.sin(pose.yaw))
            if self.cfg.backoff_m > 0 and self.geometry.is_free(behind):
                self.backoff = (pose.xy, now + 3.0 * self.cfg.backoff_m / self.cfg.backoff_speed)
            out.cancel = True
            out.events.append(self.event("recovering", now, "no progress: backing off and "
                                                            "rotating toward the route"))
        return False

    def _rotation(self, err: float) -> tuple[float, float]:
        w = max(min(self.cfg.turn_gain * err, self.cfg.turn_speed), -self.cfg.turn_speed)
        if abs(w) < self.cfg.min_turn_speed:
            w = math.copysign(self.cfg.min_turn_speed, err)
        return (0.0, w)

    def _turn(self, pose: Pose2D, now: float, out: TickOutput) -> bool:
        assert self.target is not None and self.target.heading is not None
        err = wrap_angle(self.target.heading - pose.yaw)
        self.distance = abs(err)
        if abs(err) <= math.radians(self.cfg.heading_tolerance_deg):
            out.cmd = (0.0, 0.0)
            return True
        if now - self.step_t0 > self.cfg.step_timeout_s:
            self._fail(now, f"timeout: turn not done after {self.cfg.step_timeout_s:g} s", out)
            return False
        out.cmd = self._rotation(err)
        return False
