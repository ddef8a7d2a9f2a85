"""BaseNavEnv: the simulator plumbing shared by navigation envs (MuJoCo or PyBullet backend).

Owns the simulator, world generation/loading, sensors, the SensorFrame and rendering. Task
envs (LocalNavEnv) define only the reward and the episode end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from nav_policy.codecs import (
    ActionSpec,
    ObsSpec,
    SensorFrame,
    encode_observation,
    initial_prev_action,
)
from nav_policy.errors import ConfigError, WorldError
from nav_policy.sim.generate import (
    KNOWN_TIERS,
    WorldMaps,
    analyse_world,
    generate_world,
)
from nav_policy.sim.render import PATH, REF_PATH, TopDown
from nav_policy.sim.robot import RobotSpec, load_robot_spec
from nav_policy.sim.simulator import make_simulator
from nav_policy.sim.world import World, load_world


class BaseNavEnv(gym.Env[np.ndarray, np.ndarray]):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        tier: str | Sequence[str] = "medium",
        tier_weights: Sequence[float] | None = None,
        world: World | str | Path | None = None,
        motion_mode: str = "kinematic",
        backend: str | None = None,
        control_hz: float = 10.0,
        physics_hz: float = 240.0,
        sectors: int = 60,
        goal_tolerance: float = 0.25,
        lidar_noise: float = 0.0,
        lidar_dropout: float = 0.0,
        actuation_noise: float = 0.0,
        odom_drift: float = 0.0,
        randomize: bool = False,
        robot: RobotSpec | None = None,
        render_mode: str | None = None,
        render_size: int = 400,
        world_pool: int = 0,
        world_pool_dir: str | Path | None = None,
    ) -> None:
        self.robot = robot or load_robot_spec()
        self.pool = None
        if world_pool:
            from nav_policy.sim.pool import WorldPool

            self.pool = WorldPool(world_pool, self.robot.radius, world_pool_dir)
        self.set_tiers(tier, tier_weights)
        self.fixed_world = load_world(world) if isinstance(world, (str, Path)) else world
        self._fixed_maps: WorldMaps | None = None
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode {render_mode!r} not supported (rgb_array only)")
        self.render_mode = render_mode
        self.render_size = render_size
        self.goal_tolerance = goal_tolerance
        self.noise_max = {"lidar_noise": lidar_noise, "lidar_dropout": lidar_dropout,
                          "actuation_noise": actuation_noise, "odom_drift": odom_drift}
        self.randomize = randomize
        lid = self.robot.lidar
        self.obs_spec = ObsSpec(beams=lid.beams, sectors=sectors, range_min=lid.range_min,
                                range_max=lid.range_max, v_max=self.robot.v_max,
                                w_max=self.robot.w_max)
        self.action_spec = ActionSpec(v_min=0.0, v_max=self.robot.v_max, w_max=self.robot.w_max)
        low, high = self.obs_spec.bounds()
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.sim = make_simulator(self.robot, backend, motion_mode=motion_mode,
                                  control_hz=control_hz, physics_hz=physics_hz)
        self.backend = self.sim.backend
        self.world: World | None = None
        self.maps: WorldMaps | None = None
        self.prev_action = initial_prev_action()
        self.trajectory: list[tuple[float, float, float, float]] = []
        self._ranges = np.zeros(lid.beams, dtype=np.float32)
        self._background: np.ndarray | None = None

    # ---- world ----------------------------------------------------------------------------
    def set_tiers(self, tier: str | Sequence[str],
                  tier_weights: Sequence[float] | None = None) -> None:
        """The tiers new episodes draw from, with their weights (the training curriculum calls
        this through VecEnv.env_method, which reaches this env through its wrappers; a plain
        VecEnv.set_attr would set an attribute on the outermost wrapper and change nothing)."""
        tiers = [tier] if isinstance(tier, str) else list(tier)
        for t in tiers:
            if t not in KNOWN_TIERS:
                raise WorldError(f"unknown tier {t!r}; expected one of {', '.join(KNOWN_TIERS)}")
        if tier_weights is not None and len(tier_weights) != len(tiers):
            raise ConfigError("tier_weights must have one weight per tier")
        w = np.asarray(tier_weights if tier_weights is not None else np.ones(len(tiers)), float)
        if np.any(w < 0) or w.sum() <= 0:
            raise ConfigError("tier_weights must be non-negative with a positive sum")
        self.tiers, self.tier_p = tiers, w / w.sum()

    def _choose_world(self, options: dict[str, Any]) -> tuple[World, WorldMaps]:
        r = self.robot.radius
        if "world" in options:
            world = options["world"]
            world = load_world(world) if isinstance(world, (str, Path)) else world
            return world, analyse_world(world, r)
        if self.fixed_world is not None and "tier" not in options:
            if self._fixed_maps is None:  # same world every episode: analyse it once
                self._fixed_maps = analyse_world(self.fixed_world, r)
            return self.fixed_world, self._fixed_maps
        tier = options.get("tier") or self.tiers[int(self.np_random.choice(len(self.tiers),
                                                                           p=self.tier_p))]
        seed = options.get("world_seed")
        if self.pool is not None:  # pooled worlds: generated once, then reused
            if seed is None:
                return self.pool.draw(tier, self.np_random)
            return self.pool.get(tier, int(seed))
        if seed is None:
            seed = int(self.np_random.integers(2**31 - 1))
        return generate_world(tier, int(seed), r)

    def _configure_noise(self) -> None:
        lvl = dict(self.noise_max)
        if self.randomize:
            lvl = {k: float(self.np_random.uniform(0, v)) for k, v in lvl.items()}
        sim = self.sim
        sim.rng = self.np_random
        sim.lidar = type(sim.lidar)(**{**sim.lidar.__dict__, "noise_std": lvl["lidar_noise"],
                                       "dropout": lvl["lidar_dropout"]})
        sim.actuation_noise = lvl["actuation_noise"]
        sim.odom_drift = lvl["odom_drift"]

    def _reset_sim(self, seed: int | None, options: dict[str, Any] | None) -> None:
        super().reset(seed=seed)
        options = dict(options or {})
        self.world, self.maps = self._choose_world(options)
        self._configure_noise()
        self.sim.load_world(self.world)
        self.sim.reset(options.get("start"))
        self.prev_action = initial_prev_action()
        self._ranges = self.sim.scan()
        self._background = None
        self.trajectory = [self._traj_point()]

    def _traj_point(self) -> tuple[float, float, float, float]:
        x, y, yaw = self.sim.pose
        return float(x), float(y), float(yaw), float(self.sim.v)

    # ---- sensing --------------------------------------------------------------------------
    def sensors(self, path: np.ndarray | None = None) -> SensorFrame:
        """What a local planner sees now (odometry frame = world frame at the start)."""
        assert self.world is not None
        lid = self.sim.lidar
        odom = self.sim.odometry()
        return SensorFrame(ranges=self._ranges, angle_min=lid.angle_min,
                           angle_increment=lid.angle_increment, range_min=lid.range_min,
                           range_max=lid.range_max, pose=(odom.x, odom.y, odom.yaw),
                           velocity=(odom.v, odom.w), goal=self.world.goal, path=path,
                           stamp=odom.stamp)

    def _observation(self) -> np.ndarray:
        return encode_observation(self.sensors(), self.prev_action, self.obs_spec)

    def distance_to_goal(self) -> float:
        assert self.world is not None
        x, y, _ = self.sim.pose
        return math.hypot(self.world.goal[0] - x, self.world.goal[1] - y)

    def geodesic_to_goal(self) -> float:
        """Shortest free-space path length from the robot to the goal (privileged, training only)."""
        assert self.maps is not None
        x, y, _ = self.sim.pose
        grid = self.maps.grid
        i, j = grid.cell(x, y)
        d = self.maps.field[i, j]
        if np.isfinite(d):
            return float(d)
        win = self.maps.field[max(i - 3, 0):i + 4, max(j - 3, 0):j + 4]
        finite = win[np.isfinite(win)]
        if finite.size:
            return float(finite.min() + 3 * grid.resolution)
        return self.distance_to_goal()

    def min_clearance(self) -> float:
        """Closest lidar return minus the robot radius (metres)."""
        finite = self._ranges[np.isfinite(self._ranges)]
        lid = self.sim.lidar
        closest = float(finite.min()) if finite.size else lid.range_max
        return closest - self.robot.radius

    # ---- rendering ------------------------------------------------------------------------
    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self.world is None:
            return None
        if self._background is None:
            view = TopDown(self.world, self.render_size)
            if self.maps is not None:
                view.polyline(self.maps.path, REF_PATH, 1)
            self._background = view.img.copy()
        view = TopDown.__new__(TopDown)
        view.world, view.scale = self.world, self.render_size / max(self.world.size)
        view.h, view.w = self._background.shape[:2]
        view.img = self._background.copy()
        view.moving(self.sim.moving_positions()).goal(self.world.goal, self.goal_tolerance)
        view.polyline(np.array(self.trajectory)[:, :2], PATH, 2)
        view.lidar(self.sim.pose, self._ranges, self.sim.beam_angles)
        view.robot(self.sim.pose, self.robot.radius)
        return view.img

    def close(self) -> None:
        self.sim.close()
