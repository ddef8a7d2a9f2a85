"""sim_bridge_node: nav_policy's PyBullet simulator (kinematic mode) as ROS 2 topics.

Steps the simulator at `rate` Hz with the latest cmd_vel (Twist, or TwistStamped with
cmd_vel_stamped; zero after cmd_vel_timeout) and publishes, stamped with simulation time:

    scan (LaserScan)   odom (Odometry odom -> base_link)   imu (Imu: yaw rate, forward accel)
    image/depth (Image 32FC1, metres) + image/camera_info at camera_rate
    /clock (rosgraph_msgs/Clock) for use_sim_time nodes
    goal_pose (PoseStamped, the world's goal) at start, after a reset, to each new subscriber
    ~/status (std_msgs/String JSON: time, pose, goal, distance, collided, world)
    /tf odom -> base_link (each step) and map -> odom (map_odom_x/y/yaw, identity by default;
        publish_map_odom false when a localiser publishes it), /tf_static base_link -> the
        lidar frame (scan_frame, at the profile's lidar height); TF needs tf2_msgs
        (python -m nav_policy.ros.build_interfaces builds it into a wheels venv)

~/reset (std_msgs/String JSON) rebuilds the world and restarts: {} = same world, {"seed": S,
"tier": T} = generated, {"world": "file.yaml"}, optional "pose": [x, y, yaw]. Simulation time
keeps increasing across resets.
"""

from __future__ import annotations

import array
import json
import math
import sys
import time
from typing import Any

from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, Imu, LaserScan
from std_msgs.msg import String

from nav_policy.errors import ConfigError, NavPolicyError
from nav_policy.ros import msgs
from nav_policy.ros.fusion import CameraModel
from nav_policy.ros.params import declare
from nav_policy.ros.tf import Transform, static_broadcast_qos, tf_qos, transform_stamped
from nav_policy.sim.generate import KNOWN_TIERS

NODE = "sim_bridge_node"

try:  # optional message packages (not in every wheel set)
    from rosgraph_msgs.msg import Clock as ClockMsg
except ImportError:  # pragma: no cover - depends on the install
    ClockMsg = None
try:
    from geometry_msgs.msg import TransformStamped
    from tf2_msgs.msg import TFMessage
except ImportError:
    TFMessage = None


def load_world_spec(world: str, tier: str, seed: int, radius: float) -> Any:
    """A World from a YAML path, or generated from tier and seed."""
    from nav_policy.sim.generate import generate_world
    from nav_policy.sim.world import load_world

    if world:
        return load_world(world)
    return generate_world(tier, seed, radius=radius)[0]


class SimBridgeNode(Node):
    def __init__(self, node_name: str = NODE, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        from nav_policy.sim.robot import load_robot_spec
        from nav_policy.sim.simulator import make_simulator

        self.p = declare(self, NODE)
        self.add_post_set_parameters_callback(self._on_params_set)
        p = self.p
        self.robot = load_robot_spec(p["robot_config"] or None)
        self.sim = make_simulator(self.robot, p["backend"], motion_mode="kinematic",
                                  control_hz=p["rate"])
        self.camera = CameraModel.from_fov(self.robot.camera.width, self.robot.camera.height,
                                           self.robot.camera.fov_deg)
        self.t_offset = 0.0
        self.collisions = 0
        self.cmd = (0.0, 0.0)
        self.cmd_time = -math.inf
        self.steps = 0
        self.camera_every = (max(round(p["rate"] / p["camera_rate"]), 1)
                             if p["camera_rate"] > 0 else 0)
        self._goal_subs = 0
        self._reset_world({"world": p["world"], "tier": p["tier"], "seed": p["seed"]})

        sq = msgs.SENSOR_PUB_QOS
        self.scan_pub = self.create_publisher(LaserScan, "scan", sq)
        self.odom_pub = self.create_publisher(Odometry, "odom", sq)
        self.imu_pub = self.create_publisher(Imu, "imu", sq)
        self.depth_pub = self.create_publisher(Image, "image/depth", sq)
        self.info_pub = self.create_publisher(CameraInfo, "image/camera_info", sq)
        self.goal_pub = self.create_publisher(PoseStamped, "goal_pose", msgs.COMMAND_QOS)
        self.status_pub = self.create_publisher(String, "~/status", 10)
        self.clock_pub = (self.create_publisher(ClockMsg, "/clock", 10)
                          if ClockMsg is not None and p["publish_clock"] else None)
        self.tf_pub = self.create_publisher(TFMessage, "/tf", tf_qos()[0]) if TFMessage \
            else None
        self.map_odom = Transform.from_2d(p["map_odom_x"], p["map_odom_y"], p["map_odom_yaw"])
        if TFMessage is not None:
            self.tf_static_pub = self.create_publisher(TFMessage, "/tf_static",
                                                       static_broadcast_qos())
            lidar = Transform((0.0, 0.0, float(self.robot.lidar.height)))
            self.tf_static_pub.publish(TFMessage(transforms=[
                transform_stamped(p["base_frame"], p["scan_frame"], lidar, self.sim_time())]))
        else:
            self.get_logger().warning("tf2_msgs is not installed: no TF published (run "
                                      "python -m nav_policy.ros.build_interfaces)")
        cmd_type = TwistStamped if p["cmd_vel_stamped"] else Twist
        self.create_subscription(cmd_type, "cmd_vel", self._on_cmd, msgs.COMMAND_QOS)
        self.create_subscription(String, "~/reset", self._on_reset, 10)
        steady = Clock(clock_type=ClockType.STEADY_TIME)  # never wait on our own /clock
        self.create_timer(1.0 / p["rate"], self._step, clock=steady)
        self.create_timer(0.5, self._publish_status, clock=steady)
        if ClockMsg is None and p["publish_clock"]:
            self.get_logger().warning("rosgraph_msgs is not installed: no /clock published")
        self._publish_sensors()
        self.get_logger().info(f"world {self.world.name}: start {list(self.world.start)}, goal "
                               f"{list(self.world.goal)}; stepping at {p['rate']:g} Hz")

    # ---- world ---------------------------------------------------------------------------
    def _reset_world(self, spec: dict[str, Any]) -> None:
        world = load_world_spec(str(spec.get("world") or ""), str(spec.get("tier", "easy")),
                                int(spec.get("seed", 0)), self.robot.radius)
        self.sim.load_world(world)
        pose = spec.get("pose")
        if pose is not None and (not isinstance(pose, list) or len(pose) != 3):
            raise ValueError(f"pose must be [x, y, yaw], got {pose!r}")
        self.sim.reset((float(pose[0]), float(pose[1]), float(pose[2])) if pose else None)
        self.world = world
        self.collisions = 0
        self.cmd = (0.0, 0.0)

    def sim_time(self) -> float:
        return self.t_offset + self.sim.t

    def _on_reset(self, msg: String) -> None:
        try:
            spec = json.loads(msg.data or "{}")
            if not isinstance(spec, dict):
                raise TypeError("expected a JSON object")
            if not spec:
                spec = {"world": self.p["world"], "tier": self.world.tier,
                        "seed": self.world.seed or 0}
                if self.world.tier == "custom":
                    spec = {"world": self.p["world"]}
            if "tier" in spec and spec["tier"] not in KNOWN_TIERS:
                raise ValueError(f"unknown tier {spec['tier']!r}")
            t = self.sim_time()
            self._reset_world(spec)
            self.t_offset = t
        except (ValueError, TypeError, NavPolicyError) as exc:
            self.get_logger().error(f"reset refused: {exc}")
            return
        self.get_logger().info(f"reset: world {self.world.name}, goal {list(self.world.goal)}")
        self._publish_sensors()
        self._publish_goal()

    def _publish_goal(self) -> None:
        if self.p["publish_goal"]:
            gx, gy = self.world.goal
            self.goal_pub.publish(msgs.pose_stamped(gx, gy, 0.0, self.sim_time(),
                                                    self.p["odom_frame"]))

    # ---- commands and stepping -----------------------------------------------------------
    def _on_cmd(self, msg: Any) -> None:
        tw = msg.twist if hasattr(msg, "twist") else msg
        v, w = float(tw.linear.x), float(tw.angular.z)
        self.cmd = (v, w) if math.isfinite(v) and math.isfinite(w) else (0.0, 0.0)
        self.cmd_time = time.monotonic()

    def _step(self) -> None:
        v, w = self.cmd
        if time.monotonic() - self.cmd_time > self.p["cmd_vel_timeout"]:
            v, w = 0.0, 0.0
        if self.sim.step(v, w):
            self.collisions += 1
            self.get_logger().warning("robot in collision", throttle_duration_sec=2.0)
        self.steps += 1
        self._publish_sensors()
        n = self.goal_pub.get_subscription_count()
        if n > self._goal_subs:
            self._publish_goal()
        self._goal_subs = n

    def _publish_sensors(self) -> None:
        p, sim, lid = self.p, self.sim, self.sim.lidar
        t = self.sim_time()
        if self.clock_pub is not None:
            c = ClockMsg()
            c.clock.sec, c.clock.nanosec = msgs.sec_to_stamp(t)
            self.clock_pub.publish(c)
        od = sim.odometry()
        self.odom_pub.publish(msgs.odometry(od.x, od.y, od.yaw, od.v, od.w, t, p["odom_frame"],
                                            p["base_frame"]))
        if self.tf_pub is not None:
            self.tf_pub.publish(self._tf(od, t))
        if self.camera_every and self.steps % self.camera_every == 0:
            self._publish_depth(t)  # before the scan, so a fusion node has it for this scan
        self.scan_pub.publish(msgs.laser_scan(sim.scan(), lid.angle_min, lid.angle_increment,
                                              lid.range_min, lid.range_max, t, p["scan_frame"],
                                              scan_time=sim.dt))
        yaw_rate, accel = sim.imu()
        imu = Imu()
        msgs.set_stamp(imu.header, t, p["base_frame"])
        imu.orientation_covariance[0] = -1.0  # no orientation estimate
        imu.angular_velocity.z = yaw_rate
        imu.linear_acceleration.x = accel
        imu.linear_acceleration.z = 9.81
        self.imu_pub.publish(imu)

    def _publish_depth(self, t: float) -> None:
        depth = self.sim.depth_image()
        cam = self.camera
        img = Image()
        msgs.set_stamp(img.header, t, self.p["camera_frame"])
        img.height, img.width = cam.height, cam.width
        img.encoding = "32FC1"
        img.is_bigendian = 0
        img.step = cam.width * 4
        img.data = array.array("B", depth.astype("<f4").tobytes())
        self.depth_pub.publish(img)
        info = CameraInfo()
        info.header = img.header
        info.height, info.width = cam.height, cam.width
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        info.k = cam.k()
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [cam.fx, 0.0, cam.cx, 0.0, 0.0, cam.fy, cam.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        self.info_pub.publish(info)

    def _tf(self, od: Any, t: float) -> Any:
        tf = TransformStamped()
        msgs.set_stamp(tf.header, t, self.p["odom_frame"])
        tf.child_frame_id = self.p["base_frame"]
        tf.transform.translation.x, tf.transform.translation.y = od.x, od.y
        r = tf.transform.rotation
        r.x, r.y, r.z, r.w = (0.0, 0.0, math.sin(od.yaw / 2), math.cos(od.yaw / 2))
        out = [tf]
        if self.p["publish_map_odom"]:  # stamped like AMCL's: valid up to the next step
            out.append(transform_stamped(self.p["map_frame"], self.p["odom_frame"],
                                         self.map_odom, t + 1.0 / self.p["rate"]))
        return TFMessage(transforms=out)

    def _publish_status(self) -> None:
        x, y, yaw = (float(a) for a in self.sim.pose)
        gx, gy = self.world.goal
        self.status_pub.publish(msgs.json_msg({
            "time": self.sim_time(), "world": self.world.name, "pose": [x, y, yaw],
            "goal": [gx, gy], "distance_to_goal": math.hypot(gx - x, gy - y),
            "collided": bool(self.sim.collided), "collision_steps": self.collisions,
            "cmd": list(self.cmd)}))

    def _on_params_set(self, params: list[Any]) -> None:
        for prm in params:
            self.p[prm.name] = prm.value

    def destroy_node(self) -> None:
        self.sim.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    def factory() -> SimBridgeNode:
        try:
            return SimBridgeNode()
        except (OSError, ValueError) as exc:
            raise ConfigError(str(exc)) from exc

    return msgs.run_single(NODE, factory, args if args is not None else sys.argv)


if __name__ == "__main__":
    sys.exit(main())
