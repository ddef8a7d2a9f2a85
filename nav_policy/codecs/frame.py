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

    def beam_angles(self) -> np.ndarray:
        return self.angle_min + self.angle_increment * np.arange(len(self.ranges))
