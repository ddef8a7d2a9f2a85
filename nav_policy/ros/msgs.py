"""Message builders, QoS profiles and the process runner shared by the nodes (imports rclpy)."""

from __future__ import annotations

import array
import json
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import rclpy
import rclpy.executors
from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import LaserScan
from std_msgs.msg import String

from nav_policy.errors import NavPolicyError
from nav_policy.ros.convert import quaternion_from_yaw, sec_to_stamp

SENSOR_QOS = qos_profile_sensor_data
# Publishers of sensor streams are reliable/keep-last: compatible with best-effort (sensor QoS)
# and reliable (RViz default) subscribers alike.
SENSOR_PUB_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                            reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.VOLATILE)
COMMAND_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)


def set_stamp(header: Any, t: float, frame_id: str) -> None:
    header.stamp.sec, header.stamp.nanosec = sec_to_stamp(t)
    header.frame_id = frame_id


def laser_scan(ranges: np.ndarray, angle_min: float, angle_increment: float, range_min: float,
               range_max: float, t: float, frame_id: str, scan_time: float = 0.0) -> LaserScan:
    msg = LaserScan()
    set_stamp(msg.header, t, frame_id)
    msg.angle_min = float(angle_min)
    msg.angle_increment = float(angle_increment)
    msg.angle_max = float(angle_min + angle_increment * (len(ranges) - 1))
    msg.range_min = float(range_min)
    msg.range_max = float(range_max)
    msg.scan_time = float(scan_time)
    msg.ranges = array.array("f", np.asarray(ranges, dtype=np.float32).tobytes())
    return msg


def odometry(x: float, y: float, yaw: float, v: float, w: float, t: float, frame_id: str,
             child_frame_id: str) -> Odometry:
    msg = Odometry()
    set_stamp(msg.header, t, frame_id)
    msg.child_frame_id = child_frame_id
    msg.pose.pose.position.x, msg.pose.pose.position.y = float(x), float(y)
    q = quaternion_from_yaw(yaw)
    o = msg.pose.pose.orientation
    o.x, o.y, o.z, o.w = q
    msg.twist.twist.linear.x = float(v)
    msg.twist.twist.angular.z = float(w)
    return msg


def pose_stamped(x: float, y: float, yaw: float, t: float, frame_id: str) -> PoseStamped:
    msg = PoseStamped()
    set_stamp(msg.header, t, frame_id)
    msg.pose.position.x, msg.pose.position.y = float(x), float(y)
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = quaternion_from_yaw(yaw)
    return msg


def twist(v: float, w: float) -> Twist:
    msg = Twist()
    msg.linear.x = float(v)
    msg.angular.z = float(w)
    return msg


def twist_stamped(v: float, w: float, t: float, frame_id: str) -> TwistStamped:
    msg = TwistStamped()
    set_stamp(msg.header, t, frame_id)
    msg.twist.linear.x = float(v)
    msg.twist.angular.z = float(w)
    return msg


def json_msg(data: dict[str, Any]) -> String:
    msg = String()
    msg.data = json.dumps(data, sort_keys=True, default=_jsonable)
    return msg


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def now_s(node: Any) -> float:
    """The node's clock (ROS time: sim time under use_sim_time) in seconds."""
    return node.get_clock().now().nanoseconds * 1e-9


def init_ros(args: Sequence[str] | None = None) -> None:
    """rclpy.init without rclpy's signal handlers: Ctrl-C raises KeyboardInterrupt in the main
    thread so nodes can publish a last zero command; SIGTERM does the same."""
    rclpy.init(args=list(args) if args is not None else None,
               signal_handler_options=SignalHandlerOptions.NO)

    def _term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, _term)


def run_single(name: str, factory: Callable[[], Any], args: Sequence[str] | None = None) -> int:
    """Process body of a console script: init, build, start, spin, clean exit.

    A NavPolicyError while building or starting the node prints `name: reason` on stderr and
    returns 2 (never a traceback); Ctrl-C returns 0.
    """
    init_ros(args)
    node = None
    try:
        try:
            node = factory()
            start = getattr(node, "autostart_up", None)
            if start is not None:
                start()
        except NavPolicyError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 2
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    except rclpy.executors.ExternalShutdownException:
        pass
    finally:
        if node is not None:
            stop = getattr(node, "stop_motion", None)
            if stop is not None:
                stop()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
