"""planner_server_node (compute_path_to_pose) and navigator_node (navigate_to_pose), with Nav2
kilted's action types (nav2_msgs, built by nav_policy.ros.build_interfaces in a wheels venv).

Both are lifecycle nodes (autostart configures and activates them at start-up; with autostart
false Nav2's lifecycle_manager drives them) and reject goals while not active.

The global path is planned on the known map: a world YAML (`world`, in frame `world_frame`, the
simulator's odometry frame) or the OccupancyGrid on `map` (reliable, transient local, as
map_server publishes it; in its header's frame). Planning is nav_policy.planners.global_path's:
a clearance raster, a geodesic (Dijkstra) field from the goal and a string-pulled descent,
keeping robot radius + inflation_margin from obstacles where it can.

compute_path_to_pose: the goal (and the start, or the robot's pose from TF) are transformed
into the map's frame; the result is the path in that frame, or Nav2's error codes
(TF_ERROR, START/GOAL_OUTSIDE_MAP, START/GOAL_OCCUPIED, NO_VALID_PATH, INVALID_PLANNER).

navigate_to_pose: plans as above, then sends the path to the controller's FollowPath action
(`follow_path_action`), forwards its feedback (current_pose in global_frame, distance_remaining,
navigation_time, estimated_time_remaining) and ends as it ends. A new goal preempts the running
one (aborted, as bt_navigator's action server does); cancel cancels the FollowPath goal and
ends canceled. A failure aborts with the failing step's error code and message (kilted's
navigators report the failing node's code), TF_ERROR (9002) for a missing transform. The path
is planned once per goal (Nav2's default tree re-plans at 1 Hz; here the local planner handles
what the map does not show).

Goals are handed to rclpy's execute step only once their outcome is known (see
nav_policy.ros.follow_path): no busy executor, status ACCEPTED until the end.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np
from nav_msgs.msg import OccupancyGrid
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn

from nav_policy.errors import ConfigError, NavPolicyError, WorldError
from nav_policy.ros import msgs
from nav_policy.ros.params import declare
from nav_policy.ros.tf import TfClient, Transform, TransformError
from nav_policy.sim.grid import GridMap, geodesic_field, shortest_path

try:
    from nav2_msgs.action import ComputePathToPose, FollowPath, NavigateToPose
except ImportError:  # pragma: no cover - depends on build_interfaces having run
    ComputePathToPose = FollowPath = NavigateToPose = None

TICK = 0.05  # s between attempts (TF, planning) of a pending goal


class PlanError(NavPolicyError):
    """A path cannot be planned; `reason` is the ComputePathToPose error name."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class GlobalPlanner:
    """The known map as a clearance raster in `frame`; plan(start, goal) -> (N, 2) points."""

    def __init__(self, radius: float, margin: float) -> None:
        self.radius = radius
        self.margin = margin
        self.grid: GridMap | None = None
        self.frame = ""
        self.bounds = (0.0, 0.0, 0.0, 0.0)

    def set_world(self, world: Any, frame: str, resolution: float) -> None:
        self.grid = GridMap.from_world(world, resolution)
        hx, hy = world.half
        self.bounds = (-hx, -hy, hx, hy)
        self.frame = frame

    def set_occupancy(self, occ: np.ndarray, resolution: float,
                      origin: tuple[float, float, float], frame: str, threshold: int,
                      unknown_is_obstacle: bool) -> None:
        from scipy.ndimage import distance_transform_edt

        if abs(origin[2]) > 1e-6:
            raise ConfigError(f"map origin yaw {origin[2]:.3f} rad: only axis-aligned maps "
                              f"(yaw 0) are supported")
        blocked = (occ >= threshold) | ((occ < 0) & unknown_is_obstacle)
        clearance = distance_transform_edt(~blocked) * resolution if blocked.any() else \
            np.full(occ.shape, np.inf)
        ox, oy = origin[0] + resolution / 2, origin[1] + resolution / 2
        self.grid = GridMap(clearance.astype(np.float64), resolution, (ox, oy))
        h, w = occ.shape
        self.bounds = (origin[0], origin[1], origin[0] + w * resolution,
                       origin[1] + h * resolution)
        self.frame = frame

    def inside(self, x: float, y: float) -> bool:
        x0, y0, x1, y1 = self.bounds
        return x0 <= x <= x1 and y0 <= y <= y1

    def plan(self, start: tuple[float, float], goal: tuple[float, float]) -> np.ndarray:
        g = self.grid
        if g is None:
            raise PlanError("UNKNOWN", "no map yet (world file or OccupancyGrid on `map`)")
        if not self.inside(*start):
            raise PlanError("START_OUTSIDE_MAP", f"start {_fmt(start)} is outside the map")
        if not self.inside(*goal):
            raise PlanError("GOAL_OUTSIDE_MAP", f"goal {_fmt(goal)} is outside the map")
        if float(g.clearance_at(goal[0], goal[1])) <= self.radius:
            raise PlanError("GOAL_OCCUPIED", f"goal {_fmt(goal)} is in or within the robot "
                            f"radius {self.radius:g} m of an obstacle")
        if float(g.clearance_at(start[0], start[1])) <= 0.5 * self.radius:
            raise PlanError("START_OCCUPIED", f"start {_fmt(start)} is in an obstacle")
        last = ""
        for inflation in (self.radius + self.margin, self.radius):
            field = geodesic_field(g, goal, inflation)
            try:
                path = shortest_path(g, field, start, inflation)
            except WorldError as exc:
                last = str(exc)
                continue
            path[-1] = goal
            return path
        raise PlanError("NO_VALID_PATH", last or f"no path from {_fmt(start)} to {_fmt(goal)}")


def _fmt(p: tuple[float, float]) -> str:
    return f"({p[0]:.2f}, {p[1]:.2f})"


def pose_2d(ps: Any) -> tuple[float, float, float]:
    p, q = ps.pose.position, ps.pose.orientation
    yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
    return float(p.x), float(p.y), yaw


def path_msg(points: np.ndarray, frame: str, t: float) -> Any:
    from nav_msgs.msg import Path

    msg = Path()
    msgs.set_stamp(msg.header, t, frame)
    pts = np.asarray(points)
    for k, (x, y) in enumerate(pts):
        nxt = pts[min(k + 1, len(pts) - 1)]
        prv = pts[max(k - 1, 0)]
        yaw = math.atan2(nxt[1] - prv[1], nxt[0] - prv[0]) if len(pts) > 1 else 0.0
        msg.poses.append(msgs.pose_stamped(float(x), float(y), yaw, t, frame))
    return msg


class _Pending:
    """A goal waiting for its outcome: when it came, what it needs, its client side."""

    def __init__(self, gh: Any, t: float) -> None:
        self.gh = gh
        self.t = t
        self.wall = time.monotonic()
        self.phase = "plan"
        self.follow: Any = None  # the FollowPath client goal handle
        self.follow_fb: Any = None
        self.cancel_sent = False


class _PlanningNode(LifecycleNode):
    """Shared by both nodes: parameters, the map, TF, deferred goal outcomes."""

    NAME = ""

    def __init__(self, node_name: str, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.p = declare(self, self.NAME)
        self.add_post_set_parameters_callback(self._on_params_set)
        self.error: str | None = None
        self.planner: GlobalPlanner | None = None
        self.tf: TfClient | None = None
        self.server: Any = None
        self._subs: list[Any] = []
        self._timers: list[Any] = []
        self._outcomes: dict[bytes, tuple[str, Any]] = {}
        self._active = False

    def _on_params_set(self, params: list[Any]) -> None:
        for prm in params:
            self.p[prm.name] = prm.value
        if self.planner is not None:
            self.planner.margin = self.p["inflation_margin"]

    # ---- lifecycle ----------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        from nav_policy.sim.robot import load_robot_spec
        from nav_policy.sim.world import load_world

        p = self.p
        if NavigateToPose is None:
            self.error = ("nav2_msgs is not installed: run python -m "
                          "nav_policy.ros.build_interfaces")
            return TransitionCallbackReturn.FAILURE
        try:
            robot = load_robot_spec(p["robot_config"] or None)
            self.planner = GlobalPlanner(robot.radius, p["inflation_margin"])
            if p["world"]:
                self.planner.set_world(load_world(p["world"]), p["world_frame"],
                                       p["resolution"])
        except (NavPolicyError, OSError, ValueError) as exc:
            self.error = str(exc)
            if not p["autostart"]:
                self.get_logger().error(self.error)
            return TransitionCallbackReturn.FAILURE
        try:
            self.tf = TfClient(self)
        except ImportError:
            self.error = "tf2_msgs is not installed: run python -m nav_policy.ros.build_interfaces"
            return TransitionCallbackReturn.FAILURE
        if not p["world"]:
            from nav_policy.ros.deceptive_planner_node import MAP_QOS

            self._subs.append(self.create_subscription(OccupancyGrid, "map", self._on_map,
                                                       MAP_QOS))
        self._make_servers()
        self._timers.append(self.create_timer(TICK, self._tick))
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self._active = True
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._active = False
        self._abort_all("the server was deactivated")
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._active = False
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def _teardown(self) -> None:
        self._abort_all("the server is shutting down")
        for t in self._timers:
            self.destroy_timer(t)
        for s in self._subs:
            self.destroy_subscription(s)
        self._timers, self._subs = [], []
        if self.tf is not None:
            self.tf.close()
            self.tf = None
        self._destroy_servers()

    def autostart_up(self) -> None:
        if not self.p["autostart"]:
            self.get_logger().info("autostart is false: waiting for a lifecycle manager")
            return
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise ConfigError(self.error or "configure failed")
        if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            raise ConfigError("activate failed")

    # ---- map ----------------------------------------------------------------------------
    def _on_map(self, msg: OccupancyGrid) -> None:
        from nav_policy.ros.deceptive_planner_node import grid_from_msg

        try:
            occ, res, origin = grid_from_msg(msg)
            assert self.planner is not None
            self.planner.set_occupancy(occ, res, origin, msg.header.frame_id or "map",
                                       self.p["occupied_threshold"],
                                       self.p["unknown_is_obstacle"])
        except ConfigError as exc:
            self.get_logger().error(f"map ignored: {exc}")
            return
        self.get_logger().info(f"map {occ.shape[1]} x {occ.shape[0]} cells at {res:g} m in "
                               f"frame {self.planner.frame!r}")

    # ---- goal plumbing ------------------------------------------------------------------
    def _goal_callback(self, goal: Any) -> Any:
        from rclpy.action import GoalResponse

        if not self._active:
            self.get_logger().warning("goal rejected: the node is not active")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _finish(self, gh: Any, kind: str, result: Any) -> None:
        self._outcomes[bytes(gh.goal_id.uuid)] = (kind, result)
        gh.execute(self._execute)

    def _execute(self, gh: Any) -> Any:
        kind, result = self._outcomes.pop(bytes(gh.goal_id.uuid))
        if kind == "succeed":
            gh.succeed()
        elif kind == "cancel" and gh.is_cancel_requested:
            gh.canceled()
        else:
            gh.abort()
        return result

    def now(self) -> float:
        return msgs.now_s(self)

    def to_frame(self, ps: Any, frame: str) -> tuple[float, float, float]:
        """A PoseStamped's (x, y, yaw) in `frame`; TransformError without the transform."""
        assert self.tf is not None
        x, y, yaw = pose_2d(ps)
        src = ps.header.frame_id.lstrip("/") or frame
        if src == frame:
            return x, y, yaw
        return self.tf.lookup(frame, src).apply_pose_2d(x, y, yaw)

    def robot_in(self, frame: str) -> tuple[float, float, float]:
        assert self.tf is not None
        tf: Transform = self.tf.lookup(frame, self.p["robot_base_frame"])
        return tf.apply_pose_2d(0.0, 0.0, 0.0)

    def plan_for(self, goal_ps: Any, start_ps: Any | None
                 ) -> tuple[np.ndarray, str]:
        """(path points, frame); raises TransformError or PlanError."""
        assert self.planner is not None
        frame = self.planner.frame
        if self.planner.grid is None:
            raise PlanError("UNKNOWN", "no map yet (world file or OccupancyGrid on `map`)")
        gx, gy, _ = self.to_frame(goal_ps, frame)
        if start_ps is not None:
            sx, sy, _ = self.to_frame(start_ps, frame)
        else:
            sx, sy, _ = self.robot_in(frame)
        return self.planner.plan((sx, sy), (gx, gy)), frame

    # subclass hooks
    def _make_servers(self) -> None: ...
    def _destroy_servers(self) -> None: ...
    def _abort_all(self, message: str) -> None: ...
    def _tick(self) -> None: ...


class PlannerServerNode(_PlanningNode):
    """compute_path_to_pose."""

    NAME = "planner_server_node"

    def __init__(self, node_name: str = NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.pending: list[_Pending] = []

    def _make_servers(self) -> None:
        from rclpy.action import ActionServer, CancelResponse

        self.server = ActionServer(self, ComputePathToPose, "compute_path_to_pose",
                                   execute_callback=self._execute,
                                   goal_callback=self._goal_callback,
                                   handle_accepted_callback=self._on_accepted,
                                   cancel_callback=lambda _gh: CancelResponse.ACCEPT)

    def _destroy_servers(self) -> None:
        if self.server is not None:
            self.server.destroy()
            self.server = None

    def _on_accepted(self, gh: Any) -> None:
        self.pending.append(_Pending(gh, self.now()))
        self._tick()

    def _result(self, code: int, message: str, path: Any = None, t0: float = 0.0) -> Any:
        r = ComputePathToPose.Result(error_code=code, error_msg=message)
        if path is not None:
            r.path = path
        dt = max(time.monotonic() - t0, 0.0) if t0 else 0.0
        r.planning_time.sec, r.planning_time.nanosec = int(dt), int((dt % 1) * 1e9)
        return r

    def _abort_all(self, message: str) -> None:
        for pg in self.pending:
            self._finish(pg.gh, "abort", self._result(ComputePathToPose.Result.UNKNOWN,
                                                      message))
        self.pending = []

    def _tick(self) -> None:
        R = ComputePathToPose.Result
        for pg in list(self.pending):
            g = pg.gh.request
            if pg.gh.is_cancel_requested:
                self.pending.remove(pg)
                self._finish(pg.gh, "cancel", self._result(R.NONE, "canceled"))
                continue
            if g.planner_id not in ("", self.p["planner_id"]):
                self.pending.remove(pg)
                self._finish(pg.gh, "abort", self._result(
                    R.INVALID_PLANNER, f"planner id {g.planner_id!r} is invalid (this server "
                    f"has {self.p['planner_id']!r})"))
                continue
            t0 = time.monotonic()
            try:
                pts, frame = self.plan_for(g.goal, g.start if g.use_start else None)
            except TransformError as exc:
                if self.now() - pg.t <= self.p["transform_timeout"]:
                    continue  # try again on the next tick
                self.pending.remove(pg)
                self._finish(pg.gh, "abort", self._result(R.TF_ERROR, f"no transform within "
                                                          f"{self.p['transform_timeout']:g} s: "
                                                          f"{exc}"))
                continue
            except PlanError as exc:
                if exc.reason == "UNKNOWN" and self.now() - pg.t <= self.p["transform_timeout"]:
                    continue  # no map yet: give it the same grace as a transform
                self.pending.remove(pg)
                self.get_logger().warning(f"compute_path_to_pose: {exc}")
                self._finish(pg.gh, "abort", self._result(getattr(R, exc.reason), str(exc)))
                continue
            self.pending.remove(pg)
            self._finish(pg.gh, "succeed", self._result(
                R.NONE, "", path_msg(pts, frame, self.now()), t0))


class NavigatorNode(_PlanningNode):
    """navigate_to_pose: plan, then FollowPath."""

    NAME = "navigator_node"

    def __init__(self, node_name: str = NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.current: _Pending | None = None
        self.client: Any = None
        self._orphan: Any = None  # a preempted goal's FollowPath goal, until the next one runs

    def _make_servers(self) -> None:
        from rclpy.action import ActionClient, ActionServer, CancelResponse

        self.server = ActionServer(self, NavigateToPose, "navigate_to_pose",
                                   execute_callback=self._execute,
                                   goal_callback=self._goal_callback,
                                   handle_accepted_callback=self._on_accepted,
                                   cancel_callback=lambda _gh: CancelResponse.ACCEPT)
        self.client = ActionClient(self, FollowPath, self.p["follow_path_action"])

    def _destroy_servers(self) -> None:
        if self.server is not None:
            self.server.destroy()
            self.client.destroy()
            self.server = self.client = None

    def _result(self, code: int, message: str) -> Any:
        return NavigateToPose.Result(error_code=code, error_msg=message)

    def _end(self, kind: str, code: int = 0, message: str = "") -> None:
        pg = self.current
        if pg is None:
            return
        self.current = None
        if pg.follow is None and self._orphan is not None and kind != "abort_preempted":
            self._orphan.cancel_goal_async()  # nothing replaces the old path: stop it
            self._orphan = None
        kind = "abort" if kind == "abort_preempted" else kind
        if message and kind == "abort":
            self.get_logger().error(f"navigate_to_pose: aborted ({code}): {message}")
        elif kind == "succeed":
            self.get_logger().info("navigate_to_pose: goal reached")
        self._finish(pg.gh, kind, self._result(code, message))

    def _abort_all(self, message: str) -> None:
        if self.current is not None:
            if self.current.follow is not None:
                self.current.follow.cancel_goal_async()
            self._end("abort", NavigateToPose.Result.UNKNOWN, message)

    def _on_accepted(self, gh: Any) -> None:
        if self.current is not None:  # preempt: the running goal is aborted, the new one
            # re-plans and its FollowPath goal preempts the controller's
            old = self.current.follow or self._orphan
            self._end("abort_preempted", NavigateToPose.Result.NONE,
                      "preempted by a newer goal")
            self._orphan = old
        self.current = _Pending(gh, self.now())
        x, y, _ = pose_2d(gh.request.pose)
        self.get_logger().info(f"navigate_to_pose: goal ({x:.2f}, {y:.2f}) in frame "
                               f"{gh.request.pose.header.frame_id!r}")
        self._tick()

    def _tick(self) -> None:
        pg = self.current
        if pg is None:
            return
        if pg.gh.is_cancel_requested:
            if pg.follow is None:
                self._end("cancel")
            elif not pg.cancel_sent:
                pg.cancel_sent = True
                pg.follow.cancel_goal_async()  # its result ends ours (canceled)
            return
        if pg.phase == "plan":
            self._plan(pg)
        elif pg.phase == "follow" and pg.follow is not None:
            self._feedback(pg)

    def _plan(self, pg: _Pending) -> None:
        R = NavigateToPose.Result
        try:
            pts, frame = self.plan_for(pg.gh.request.pose, None)
        except TransformError as exc:
            if self.now() - pg.t > self.p["transform_timeout"]:
                self._end("abort", R.TF_ERROR, f"no transform within "
                          f"{self.p['transform_timeout']:g} s: {exc}")
            return
        except PlanError as exc:
            if exc.reason == "UNKNOWN" and self.now() - pg.t <= self.p["transform_timeout"]:
                return
            self._end("abort", getattr(ComputePathToPose.Result, exc.reason), str(exc))
            return
        if not self.client.server_is_ready():
            if time.monotonic() - pg.wall > self.p["server_timeout"]:
                self._end("abort", R.UNKNOWN, f"FollowPath server "
                          f"{self.p['follow_path_action']!r} not available after "
                          f"{self.p['server_timeout']:g} s")
            return
        goal = FollowPath.Goal(path=path_msg(pts, frame, self.now()),
                               controller_id=self.p["controller_id"],
                               goal_checker_id=self.p["goal_checker_id"])
        pg.phase = "sending"
        pg.path_len = float(np.hypot(*np.diff(pts, axis=0).T).sum()) if len(pts) > 1 else 0.0
        fut = self.client.send_goal_async(goal, feedback_callback=lambda m, pg=pg: setattr(
            pg, "follow_fb", m.feedback))
        fut.add_done_callback(lambda f, pg=pg: self._on_follow_sent(pg, f))
        self.get_logger().info(f"navigate_to_pose: path of {len(pts)} points "
                               f"({pg.path_len:.2f} m) in frame {frame!r} sent to FollowPath")

    def _on_follow_sent(self, pg: _Pending, fut: Any) -> None:
        if pg is not self.current:  # preempted meanwhile: its FollowPath goal was preempted
            return
        handle = fut.result()
        if handle is None or not handle.accepted:
            self._end("abort", NavigateToPose.Result.UNKNOWN, "FollowPath goal rejected (is "
                      "the controller active?)")
            return
        pg.follow = handle
        pg.phase = "follow"
        self._orphan = None  # the controller dropped it for this one
        if pg.gh.is_cancel_requested:
            pg.cancel_sent = True
            handle.cancel_goal_async()
        handle.get_result_async().add_done_callback(lambda f, pg=pg: self._on_follow_done(pg, f))

    def _on_follow_done(self, pg: _Pending, fut: Any) -> None:
        from action_msgs.msg import GoalStatus

        if pg is not self.current:
            return
        res = fut.result()
        status, result = res.status, res.result
        if status == GoalStatus.STATUS_SUCCEEDED:
            self._end("succeed")
        elif status == GoalStatus.STATUS_CANCELED and pg.gh.is_cancel_requested:
            self._end("cancel")
        else:
            code = result.error_code or NavigateToPose.Result.UNKNOWN
            self._end("abort", code, f"FollowPath failed: {result.error_msg or status}")

    def _feedback(self, pg: _Pending) -> None:
        fb = NavigateToPose.Feedback()
        frame = self.p["global_frame"]
        try:
            x, y, yaw = self.robot_in(frame)
            fb.current_pose = msgs.pose_stamped(x, y, yaw, self.now(), frame)
        except TransformError:
            pass
        dt = max(self.now() - pg.t, 0.0)
        fb.navigation_time.sec, fb.navigation_time.nanosec = int(dt), int((dt % 1) * 1e9)
        f = pg.follow_fb
        fb.distance_remaining = float(f.distance_to_goal) if f is not None else \
            float(getattr(pg, "path_len", 0.0))
        if f is not None and f.speed > 0.05:
            eta = f.distance_to_goal / f.speed
            fb.estimated_time_remaining.sec = int(eta)
            fb.estimated_time_remaining.nanosec = int((eta % 1) * 1e9)
        pg.gh.publish_feedback(fb)


def _main(name: str, cls: type, args: list[str] | None) -> int:
    return msgs.run_single(name, cls, args if args is not None else sys.argv)


def main(args: list[str] | None = None) -> int:
    """navigator_node console script."""
    return _main(NavigatorNode.NAME, NavigatorNode, args)


def planner_main(args: list[str] | None = None) -> int:
    """planner_server_node console script."""
    return _main(PlannerServerNode.NAME, PlannerServerNode, args)


if __name__ == "__main__":
    sys.exit(main())
