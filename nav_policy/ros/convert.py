"""ROS message fields <-> plain values and SensorFrame, without importing ROS.

Functions read messages by attribute (duck typing), so unit tests pass SimpleNamespace
stand-ins and the nodes pass the real sensor_msgs / nav_msgs / geometry_msgs objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nav_policy.codecs import SensorFrame


@dataclass(frozen=True)
class ScanData:
    """A LaserScan's contents in SI units; `stamp` is the header time in seconds."""

    ranges: np.ndarray  # float32
    angle_min: float
    angle_increment: float
    range_min: float
    range_max: float
    stamp: float = 0.0
    frame_id: str = ""


@dataclass(frozen=True)
class OdomData:
    """An Odometry's pose (x, y, yaw) and body twist (v, w)."""

    x: float
    y: float
    yaw: float
    v: float
    w: float
    stamp: float = 0.0
    frame_id: str = ""

    @property
    def pose(self) -> tuple[float, float, float]:
        return (self.x, self.y, self.yaw)


def stamp_to_sec(stamp: Any) -> float:
    """builtin_interfaces/Time -> float seconds."""
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def sec_to_stamp(t: float) -> tuple[int, int]:
    """Float seconds -> (sec, nanosec), nanosec in [0, 1e9)."""
    ns = round(t * 1e9)
    return ns // 1_000_000_000, ns % 1_000_000_000


def yaw_from_quaternion(x: float, y: float, z: float, w: float) -> float:
    """Heading (rotation about z) of a quaternion, in (-pi, pi]."""
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def quaternion_from_yaw(yaw: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation by `yaw` about z."""
    return (0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0))


def ranges_array(ranges: Any) -> np.ndarray:
    """LaserScan.ranges (array.array('f'), list or ndarray) as a float32 array, no copy when
    possible."""
    if isinstance(ranges, np.ndarray):
        return ranges.astype(np.float32, copy=False)
    try:
        return np.frombuffer(ranges, dtype=np.float32)
    except (TypeError, ValueError):
        return np.asarray(ranges, dtype=np.float32)


def scan_from_msg(msg: Any) -> ScanData:
    return ScanData(ranges=ranges_array(msg.ranges), angle_min=float(msg.angle_min),
                    angle_increment=float(msg.angle_increment),
                    range_min=float(msg.range_min), range_max=float(msg.range_max),
                    stamp=stamp_to_sec(msg.header.stamp), frame_id=str(msg.header.frame_id))


def odom_from_msg(msg: Any) -> OdomData:
    p = msg.pose.pose
    q = p.orientation
    t = msg.twist.twist
    return OdomData(x=float(p.position.x), y=float(p.position.y),
                    yaw=yaw_from_quaternion(q.x, q.y, q.z, q.w), v=float(t.linear.x),
                    w=float(t.angular.z), stamp=stamp_to_sec(msg.header.stamp),
                    frame_id=str(msg.header.frame_id))


def goal_from_msg(msg: Any) -> tuple[float, float]:
    """PoseStamped -> (x, y) in its frame."""
    return float(msg.pose.position.x), float(msg.pose.position.y)


def path_from_msg(msg: Any) -> np.ndarray:
    """nav_msgs/Path -> (N, 2) array of its poses' positions (N may be 0)."""
    pts = [(float(ps.pose.position.x), float(ps.pose.position.y)) for ps in msg.poses]
    return np.asarray(pts, dtype=np.float64).reshape(-1, 2)


def make_frame(scan: ScanData, odom: OdomData, goal: tuple[float, float],
               path: np.ndarray | None = None,
               mount: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> SensorFrame:
    """The planner input for the latest scan and odometry (poses in the odometry frame);
    `mount` is the lidar's pose on base_link (from the robot profile)."""
    return SensorFrame(ranges=scan.ranges, angle_min=scan.angle_min,
                       angle_increment=scan.angle_increment, range_min=scan.range_min,
                       range_max=scan.range_max, pose=odom.pose, velocity=(odom.v, odom.w),
                       goal=(float(goal[0]), float(goal[1])), path=path, stamp=scan.stamp,
                       mount=mount)
