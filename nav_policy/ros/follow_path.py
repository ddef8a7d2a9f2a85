"""The `follow_path` action (nav2_msgs/action/FollowPath) of local_planner_node, with the
semantics of Nav2's controller_server (kilted):

- goals are rejected while the lifecycle node is not active;
- a goal asking for another controller_id than the node's (empty = the node's) ends at once,
  aborted with INVALID_CONTROLLER; an unknown goal_checker_id or progress_checker_id with UNKNOWN
  (INVALID_CONTROLLER when it preempts a running goal, as controller_server does); an empty or
  non-finite path with INVALID_PATH;
- a new goal preempts the running one: the running goal is aborted (empty result, as Nav2's
  SimpleActionServer does) and the robot follows the new path without stopping;
- cancel: zero velocity, then the goal ends canceled;
- failures abort with Nav2's error codes and a message: the path's frame has no transform to
  odometry's within transform_timeout (TF_ERROR); the controller stopped (safety stop,
  invalid scan, planner stop) longer than failure_tolerance (NO_VALID_CONTROL); the
  robot did not move required_movement_radius within movement_time_allowance
  (FAILED_TO_MAKE_PROGRESS); scan or odometry missing or stale longer than
  sensor_data_timeout (CONTROLLER_TIMED_OUT, as controller_server waiting for its costmap);
- success when the robot is within goal_tolerance of the path's end; feedback on every control
  tick: distance_to_goal (path length left from the closest path point) and speed.

rclpy detail: an async execute callback that waits would make the executor spin busily (a
pending task is polled on every turn), so a goal is only handed to rclpy's execute step once its
outcome is known; until then its status is ACCEPTED (Nav2 clients wait on the result, not on
EXECUTING). Everything runs on the node's executor thread: no locks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nav_policy.ros.convert import path_from_msg

try:
    from nav2_msgs.action import FollowPath
except ImportError:  # pragma: no cover - depends on build_interfaces having run
    FollowPath = None

STOPPED_STATES = ("stop", "invalid_scan", "planner_stop")


def remaining_length(path: np.ndarray, x: float, y: float) -> float:
    """Path length from the path point closest to (x, y) to the end, plus the gap to it."""
    pts = np.asarray(path, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return 0.0
    d = np.hypot(pts[:, 0] - x, pts[:, 1] - y)
    k = int(np.argmin(d))
    seg = np.hypot(*np.diff(pts[k:], axis=0).T).sum() if len(pts) - k > 1 else 0.0
    return float(d[k] + seg)


class FollowPathServer:
    """Owned by a LocalPlannerNode (lifecycle); see the module doc for the semantics."""

    def __init__(self, node: Any) -> None:
        from rclpy.action import ActionServer, CancelResponse

        self.node = node
        self.current: Any = None
        self.outcomes: dict[bytes, tuple[str, Any]] = {}
        self._cancel = CancelResponse.ACCEPT
        self.server = ActionServer(node, FollowPath, "follow_path",
                                   execute_callback=self._execute,
                                   goal_callback=self._on_goal,
                                   handle_accepted_callback=self._on_accepted,
                                   cancel_callback=lambda _gh: self._cancel)
        self._reset_checks(0.0)

    # ---- rclpy callbacks ----------------------------------------------------------------
    def _on_goal(self, goal: Any) -> Any:
        from rclpy.action import GoalResponse

        if not self.node.is_active():
            self.node.get_logger().warning("follow_path: goal rejected, the node is not active")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _on_accepted(self, gh: Any) -> None:
        R = FollowPath.Result
        p = self.node.p
        preempting = self.current is not None
        if preempting:
            self.finish(self.current, "abort", R.NONE, "preempted by a newer FollowPath goal",
                        stop=False)
        self.current = gh
        g = gh.request
        checker_code = R.INVALID_CONTROLLER if preempting else R.UNKNOWN
        if g.controller_id not in ("", p["controller_id"]):
            return self.fail(R.INVALID_CONTROLLER, f"Failed to find controller name: "
                             f"{g.controller_id} (this server has {p['controller_id']!r})")
        if g.goal_checker_id not in ("", p["goal_checker_id"]):
            return self.fail(checker_code, f"Failed to find goal checker name: "
                             f"{g.goal_checker_id} (this server has {p['goal_checker_id']!r})")
        if g.progress_checker_id not in ("", p["progress_checker_id"]):
            return self.fail(checker_code, f"Failed to find progress checker name: "
                             f"{g.progress_checker_id} (this server has "
                             f"{p['progress_checker_id']!r})")
        pts = path_from_msg(g.path)
        if len(pts) == 0:
            return self.fail(R.INVALID_PATH, "Path is empty.")
        if not np.isfinite(pts).all():
            return self.fail(R.INVALID_PATH, "Path has non-finite points.")
        n = len(pts)
        self.node.get_logger().info(f"follow_path: new goal, {n} poses in frame "
                                    f"{g.path.header.frame_id or '(none)'!r}"
                                    + (" (preempts the running one)" if preempting else ""))
        self.node.set_target("path", g.path.header.frame_id, pts, from_action=True)
        self._reset_checks(self.node.now())

    def _execute(self, gh: Any) -> Any:
        """rclpy's execute step, reached only once the outcome is known (see finish)."""
        kind, result = self.outcomes.pop(bytes(gh.goal_id.uuid),
                                         ("abort", FollowPath.Result(error_code=100)))
        if kind == "succeed":
            gh.succeed()
        elif kind == "cancel" and gh.is_cancel_requested:
            gh.canceled()
        else:
            gh.abort()
        return result

    # ---- outcomes -----------------------------------------------------------------------
    def fail(self, code: int, message: str) -> None:
        self.node.get_logger().error(f"follow_path: aborted ({code}): {message}")
        self.finish(self.current, "abort", code, message)

    def finish(self, gh: Any, kind: str, code: int = 0, message: str = "",
               stop: bool = True) -> None:
        if gh is None:
            return
        self.outcomes[bytes(gh.goal_id.uuid)] = (
            kind, FollowPath.Result(error_code=code, error_msg=message))
        if gh is self.current:
            self.current = None
            if stop:
                self.node.clear_target()
        gh.execute(self._execute)

    def abort_all(self, message: str) -> None:
        """Deactivate/cleanup/shutdown, or a topic goal taking over."""
        if self.current is not None:
            self.fail(FollowPath.Result.UNKNOWN if FollowPath else 100, message)

    def tf_failed(self, message: str) -> None:
        if self.current is not None:
            self.fail(FollowPath.Result.TF_ERROR, message)

    # ---- per control tick ----------------------------------------------------------------
    def _reset_checks(self, now: float) -> None:
        self.stopped_since: float | None = None
        self.stale_since: float | None = None
        self.check_t = now
        self.check_xy: tuple[float, float] | None = None

    def after_tick(self, res: Any, now: float) -> None:
        gh = self.current
        if gh is None:
            return
        c = self.node.controller
        if gh.is_cancel_requested:
            self.node.get_logger().info("follow_path: canceled, stopping the robot")
            self.node.clear_target()
            self.node.publish_zero()
            self.finish(gh, "cancel")
            return
        if c is None:
            return
        if c.reached:
            self.node.get_logger().info("follow_path: reached the goal")
            self.finish(gh, "succeed")
            return
        if c.goal is None:  # waiting for the path's transform
            return
        p = self.node.p
        R = FollowPath.Result
        if res.state == "stale":  # no data yet or stale: wait as for Nav2's costmap
            self.stale_since = now if self.stale_since is None else self.stale_since
            if now - self.stale_since > p["sensor_data_timeout"]:
                return self.fail(R.CONTROLLER_TIMED_OUT, f"sensor data timed out after "
                                 f"{p['sensor_data_timeout']:g} s ({res.reason})")
            self.check_t = now  # no progress is expected without data
            self.stopped_since = None
            return
        self.stale_since = None
        if res.state in STOPPED_STATES:
            self.stopped_since = now if self.stopped_since is None else self.stopped_since
            tol = p["failure_tolerance"]
            if tol >= 0 and now - self.stopped_since > tol:
                return self.fail(R.NO_VALID_CONTROL, f"controller stopped for more than "
                                 f"{tol:g} s ({res.state}: {res.reason})")
        else:
            self.stopped_since = None
        odom = c.odom
        if odom is not None and p["movement_time_allowance"] > 0:
            if self.check_xy is None or math.dist(self.check_xy, (odom.x, odom.y)) >= \
                    p["required_movement_radius"]:
                self.check_xy, self.check_t = (odom.x, odom.y), now
            elif now - self.check_t > p["movement_time_allowance"]:
                return self.fail(R.FAILED_TO_MAKE_PROGRESS, f"Failed to make progress: moved "
                                 f"less than {p['required_movement_radius']:g} m in "
                                 f"{p['movement_time_allowance']:g} s")
        if odom is not None:
            fb = FollowPath.Feedback()
            path = c.path if c.path is not None else np.array([c.goal])
            fb.distance_to_goal = remaining_length(path, odom.x, odom.y)
            fb.speed = float(math.hypot(odom.v, 0.0))
            gh.publish_feedback(fb)

    def close(self) -> None:
        self.abort_all("the controller is shutting down")
        self.server.destroy()
