"""sensor_fusion_node: lidar + depth camera -> scan_fused; wheel odometry + IMU -> odom_fused.

Subscribes (sensor QoS) scan, image/depth (32FC1 metres or 16UC1 millimetres) with
image/camera_info, imu and odom. On every scan it publishes scan_fused: the lidar merged per
beam with the depth image's virtual scan (nav_policy.ros.fusion), so obstacles below the lidar
plane are seen. A depth image stamped more than max_time_offset away from the scan (or none
yet) is not used: scan_fused is then the lidar alone and ~/diagnostics says so. On every odom it
publishes odom_fused from the complementary filter (the IMU yaw rate is used only when its
stamp is within max_time_offset of the odometry's).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, Imu, LaserScan
from std_msgs.msg import String

from nav_policy.ros import msgs
from nav_policy.ros.convert import odom_from_msg, scan_from_msg, stamp_to_sec
from nav_policy.ros.fusion import (
    CameraModel,
    ComplementaryFilter,
    DepthProjector,
    merge_scans,
    stamp_mismatch,
)
from nav_policy.ros.params import declare

NODE = "sensor_fusion_node"


def depth_array(msg: Any) -> np.ndarray:
    """sensor_msgs/Image (32FC1 m or 16UC1 mm) -> float32 metres (H, W); 0 mm -> NaN."""
    enc = msg.encoding.upper()
    dtype: np.dtype[Any]
    if enc == "32FC1":
        dtype = np.dtype(">f4" if msg.is_bigendian else "<f4")
    elif enc in ("16UC1", "MONO16"):
        dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
    else:
        raise ValueError(f"unsupported depth encoding {msg.encoding!r} (32FC1 or 16UC1)")
    row = msg.step // dtype.itemsize
    raw = np.frombuffer(bytes(msg.data), dtype=dtype).reshape(msg.height, row)[:, : msg.width]
    if dtype.kind == "u":
        out = raw.astype(np.float32) / 1000.0
        out[raw == 0] = np.nan
        return out
    return raw.astype(np.float32)


class SensorFusionNode(Node):
    def __init__(self, node_name: str = NODE, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.p = declare(self, NODE)
        self.add_post_set_parameters_callback(self._on_params_set)
        self.camera: CameraModel | None = None
        self.projector: DepthProjector | None = None
        self.depth: np.ndarray | None = None
        self.depth_stamp: float | None = None
        self._virtual: tuple[Any, np.ndarray] | None = None  # (key, ranges) cache
        self.imu_w: float | None = None
        self.imu_stamp: float | None = None
        self.filter = ComplementaryFilter(self.p["alpha"])
        self.status: dict[str, Any] = {"depth": "no depth image yet", "imu": "no imu yet",
                                       "scans": 0, "fused_scans": 0}
        sq = msgs.SENSOR_QOS
        self.create_subscription(LaserScan, "scan", self._on_scan, sq)
        self.create_subscription(Image, "image/depth", self._on_depth, sq)
        self.create_subscription(CameraInfo, "image/camera_info", self._on_info, sq)
        self.create_subscription(Imu, "imu", self._on_imu, sq)
        self.create_subscription(Odometry, "odom", self._on_odom, sq)
        self.scan_pub = self.create_publisher(LaserScan, "scan_fused", msgs.SENSOR_PUB_QOS)
        self.odom_pub = self.create_publisher(Odometry, "odom_fused", msgs.SENSOR_PUB_QOS)
        self.diag_pub = self.create_publisher(String, "~/diagnostics", 10)
        self.create_timer(self.p["diagnostics_period"], self._publish_diagnostics)

    def _on_params_set(self, params: list[Any]) -> None:
        for prm in params:
            self.p[prm.name] = prm.value
        self.filter.alpha = self.p["alpha"]
        self.projector = None  # rebuilt with the new band / stride
        self._virtual = None

    # ---- depth ----------------------------------------------------------------------------
    def _on_info(self, msg: CameraInfo) -> None:
        cam = CameraModel.from_camera_info(msg)
        if cam != self.camera and cam.valid():
            self.camera, self.projector, self._virtual = cam, None, None

    def _on_depth(self, msg: Image) -> None:
        try:
            self.depth = depth_array(msg)
        except ValueError as exc:
            self.status["depth"] = str(exc)
            self.get_logger().warning(str(exc), throttle_duration_sec=5.0)
            return
        self.depth_stamp = stamp_to_sec(msg.header.stamp)
        self._virtual = None

    def _virtual_scan(self, scan: Any) -> np.ndarray | None:
        if self.depth is None or self.camera is None:
            return None
        key = (scan.angle_min, scan.angle_increment, scan.ranges.size, scan.range_min,
               scan.range_max)
        if self._virtual is not None and self._virtual[0] == key:
            return self._virtual[1]
        if self.projector is None:
            p = self.p
            self.projector = DepthProjector(self.camera, (p["camera_x"], p["camera_y"],
                                                          p["camera_z"]),
                                            p["depth_min_height"], p["depth_max_height"],
                                            p["depth_stride"])
        try:
            ranges = self.projector.virtual_scan(self.depth, scan.angle_min, scan.angle_increment,
                                                 scan.ranges.size, scan.range_min,
                                                 scan.range_max)
        except ValueError as exc:
            self.status["depth"] = str(exc)
            return None
        self._virtual = (key, ranges)
        return ranges

    def _on_scan(self, msg: LaserScan) -> None:
        scan = scan_from_msg(msg)
        self.status["scans"] += 1
        fused = scan.ranges
        if self.p["use_depth"]:
            mismatch = stamp_mismatch("depth image", self.depth_stamp, scan.stamp,
                                      self.p["max_time_offset"])
            if mismatch:
                self.status["depth"] = f"{mismatch}: lidar only"
                if self.depth_stamp is not None:
                    self.get_logger().warning(self.status["depth"], throttle_duration_sec=5.0)
            else:
                virtual = self._virtual_scan(scan)
                if virtual is not None:
                    fused = merge_scans(scan.ranges, virtual, scan.range_min)
                    self.status["depth"] = "fused"
                    self.status["fused_scans"] += 1
        else:
            self.status["depth"] = "disabled (use_depth false)"
        self.scan_pub.publish(msgs.laser_scan(fused, scan.angle_min, scan.angle_increment,
                                              scan.range_min, scan.range_max, scan.stamp,
                                              scan.frame_id, scan_time=msg.scan_time))

    # ---- odometry -------------------------------------------------------------------------
    def _on_imu(self, msg: Imu) -> None:
        self.imu_w = float(msg.angular_velocity.z)
        self.imu_stamp = stamp_to_sec(msg.header.stamp)

    def _on_odom(self, msg: Odometry) -> None:
        odom = odom_from_msg(msg)
        mismatch = stamp_mismatch("imu", self.imu_stamp, odom.stamp, self.p["max_time_offset"])
        imu_w = None if mismatch else self.imu_w
        self.status["imu"] = f"{mismatch}: wheel odometry only" if mismatch else "fused"
        x, y, yaw, v, w = self.filter.update(odom, imu_w)
        self.odom_pub.publish(msgs.odometry(x, y, yaw, v, w, odom.stamp, self.p["odom_frame"],
                                            self.p["base_frame"]))

    def _publish_diagnostics(self) -> None:
        ok = self.status["depth"] in ("fused", "disabled (use_depth false)") and \
            self.status["imu"] == "fused"
        self.diag_pub.publish(msgs.json_msg({"node": self.get_fully_qualified_name(),
                                             "level": "OK" if ok else "WARN", **self.status}))


def main(args: list[str] | None = None) -> int:
    return msgs.run_single(NODE, SensorFusionNode, args if args is not None else sys.argv)


if __name__ == "__main__":
    sys.exit(main())
