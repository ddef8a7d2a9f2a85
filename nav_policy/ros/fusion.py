"""Sensor fusion without ROS: depth image -> virtual scan, scan merge, IMU + wheel odometry.

Depth to virtual scan (DepthProjector): each pixel (u, v) with depth z (metres along the
optical axis, REP 118) is the point X = (u - cx) z / fx (right), Y = (v - cy) z / fy (down),
Z = z (forward) in the optical frame. The camera sits at (camera_x, camera_y, camera_z) in
base_link looking along +x, level, so in base_link the point is forward = camera_x + Z,
left = camera_y - X, up = camera_z - Y. Points whose height lies in [min_height, max_height]
(above the floor, below the robot's top) are binned by their bearing from the lidar origin
into the lidar's beams, keeping the minimum range per beam. NaN, inf, zero or negative depth
is no point. Each pixel is spread over every beam within half its angular width, so a camera
coarser than the lidar leaves no gaps (obstacles widen slightly, on the safe side).

merge_scans takes, per beam, the nearer of the lidar and the virtual return; a lidar beam
that is NaN/-inf (invalid) is filled by a virtual return when there is one.

ComplementaryFilter: heading = alpha x (heading + IMU yaw rate x dt) + (1 - alpha) x wheel
odometry heading, position = wheel odometry displacement rotated by the fused heading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nav_policy.ros.convert import OdomData


def wrap(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics of a depth image."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_camera_info(cls, msg: Any) -> CameraModel:
        k = list(msg.k)
        return cls(int(msg.width), int(msg.height), float(k[0]), float(k[4]), float(k[2]),
                   float(k[5]))

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> CameraModel:
        """Square pixels, principal point at the image centre (what the simulator renders)."""
        f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)

    def k(self) -> list[float]:
        return [self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0]

    def valid(self) -> bool:
        return (self.width > 0 and self.height > 0 and self.fx > 0 and self.fy > 0
                and all(math.isfinite(x) for x in (self.fx, self.fy, self.cx, self.cy)))


class DepthProjector:
    """Depth images of one camera model -> points in base_link -> virtual lidar scans."""

    def __init__(self, camera: CameraModel, camera_xyz: tuple[float, float, float],
                 min_height: float, max_height: float, stride: int = 1) -> None:
        self.camera = camera
        self.camera_xyz = camera_xyz
        self.min_height = float(min_height)
        self.max_height = float(max_height)
        self.stride = max(int(stride), 1)
        u = np.arange(0, camera.width, self.stride, dtype=np.float64)
        v = np.arange(0, camera.height, self.stride, dtype=np.float64)
        self._xr = ((u - camera.cx) / camera.fx)[None, :]  # X / Z per column
        self._yr = ((v - camera.cy) / camera.fy)[:, None]  # Y / Z per row

    def points(self, depth: np.ndarray) -> np.ndarray:
        """(M, 2) base_link (forward, left) of the pixels inside the height band."""
        d = np.asarray(depth, dtype=np.float64)
        if d.shape != (self.camera.height, self.camera.width):
            raise ValueError(f"depth image is {d.shape[1] if d.ndim == 2 else '?'}x"
                             f"{d.shape[0]}, camera_info says {self.camera.width}x"
                             f"{self.camera.height}")
        z = d[:: self.stride, :: self.stride]
        cx, cy, cz = self.camera_xyz
        with np.errstate(invalid="ignore"):
            up = cz - self._yr * z
            keep = np.isfinite(z) & (z > 0) & (up >= self.min_height) & (up <= self.max_height)
        zk = z[keep]
        xr = np.broadcast_to(self._xr, z.shape)[keep]
        return np.stack([cx + zk, cy - xr * zk], axis=1)

    def virtual_scan(self, depth: np.ndarray, angle_min: float, angle_increment: float,
                     beams: int, range_min: float, range_max: float,
                     lidar_xy: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """Ranges (float32, +inf = nothing seen) on the lidar's beam layout."""
        out = np.full(beams, np.inf)
        pts = self.points(depth)
        if len(pts) == 0 or beams <= 0 or angle_increment == 0:
            return out.astype(np.float32)
        dx, dy = pts[:, 0] - lidar_xy[0], pts[:, 1] - lidar_xy[1]
        r = np.maximum(np.hypot(dx, dy), range_min)
        a = np.arctan2(dy, dx)
        # a pixel covers +-half its angular width (an upper bound seen from the lidar, which
        # sits behind the camera): every beam inside that span gets the point, so a camera
        # coarser than the lidar leaves no gaps
        half = 0.5 * self.stride / self.camera.fx
        step = abs(angle_increment)
        lo = np.ceil((a - half - angle_min) / angle_increment - 1e-9).astype(np.int64)
        hi = np.floor((a + half - angle_min) / angle_increment + 1e-9).astype(np.int64)
        if angle_increment < 0:
            lo, hi = hi, lo
        centre = np.rint((a - angle_min) / angle_increment).astype(np.int64)
        lo, hi = np.minimum(lo, centre), np.maximum(hi, centre)
        full_circle = abs(step * beams - 2 * math.pi) < 1e-3
        near = r <= range_max
        for k in range(int((hi - lo).max(initial=0)) + 1):
            idx = lo + k
            ok = near & (idx <= hi)
            if full_circle:
                idx = idx % beams
            else:
                ok &= (idx >= 0) & (idx < beams)
            np.minimum.at(out, idx[ok], r[ok])
        return out.astype(np.float32)


def stamp_mismatch(what: str, stamp: float | None, reference: float,
                   max_offset: float) -> str | None:
    """Why a `what` message stamped `stamp` cannot be fused with data stamped `reference`
    (none yet, or more than `max_offset` seconds apart), or None when it can."""
    if stamp is None:
        return f"no {what} yet"
    offset = abs(reference - stamp)
    if not offset <= max_offset:
        return f"{what} {offset:.3f} s away (max_time_offset {max_offset:g} s)"
    return None


def merge_scans(lidar: np.ndarray, virtual: np.ndarray, range_min: float) -> np.ndarray:
    """Per beam: the nearer valid return of the two (see module docstring)."""
    lid = np.asarray(lidar, dtype=np.float32)
    vir = np.asarray(virtual, dtype=np.float32)
    if lid.shape != vir.shape:
        raise ValueError(f"lidar has {lid.size} beams, virtual scan {vir.size}")
    with np.errstate(invalid="ignore"):
        lidar_hit = np.isfinite(lid) & (lid >= range_min)
        vir_hit = np.isfinite(vir)
        take = vir_hit & (~lidar_hit | (vir < lid))
    out = lid.copy()
    out[take] = vir[take]
    return out


class ComplementaryFilter:
    """Wheel odometry + IMU yaw rate -> fused pose (see module docstring)."""

    def __init__(self, alpha: float = 0.98) -> None:
        self.alpha = float(alpha)
        self.pose: tuple[float, float, float] | None = None
        self._prev: OdomData | None = None

    def reset(self) -> None:
        self.pose, self._prev = None, None

    def update(self, odom: OdomData, imu_w: float | None) -> tuple[float, float, float, float,
                                                                    float]:
        """Fused (x, y, yaw, v, w) after wheel odometry `odom`; imu_w None = no fresh IMU."""
        prev = self._prev
        self._prev = odom
        w_out = float(imu_w) if imu_w is not None and math.isfinite(imu_w) else odom.w
        dt = odom.stamp - prev.stamp if prev is not None else 0.0
        if self.pose is None or prev is None or not 0.0 < dt <= 1.0:
            if self.pose is None or prev is None:
                self.pose = odom.pose
            return (*self.pose, odom.v, w_out)
        x, y, yaw = self.pose
        c, s = math.cos(prev.yaw), math.sin(prev.yaw)
        dx, dy = odom.x - prev.x, odom.y - prev.y
        bx, by = c * dx + s * dy, -s * dx + c * dy  # displacement in the previous body frame
        d_odom = wrap(odom.yaw - prev.yaw)
        d_gyro = w_out * dt if imu_w is not None else d_odom
        pred = yaw + d_gyro
        new_yaw = wrap(pred + (1.0 - self.alpha) * wrap(odom.yaw - pred))
        # the displacement is expressed in the previous body frame: re-apply it from the
        # previous fused heading
        cf, sf = math.cos(yaw), math.sin(yaw)
        x += cf * bx - sf * by
        y += sf * bx + cf * by
        self.pose = (x, y, new_yaw)
        return (x, y, new_yaw, odom.v, w_out)
