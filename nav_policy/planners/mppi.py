"""MPPI local planner in the style of Nav2 MPPI (nav2_mppi_controller), vectorised numpy.

Each control step perturbs the current control sequence U (time_steps x (v, w)) with Gaussian
noise (std vx_std, wz_std) into `batch_size` samples, clips them to the velocity limits and,
step by step from the measured velocity, to the acceleration limits (so every sample is a
command sequence the robot can follow), integrates the diff-drive model at `model_dt`, scores
every trajectory with the critics below and replaces U by the softmax-weighted mean of the
samples (weights exp(-(cost - min cost) / temperature)); the cost includes Nav2's control
term gamma / std^2 * U . (V - U). The first control of U is sent. The next call starts from U
shifted by one control period (control_period / model_dt model steps, 2 at 10 Hz with the
0.05 s model step) and repeats its last control: the warm start. The noise comes from
np.random.default_rng(seed), re-seeded by reset(), so runs are deterministic given the seed.

Critics (Nav2 name in parentheses), all computed in the robot frame:

- obstacle (ObstaclesCritic): d = distance from the footprint circle (robot radius +
  `footprint_padding`) to the nearest scan point at every `collision_stride`-th pose (2:
  every 0.1 s, at most 5 cm apart at 0.5 m/s, where a circle's chord dips < 2 mm). A
  trajectory with d < 0 anywhere costs `collision_cost`; otherwise w_critical x
  mean(max(0, collision_margin - d)) + w_repulsion x mean(max(0, repulsion_radius - d)).
- goal (GoalCritic): w_goal x mean over the poses of the cost-to-go to the local goal. The
  cost-to-go is the scan-built rolling-grid distance around seen obstacles shared with DWA
  (base.goal_field; `goal_metric: euclidean` for the straight line). Nav2 only turns its
  GoalCritic on near the goal because it always follows a path; in goal-only mode this is
  what drives the robot, so it is always on.
- goal_angle (PathAngleCritic towards the goal): w_goal_angle x mean over the poses of
  (1 + (g(p + f h) - g(p)) / f) / 2, g the cost-to-go, h the heading, f =
  `forward_point_distance`: 0 facing down the cost-to-go, 1 facing away. Off within
  `goal_angle_threshold` of the goal.
- path_align (PathAlignCritic; with frame.path only): w_path_align x mean distance from the
  poses to the path ahead. Off within `goal_angle_threshold` of the goal.
- path_follow (PathFollowCritic; with frame.path only): w_path_follow x distance from the
  last pose to the point `path_follow_offset` metres along the path ahead of the robot.
- prefer_forward (PreferForwardCritic): w_prefer_forward x mean(max(0, -v)); zero while
  v_min >= 0 (our robot never reverses) and kept for robots that do.
- twirling (TwirlingCritic): w_twirling x mean |w|.

With a path the local goal is the end of the path window ahead (`path_lookahead` m), else
frame.goal.

Weights for OUR robot, from config/planners.yaml `mppi:`. Nav2's defaults (ObstaclesCritic
critical 20 / repulsion 1.5 / collision_margin 0.1, GoalCritic 5, PathAngle 2, PathAlign 14,
PathFollow 5, PreferForward 5, temperature 0.3, gamma 0.015, vx_std 0.2, wz_std 0.4,
batch 1000, 56 x 0.05 s) are kept except w_goal = 15: with 5 the control term
gamma / std^2 x U . (V - U) cancels the goal critic's reward for faster samples and the robot
cruises at ~0.37 of its 0.5 m/s (134 vs 105 steps per easy episode on tuning seeds
1000-1005); 15 drives at ~0.45 m/s with the same success on the tuning seeds (easy, medium,
hard 20/20 each on 1000-1019). The rolling cost-to-go and the footprint margin are shared
with DWA.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from nav_policy.errors import ConfigError
from nav_policy.planners.base import (
    GoalField,
    Limits,
    PlannerBase,
    Scene,
    goal_field,
    lookahead_point,
    polyline_distance,
)
from nav_policy.sim.robot import RobotSpec, load_robot_spec


@dataclass(frozen=True)
class MPPIConfig:
    """Parameters of MPPIPlanner; defaults mirror config/planners.yaml `mppi:`."""

    batch_size: int = 1000
    time_steps: int = 56
    model_dt: float = 0.05
    temperature: float = 0.3
    gamma: float = 0.015
    vx_std: float = 0.2
    wz_std: float = 0.4
    iteration_count: int = 1
    control_period: float = 0.1
    v_min: float = 0.0
    goal_tolerance: float = 0.25
    clearance_horizon: float = 0.6
    footprint_padding: float = 0.02
    collision_stride: int = 2
    collision_cost: float = 10000.0
    collision_margin: float = 0.1
    repulsion_radius: float = 0.35
    forward_point_distance: float = 0.325
    goal_angle_threshold: float = 0.5
    path_lookahead: float = 3.0
    path_follow_offset: float = 1.5
    goal_metric: str = "grid"
    grid_resolution: float = 0.1
    grid_half_size: float = 4.0
    grid_inflation: float = 0.05
    w_critical: float = 20.0
    w_repulsion: float = 1.5
    w_goal: float = 15.0
    w_goal_angle: float = 3.0
    w_path_align: float = 14.0
    w_path_follow: float = 5.0
    w_prefer_forward: float = 5.0
    w_twirling: float = 0.0

    def __post_init__(self) -> None:
        if min(self.batch_size, self.time_steps, self.iteration_count, self.collision_stride) < 1:
            raise ConfigError("mppi: batch_size, time_steps, iteration_count and collision_stride "
                              "must be >= 1")
        for name in ("model_dt", "temperature", "vx_std", "wz_std", "control_period"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"mppi: {name} must be positive, got {getattr(self, name)}")
        if self.goal_metric not in ("grid", "euclidean"):
            raise ConfigError(f"mppi: goal_metric must be grid or euclidean, "
                              f"got {self.goal_metric!r}")
        for f in fields(self):
            if f.name.startswith("w_") and getattr(self, f.name) < 0:
                raise ConfigError(f"mppi: critic weight {f.name} must be >= 0")


def constrain(controls: np.ndarray, v0: float, w0: float, limits: Limits,
              dt: float) -> np.ndarray:
    """Controls (K, T, 2) clipped to the velocity limits and, step by step from (v0, w0), to
    what the acceleration limits allow in `dt`."""
    out = np.empty_like(controls)
    lo = np.array([limits.v_min, -limits.w_max])
    hi = np.array([limits.v_max, limits.w_max])
    step = np.array([limits.acc_v, limits.acc_w]) * dt
    prev = np.broadcast_to(np.array([v0, w0]), controls[:, 0].shape)
    for t in range(controls.shape[1]):
        prev = np.clip(np.clip(controls[:, t], lo, hi), prev - step, prev + step)
        out[:, t] = prev
    return out


def rollout(controls: np.ndarray, dt: float) -> np.ndarray:
    """Diff-drive poses (K, T, 3) after each step of `controls` (K, T, 2), from the origin.

    Heading at mid-step for the position update (second-order accurate)."""
    v, w = controls[..., 0], controls[..., 1]
    yaw = np.cumsum(w * dt, axis=1)
    mid = yaw - 0.5 * w * dt
    x = np.cumsum(v * np.cos(mid) * dt, axis=1)
    y = np.cumsum(v * np.sin(mid) * dt, axis=1)
    return np.stack([x, y, yaw], axis=-1)


class MPPIPlanner(PlannerBase):
    """Model Predictive Path Integral control with Nav2-style critics (see module docstring)."""

    name = "mppi"

    def __init__(self, robot: RobotSpec | None = None, config: MPPIConfig | None = None,
                 seed: int = 0) -> None:
        self.cfg = config or MPPIConfig()
        robot = robot or load_robot_spec()
        limits = Limits.from_robot(robot, v_min=self.cfg.v_min)
        # the obstacle critic reads clearances up to the repulsion radius: never cut it short
        needed = limits.radius + self.cfg.footprint_padding + max(self.cfg.repulsion_radius,
                                                                  self.cfg.collision_margin)
        super().__init__(limits, goal_tolerance=self.cfg.goal_tolerance,
                         clearance_horizon=max(self.cfg.clearance_horizon, needed + 0.01))
        self.path_window_length = self.cfg.path_lookahead
        self.seed = int(seed)
        self.std = np.array([self.cfg.vx_std, self.cfg.wz_std])
        self.shift = max(1, round(self.cfg.control_period / self.cfg.model_dt))
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.rng = np.random.default_rng(self.seed)
        self.controls = np.zeros((self.cfg.time_steps, 2))

    def _on_stop(self) -> None:
        self.controls = np.zeros((self.cfg.time_steps, 2))

    # ---- critics -----------------------------------------------------------------------------
    def _obstacle(self, scene: Scene, poses: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        xy = poses[:, cfg.collision_stride - 1::cfg.collision_stride, :2]
        d = scene.clearance(xy) - (self.limits.radius + cfg.footprint_padding)
        critical = np.maximum(cfg.collision_margin - d, 0.0).mean(axis=1)
        repulsion = np.maximum(cfg.repulsion_radius - d, 0.0).mean(axis=1)
        cost = cfg.w_critical * critical + cfg.w_repulsion * repulsion
        return np.where((d < 0.0).any(axis=1), cfg.collision_cost, cost)

    def _field(self, scene: Scene) -> GoalField | None:
        if self.cfg.goal_metric == "euclidean":
            return None
        local_goal = scene.path[-1] if scene.path is not None else scene.goal
        return goal_field(scene.clearance, local_goal,
                          inflation=self.limits.radius + self.cfg.grid_inflation,
                          half_size=self.cfg.grid_half_size, resolution=self.cfg.grid_resolution,
                          goal_radius=self.goal_tolerance)

    def _cost_to_go(self, scene: Scene, field: GoalField | None, xy: np.ndarray) -> np.ndarray:
        if field is not None:
            return field(xy)
        goal = scene.path[-1] if scene.path is not None else scene.goal
        return np.hypot(xy[..., 0] - goal[0], xy[..., 1] - goal[1])

    def _critics(self, scene: Scene, poses: np.ndarray,
                 controls: np.ndarray) -> dict[str, np.ndarray]:
        cfg = self.cfg
        field = self._field(scene)
        xy = poses[..., :2]
        g = self._cost_to_go(scene, field, xy)
        far = float(np.hypot(*scene.goal)) > cfg.goal_angle_threshold
        out = {
            "obstacle": self._obstacle(scene, poses),
            "goal": cfg.w_goal * g.mean(axis=1),
            "prefer_forward": cfg.w_prefer_forward * np.maximum(-controls[..., 0], 0).mean(axis=1),
            "twirling": cfg.w_twirling * np.abs(controls[..., 1]).mean(axis=1),
        }
        if far and cfg.w_goal_angle > 0:
            f = cfg.forward_point_distance
            ahead = xy + f * np.stack([np.cos(poses[..., 2]), np.sin(poses[..., 2])], axis=-1)
            align = (self._cost_to_go(scene, field, ahead) - g) / f
            out["goal_angle"] = cfg.w_goal_angle * (0.5 * (1.0 + np.clip(align, -1, 1))).mean(1)
        if scene.path is not None:
            if far:
                out["path_align"] = cfg.w_path_align * polyline_distance(xy, scene.path).mean(1)
            target = lookahead_point(scene.path, np.zeros(2), cfg.path_follow_offset)
            out["path_follow"] = cfg.w_path_follow * np.hypot(*(xy[:, -1] - target).T)
        return out

    # ---- optimisation ------------------------------------------------------------------------
    def _iterate(self, scene: Scene) -> dict[str, float]:
        cfg = self.cfg
        noise = self.rng.standard_normal((cfg.batch_size, cfg.time_steps, 2)) * self.std
        samples = constrain(self.controls[None] + noise, *scene.velocity, self.limits,
                            cfg.model_dt)
        poses = rollout(samples, cfg.model_dt)
        critics = self._critics(scene, poses, samples)
        costs = np.sum(list(critics.values()), axis=0)
        costs = costs + cfg.gamma * ((self.controls / self.std ** 2)[None]
                                     * (samples - self.controls[None])).sum(axis=(1, 2))
        best = int(np.argmin(costs))
        weights = np.exp(-(costs - costs[best]) / cfg.temperature)
        weights /= weights.sum()
        self.controls = np.tensordot(weights, samples, axes=1)
        return {"cost": float(costs[best]), "n_samples": cfg.batch_size,
                "collision_free": int((critics["obstacle"] < cfg.collision_cost).sum()),
                "effective_samples": float(1.0 / np.sum(weights ** 2)),
                **{k: float(c[best]) for k, c in critics.items()}}

    def _plan(self, scene: Scene) -> tuple[float, float]:
        self.controls = np.concatenate([self.controls[self.shift:],
                                        np.repeat(self.controls[-1:], self.shift, axis=0)])
        info: dict[str, float] = {}
        for _ in range(self.cfg.iteration_count):
            info = self._iterate(scene)
        self.last_info = dict(info)
        v, w = self.controls[0]
        return float(v), float(w)
