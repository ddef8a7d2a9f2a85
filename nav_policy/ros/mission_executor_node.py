"""mission_executor_node: runs a plan (mission) step by step with the local planner.

Subscribes mission (std_msgs/String, the plan JSON of docs/DESIGN.md) and odom (Odometry, sensor
QoS). Publishes goal_pose (PoseStamped) for each point of each step, plan (nav_msgs/Path: the
grid route to that point, when a world file is given), cmd_vel (Twist: in-place rotation for
turn steps and a zero command when it stops the robot) and mission_status (std_msgs/String
JSON, see nav_policy.instruct.execution). Stopping the robot (a step done with nothing else to
drive to, a failure, a new mission) publishes an empty plan, which clears the local planner's
goal, and a zero cmd_vel. A new mission replaces the running one ("cancelled").

The step geometry and the state machine are pure (nav_policy.instruct.mission / .execution);
this node only feeds them odometry and time and publishes what they return. Goals are in
`frame_id` (the landmarks' frame); in simulation that is the odometry frame.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import Odometry, Path
from rclpy.node import Node
from std_msgs.msg import String

from nav_policy.errors import ConfigError
from nav_policy.instruct.execution import ExecConfig, MissionRunner, TickOutput
from nav_policy.instruct.mission import GeometryConfig, MissionGeometry, Pose2D
from nav_policy.ros import msgs
from nav_policy.ros.convert import yaw_from_quaternion
from nav_policy.ros.mission_params import declare_specs

NODE = "mission_executor_node"


def exec_config(p: dict[str, Any]) -> ExecConfig:
    return ExecConfig(arrival_tolerance=p["arrival_tolerance"],
                      pass_tolerance=p["pass_tolerance"],
                      heading_tolerance_deg=p["heading_tolerance_deg"],
                      step_timeout_s=p["step_timeout"], stall_timeout_s=p["stall_timeout"],
                      stall_progress_m=p["stall_progress"], turn_speed=p["turn_speed"])


def build_geometry(p: dict[str, Any]) -> MissionGeometry:
    """Landmarks (+ world free space) from the node's parameters; ConfigError when unreadable."""
    from nav_policy.instruct import load_landmarks
    from nav_policy.paths import config_path
    from nav_policy.sim.robot import load_robot_spec
    from nav_policy.sim.world import load_world

    landmarks = load_landmarks(p["landmarks"] or config_path("landmarks_demo.yaml"))
    robot = load_robot_spec(p["robot_config"] or None)
    cfg = GeometryConfig(robot_radius=robot.radius, clearance_margin=p["clearance_margin"],
                         standoff=p["standoff"], pass_beyond=p["pass_beyond"],
                         door_depth=p["door_depth"], area_radius=p["area_radius"])
    if not p["world"]:
        return MissionGeometry(landmarks, None, cfg)
    return MissionGeometry.from_world(landmarks, load_world(p["world"]), cfg)


def parse_mission(text: str) -> Any:
    """The Plan in a mission message; ValueError with a one-line reason if it is not one."""
    from pydantic import ValidationError

    from nav_policy.instruct.schema import Plan

    try:
        return Plan.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ValueError(f"mission is not JSON: {exc.msg}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        raise ValueError(f"mission is not a valid plan: {where}: {first.get('msg')}") from None


class MissionExecutorNode(Node):
    def __init__(self, node_name: str = NODE, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.p = declare_specs(self, NODE)
        self.geometry = build_geometry(self.p)
        self.runner: MissionRunner | None = None
        self.pose: Pose2D | None = None
        self.speed = 0.0
        self.missions = 0
        self._last_status = -math.inf
        self._pending_path: Any = None
        q = msgs.COMMAND_QOS
        self.goal_pub = self.create_publisher(PoseStamped, "goal_pose", q)
        self.plan_pub = self.create_publisher(Path, "plan", q)
        self.cmd_pub = self.create_publisher(Twist, "cmd_vel", q)
        self.status_pub = self.create_publisher(String, "mission_status", q)
        self.create_subscription(String, "mission", self._on_mission, q)
        self.create_subscription(Odometry, "odom", self._on_odom, msgs.SENSOR_QOS)
        self.create_timer(1.0 / self.p["rate"], self._tick)
        world = self.p["world"] or "none (no free-space checks)"
        self.get_logger().info(f"{len(self.geometry.landmarks)} landmarks, world {world}")

    # ---- inputs -----------------------------------------------------------------------------
    def _on_odom(self, msg: Odometry) -> None:
        pp = msg.pose.pose
        o = pp.orientation
        self.pose = Pose2D(pp.position.x, pp.position.y,
                           yaw_from_quaternion(o.x, o.y, o.z, o.w))
        self.speed = float(msg.twist.twist.linear.x)

    def _on_mission(self, msg: String) -> None:
        now = msgs.now_s(self)
        try:
            plan = parse_mission(msg.data)
        except ValueError as exc:
            self.get_logger().warning(str(exc))
            self._status({"state": "rejected", "reason": str(exc), "code": "invalid_plan"})
            return
        if self.runner is not None and not self.runner.done:
            self._publish(self.runner.cancel(now, "replaced by a new mission"))
        self.missions += 1
        self.runner = MissionRunner(plan, self.geometry, exec_config(self.p), self.missions,
                                    plan_paths=self.p["publish_plan"])
        self.get_logger().info(f"mission {self.missions}: {len(plan.steps)} steps")
        if self.pose is None:
            self.get_logger().info("waiting for odom before the first step")

    # ---- ticking ----------------------------------------------------------------------------
    def _tick(self) -> None:
        if self._pending_path is not None:  # the route goes out one tick after its goal
            self.plan_pub.publish(self._pending_path)
            self._pending_path = None
        r = self.runner
        if r is None or r.done or self.pose is None:
            return
        now = msgs.now_s(self)
        out = r.tick(self.pose, now)
        self._publish(out)
        if not r.done and now - self._last_status >= self.p["status_period"]:
            self._progress(r, now)

    def _progress(self, r: MissionRunner, now: float) -> None:
        ev = r.event("running", now)
        ev["speed"] = round(self.speed, 3)
        ev["pose"] = [round(self.pose.x, 3), round(self.pose.y, 3), round(self.pose.yaw, 3)] \
            if self.pose else None
        self._status(ev)

    def _publish(self, out: TickOutput) -> None:
        now = msgs.now_s(self)
        frame = self.p["frame_id"]
        if out.cancel:
            self.plan_pub.publish(self._path([], now))
            self.cmd_pub.publish(msgs.twist(0.0, 0.0))
            self._pending_path = None
        if out.goal is not None:
            yaw = self.pose.yaw if self.pose else 0.0
            self.goal_pub.publish(msgs.pose_stamped(out.goal[0], out.goal[1], yaw, now, frame))
            self._pending_path = None if out.path is None else self._path(out.path, now)
        if out.cmd is not None:
            self.cmd_pub.publish(msgs.twist(*out.cmd))
        for ev in out.events:
            self._log_event(ev)
            self._status(ev)

    def _path(self, points: Any, now: float) -> Path:
        path = Path()
        msgs.set_stamp(path.header, now, self.p["frame_id"])
        for x, y in points:
            path.poses.append(msgs.pose_stamped(float(x), float(y), 0.0, now,
                                                self.p["frame_id"]))
        return path

    def _status(self, ev: dict[str, Any]) -> None:
        self._last_status = msgs.now_s(self)
        self.status_pub.publish(msgs.json_msg(ev))

    def _log_event(self, ev: dict[str, Any]) -> None:
        state = ev["state"]
        what = f"step {ev['step'] + 1}/{ev['steps']} {ev['action'] or ''} {ev['target'] or ''}"
        text = f"mission {ev['mission']} {state}: {what.strip()} {ev['reason']}".strip()
        if state == "failed":
            self.get_logger().error(text)
        elif state in ("running", "step_done", "succeeded", "accepted"):
            self.get_logger().info(text)
        else:
            self.get_logger().warning(text)

    def stop_motion(self) -> None:
        """Zero command on shutdown while a mission runs."""
        if self.runner is not None and not self.runner.done:
            try:
                self.cmd_pub.publish(msgs.twist(0.0, 0.0))
            except Exception as exc:  # noqa: BLE001 - context may be gone
                print(f"{NODE}: last zero command not sent: {exc}", file=sys.stderr)


def main(args: list[str] | None = None) -> int:
    def factory() -> MissionExecutorNode:
        try:
            return MissionExecutorNode()
        except (OSError, ValueError) as exc:
            raise ConfigError(str(exc)) from exc

    return msgs.run_single(NODE, factory, args if args is not None else sys.argv)


if __name__ == "__main__":
    sys.exit(main())
