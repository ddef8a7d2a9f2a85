"""SensorFrame: everything a local planner sees at one control step, in SI units."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SensorFrame:
    """Raw inputs of a local planner; built by the env from the simulator and by the node from
    LaserScan + Odometry + PoseStamped. Poses are in the odometry frame."""

    ranges: np.ndarray  # LaserScan.ranges, metres; +inf = no return; NaN = invalid
    angle_min: float
    angle_increment: float
    range_min: float
    range_max: float
    pose: tuple[float, float, float]  # x, y, yaw
    velocity: tuple[float, float]  # v (m/s), w (rad/s)
    goal: tuple[float, float]  # x, y
    path: np.ndarray | None = None  # (N, 2) global path to follow, optional
    stamp: float = 0.0
    # the lidar's pose on base_link (x m, y m, yaw rad): the scan's origin and heading in the
    # robot frame; (0, 0, 0) = the lidar at the robot centre looking forward (the diffbot)
    mount: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def beam_angles(self) -> np.ndarray:
        """Beam angles in the lidar's own frame (add mount[2] for the robot frame)."""
        return self.angle_min + self.angle_increment * np.arange(len(self.ranges))

    @property
    def mounted(self) -> bool:
        """True when the lidar is not at the robot centre looking forward."""
        return any(float(m) != 0.0 for m in self.mount)
