"""local_planner_node: a learned (rl, ebm) or classical (dwa, mppi) local planner on cmd_vel.

Lifecycle node: configure loads the robot spec and the planner (an ONNX model is checked
against the codec and the robot's lidar: a missing, corrupt or mismatched file fails here),
activate starts the control timer. With autostart (default) both happen at start-up and a
failure exits with code 2 and one line naming the problem.

Subscribes scan (LaserScan), odom (Odometry), goal_pose (PoseStamped), plan (Path); publishes
cmd_vel (Twist, or TwistStamped with cmd_vel_stamped) and ~/diagnostics (std_msgs/String,
JSON). Serves `follow_path` (nav2_msgs/action/FollowPath, Nav2 controller_server semantics:
nav_policy.ros.follow_path) where nav2_msgs is installed. Goals and paths in another frame than
odometry's are transformed through TF (nav_policy.ros.tf; the latest transform, re-read every
tick) and fail after transform_timeout without one. The control logic lives in
nav_policy.ros.control (tested without ROS).
"""

from __future__ import annotations

import collections
import math
import sys
import time
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
from nav_msgs.msg import Odometry, Path
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
from sensor_msgs.msg import LaserScan
from std_msgs.msg import Float64MultiArray, String

from nav_policy.errors import ConfigError, ModelError, NavPolicyError
from nav_policy.planners.safety import SafetyConfig, SafetyLayer
from nav_policy.ros import msgs
from nav_policy.ros.control import LocalController, TickResult
from nav_policy.ros.convert import (
    goal_from_msg,
    odom_from_msg,
    path_from_msg,
    scan_from_msg,
)
from nav_policy.ros.params import declare
from nav_policy.ros.tf import TransformError

NODE = "local_planner_node"
DEFAULT_POLICY_HZ = 10.0  # LocalNav-v0's control_hz, for models exported without it
SAFETY_KEYS = ("stop_margin", "slow_margin", "lateral_margin", "slow_factor", "min_vel_x",
               "max_vel_x", "max_vel_theta", "acc_lim_x", "acc_lim_theta",
               "max_invalid_fraction", "collision_model", "time_before_collision",
               "approach_margin")


def build_planner(name: str, model: str, robot: Any, **options: Any
                  ) -> tuple[Any, float | None, str]:
    """(planner, policy period in s or None for every tick, model kind/description).
    `options` go to an ebm planner (energy_gate, energy_speed_factor)."""
    from nav_policy.planners import make_planner

    try:
        if name == "ebm":
            planner = make_planner(name, robot=robot, model=model or None, **options)
        elif name == "rl":
            planner = make_planner(name, robot=robot, model=model or None)
        else:
            planner = make_planner(name, robot=robot, seed=0)
    except ImportError as exc:
        raise ConfigError(f"planner {name!r} is not available in this installation: {exc}") \
            from exc
    runtime = getattr(planner, "runtime", None)
    if runtime is None:
        return planner, None, name
    hz_text = runtime.meta.extra.get("control_hz")
    try:
        hz = float(hz_text) if hz_text is not None else DEFAULT_POLICY_HZ
    except ValueError as exc:
        raise ModelError(f"{runtime.path}: control_hz metadata {hz_text!r} is not a number") \
            from exc
    if not (math.isfinite(hz) and hz > 0):
        raise ModelError(f"{runtime.path}: control_hz metadata {hz_text!r} must be positive")
    return planner, 1.0 / hz, runtime.meta.kind


class LocalPlannerNode(LifecycleNode):
    def __init__(self, node_name: str = NODE, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.p = declare(self, NODE)
        self.add_post_set_parameters_callback(self._on_params_set)
        self.error: str | None = None
        self.controller: LocalController | None = None
        self.policy_hz: float | None = None
        self.model_desc = ""
        self.robot: Any = None
        self._subs: list[Any] = []
        self._timers: list[Any] = []
        self._cmd_pub: Any = None
        self._diag_pub: Any = None
        self._timing_pub: Any = None
        self._active = False
        self._state = ("", "")
        self._last_tick_t: float | None = None
        self._ticks: collections.deque[float] = collections.deque(maxlen=400)
        self._tick_s: collections.deque[float] = collections.deque(maxlen=400)
        self._eval_s: collections.deque[float] = collections.deque(maxlen=400)
        self._last_result: TickResult | None = None
        self.tf: Any = None
        self.follow: Any = None
        self._target: dict[str, Any] | None = None  # goal/path as received, in its frame

    # ---- lifecycle ----------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        from nav_policy.sim.robot import load_robot_spec

        p = self.p
        try:
            self.robot = load_robot_spec(p["robot_config"] or None)
            planner, period, kind = build_planner(
                p["planner"], p["model"], self.robot, energy_gate=p["energy_gate"],
                energy_speed_factor=p["energy_speed_factor"])
            if period is not None and 1.0 / period > p["control_rate"] + 1e-9:
                raise ConfigError(f"model runs at {1.0 / period:g} Hz but control_rate is "
                                  f"{p['control_rate']:g} Hz; raise control_rate")
        except NavPolicyError as exc:
            self.error = str(exc)
            if not p["autostart"]:
                self.get_logger().error(self.error)
            return TransitionCallbackReturn.FAILURE
        self.policy_hz = None if period is None else 1.0 / period
        self.model_desc = kind
        self.controller = LocalController(
            planner, SafetyLayer(self._safety_config()), 1.0 / p["control_rate"], period,
            p["watchdog_timeout"], p["goal_tolerance"], p["lookahead_distance"],
            mount=self.robot.lidar.mount)
        cmd_type = TwistStamped if p["cmd_vel_stamped"] else Twist
        self._cmd_pub = self.create_lifecycle_publisher(cmd_type, "cmd_vel", msgs.COMMAND_QOS)
        self._diag_pub = self.create_lifecycle_publisher(String, "~/diagnostics", 10)
        if p["publish_timing"]:
            self._timing_pub = self.create_lifecycle_publisher(Float64MultiArray, "~/timing", 100)
        self._subs = [
            self.create_subscription(LaserScan, "scan", self._on_scan, msgs.SENSOR_QOS),
            self.create_subscription(Odometry, "odom", self._on_odom, msgs.SENSOR_QOS),
            self.create_subscription(PoseStamped, "goal_pose", self._on_goal, msgs.COMMAND_QOS),
            self.create_subscription(Path, "plan", self._on_plan, msgs.COMMAND_QOS),
        ]
        self._start_tf_and_action()
        rate = "every tick" if self.policy_hz is None else f"{self.policy_hz:g} Hz (model)"
        self.get_logger().info(f"planner {p['planner']} ({kind}) evaluated at {rate}, control "
                               f"{p['control_rate']:g} Hz ({p['control_trigger']})")
        return TransitionCallbackReturn.SUCCESS

    def _safety_config(self) -> SafetyConfig:
        p = self.p
        radius = p["footprint_radius"] or self.robot.radius
        footprint = None if p["footprint_radius"] else self.robot.footprint  # the profile's
        return SafetyConfig(radius=radius, footprint=footprint,
                            expected_beams=self.robot.lidar.beams,
                            **{k: p[k] for k in SAFETY_KEYS})

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self._start_timers()
        self._active = True
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        if self.follow is not None:
            self.follow.abort_all("the controller was deactivated")
        self.stop_motion()
        self._active = False
        self._drop_timers()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.stop_motion()
        self._active = False
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def _drop_timers(self) -> None:
        for t in self._timers:
            self.destroy_timer(t)
        self._timers = []

    def _teardown(self) -> None:
        self._drop_timers()
        if self.follow is not None:
            self.follow.close()
            self.follow = None
        if self.tf is not None:
            self.tf.close()
            self.tf = None
        self._target = None
        for s in self._subs:
            self.destroy_subscription(s)
        self._subs = []
        for pub in (self._cmd_pub, self._diag_pub, self._timing_pub):
            if pub is not None:
                self.destroy_publisher(pub)
        self._cmd_pub = self._diag_pub = self._timing_pub = None
        self.controller = None

    def autostart_up(self) -> None:
        """Configure and activate now (autostart); raises the configure error."""
        if not self.p["autostart"]:
            self.get_logger().info("autostart is false: waiting for a lifecycle manager")
            return
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise ModelError(self.error or "configure failed")
        if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            raise ConfigError("activate failed")

    def stop_motion(self) -> None:
        """Publish one zero command (deactivate, shutdown, Ctrl-C)."""
        if self._active and self._cmd_pub is not None:
            try:
                self._publish_cmd(0.0, 0.0)
            except Exception as exc:  # noqa: BLE001 - the context may already be shut down
                print(f"{self.get_name()}: last zero command not sent: {exc}", file=sys.stderr)

    # ---- parameters at runtime ----------------------------------------------------------
    def _on_params_set(self, params: list[Any]) -> None:
        for prm in params:
            self.p[prm.name] = prm.value
        c = self.controller
        if c is None:
            return
        c.watchdog.timeout = self.p["watchdog_timeout"]
        c.goal_tolerance = self.p["goal_tolerance"]
        c.lookahead_distance = self.p["lookahead_distance"]
        c.safety.config = self._safety_config()
        if any(prm.name == "diagnostics_period" for prm in params) and self._active:
            self._drop_timers()
            self._start_timers()

    def _start_timers(self) -> None:
        self._timers = [self.create_timer(1.0 / self.p["control_rate"], self._on_timer),
                        self.create_timer(self.p["diagnostics_period"], self._publish_diagnostics)]

    # ---- callbacks ----------------------------------------------------------------------
    def _on_scan(self, msg: LaserScan) -> None:
        if self.controller is None:
            return
        self.controller.set_scan(scan_from_msg(msg), msgs.now_s(self))
        if self._active and self.p["control_trigger"] == "scan":
            self._tick()

    def _on_odom(self, msg: Odometry) -> None:
        if self.controller is not None:
            self.controller.set_odom(odom_from_msg(msg), msgs.now_s(self))

    def _on_goal(self, msg: PoseStamped) -> None:
        if self.controller is None:
            return
        goal = goal_from_msg(msg)
        if not all(math.isfinite(v) for v in goal):
            self.get_logger().warning("goal_pose ignored: non-finite position")
            return
        if self.follow is not None:
            self.follow.abort_all("superseded by a goal on the goal_pose topic")
        self.set_target("goal", msg.header.frame_id, np.array([goal]))
        g = self.controller.goal
        self.get_logger().info(f"new goal ({goal[0]:.2f}, {goal[1]:.2f}) in frame "
                               f"{msg.header.frame_id!r}" + ("" if g else ", waiting for TF"))

    def _on_plan(self, msg: Path) -> None:
        if self.controller is None:
            return
        if self.follow is not None:
            self.follow.abort_all("superseded by a path on the plan topic")
        pts = path_from_msg(msg)
        if len(pts) == 0 or not np.isfinite(pts).all():
            self.clear_target()  # an empty plan cancels
            return
        self.set_target("path", msg.header.frame_id, pts)

    # ---- goals and paths through TF -----------------------------------------------------
    def _start_tf_and_action(self) -> None:
        from nav_policy.ros.follow_path import FollowPath, FollowPathServer
        from nav_policy.ros.tf import TfClient

        try:
            self.tf = TfClient(self)
        except ImportError:
            self.get_logger().warning("tf2_msgs is not installed: goals and paths must be in "
                                      "the odometry frame (python -m "
                                      "nav_policy.ros.build_interfaces)")
        if FollowPath is None:
            self.get_logger().warning("nav2_msgs is not installed: no follow_path action "
                                      "(python -m nav_policy.ros.build_interfaces)")
        else:
            self.follow = FollowPathServer(self)

    def is_active(self) -> bool:
        return self._active

    def now(self) -> float:
        return msgs.now_s(self)

    def set_target(self, kind: str, frame: str, pts: np.ndarray, from_action: bool = False
                   ) -> None:
        """A goal (kind goal, one point) or a path in `frame`; applied now if its transform
        to odometry is known, else on a later tick, or dropped after transform_timeout."""
        self._target = {"kind": kind, "frame": frame.lstrip("/"), "pts": np.asarray(pts),
                        "t": self.now(), "applied": None, "action": from_action}
        self._resolve_target()
        if self._target is not None and self._target["applied"] is None \
                and self.controller is not None:
            self.controller.set_path(np.zeros((0, 2)))  # nothing to follow until resolved

    def clear_target(self) -> None:
        self._target = None
        if self.controller is not None:
            self.controller.set_path(np.zeros((0, 2)))

    def publish_zero(self) -> None:
        if self._active and self._cmd_pub is not None:
            self._publish_cmd(0.0, 0.0)

    def _odom_frame(self) -> str:
        c = self.controller
        return c.odom.frame_id if c is not None and c.odom is not None and c.odom.frame_id \
            else "odom"

    def _resolve_target(self) -> None:
        t, c = self._target, self.controller
        if t is None or c is None:
            return
        odom = self._odom_frame()
        if not t["frame"] or t["frame"] == odom:
            if t["applied"] is None:
                self._apply(t, t["pts"])
            return
        try:
            if self.tf is None:
                raise TransformError("no TF in this installation (tf2_msgs not built)")
            pts = self.tf.lookup(odom, t["frame"]).apply(t["pts"])
        except TransformError as exc:
            if t["applied"] is not None:
                return  # keep following with the last transform
            waited = self.now() - t["t"]
            if waited > self.p["transform_timeout"]:
                msg = (f"no transform from {t['frame']!r} to {odom!r} within "
                       f"{self.p['transform_timeout']:g} s: {exc}")
                self.get_logger().error(f"{t['kind']} dropped: {msg}")
                self._target = None
                c.set_path(np.zeros((0, 2)))
                if t["action"] and self.follow is not None:
                    self.follow.tf_failed(msg)
            return
        if t["applied"] is None or (not c.reached and np.abs(pts - t["applied"]).max() > 1e-3):
            self._apply(t, pts)

    def _apply(self, t: dict[str, Any], pts: np.ndarray) -> None:
        c = self.controller
        t["applied"] = pts
        if t["kind"] == "goal":
            c.set_goal((float(pts[0][0]), float(pts[0][1])))
        else:
            c.set_path(pts)

    def _on_timer(self) -> None:
        if (self.p["control_trigger"] == "scan" and self._last_tick_t is not None
                and time.monotonic() - self._last_tick_t < 1.5 / self.p["control_rate"]):
            return  # scans are driving the ticks; the timer only covers their absence
        self._tick()

    def _tick(self) -> None:
        c = self.controller
        if c is None or not self._active:
            return
        t0 = time.perf_counter()
        if self._target is not None:
            self._resolve_target()
        now = msgs.now_s(self)
        res = c.tick(now)
        if res.publish:
            self._publish_cmd(res.v, res.w)
        dt = time.perf_counter() - t0
        self._last_tick_t = time.monotonic()
        self._ticks.append(self._last_tick_t)
        self._tick_s.append(dt)
        if res.evaluated:
            self._eval_s.append(res.compute_s)
        if self._timing_pub is not None and res.publish:  # one entry per published command
            self._timing_pub.publish(Float64MultiArray(
                data=[res.scan_stamp, 1.0 if res.evaluated else 0.0, res.compute_s, dt]))
        self._last_result = res
        if self.follow is not None:
            self.follow.after_tick(res, now)
        for event in c.goal_events:
            if event == "reached":
                self.get_logger().info("goal reached")
        c.goal_events.clear()
        key = (res.state, res.level)
        if key != self._state:
            self._state = key
            if res.level == "WARN":
                self.get_logger().warning(f"{res.state}: {res.reason}")
            self._publish_diagnostics()

    def _publish_cmd(self, v: float, w: float) -> None:
        if self.p["cmd_vel_stamped"]:
            self._cmd_pub.publish(msgs.twist_stamped(v, w, msgs.now_s(self),
                                                     self.p["base_frame"]))
        else:
            self._cmd_pub.publish(msgs.twist(v, w))

    # ---- diagnostics --------------------------------------------------------------------
    def diagnostics(self) -> dict[str, Any]:
        res = self._last_result
        c = self.controller
        ticks = list(self._ticks)
        rate = (len(ticks) - 1) / (ticks[-1] - ticks[0]) if len(ticks) > 2 and \
            ticks[-1] > ticks[0] else 0.0

        def pct(xs: Any, q: float) -> float | None:
            return float(np.percentile(np.asarray(xs) * 1e3, q)) if len(xs) else None

        info = res.info if res else {}
        return {
            "node": self.get_fully_qualified_name(),
            "level": res.level if res else "OK",
            "state": res.state if res else "inactive",
            "reason": res.reason if res else (self.error or ""),
            "planner": self.p["planner"],
            "model_kind": self.model_desc,
            "policy_hz": self.policy_hz,
            "control_rate_hz": round(rate, 2),
            "tick_ms_p50": pct(self._tick_s, 50), "tick_ms_p99": pct(self._tick_s, 99),
            "policy_ms_p50": pct(self._eval_s, 50), "policy_ms_p99": pct(self._eval_s, 99),
            "energy": info.get("energy"),
            "cmd": [res.v, res.w] if res else [0.0, 0.0],
            "goal": list(c.goal) if c and c.goal else None,
            "distance_to_goal": c.distance_to_goal() if c else None,
            "goal_reached": bool(c and c.reached),
        }

    def _publish_diagnostics(self) -> None:
        if self._diag_pub is not None and self._active:
            self._diag_pub.publish(msgs.json_msg(self.diagnostics()))


def main(args: list[str] | None = None) -> int:
    return msgs.run_single(NODE, LocalPlannerNode, args if args is not None else sys.argv)


if __name__ == "__main__":
    sys.exit(main())
