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
    ObservationEncoder,
    ObsSpec,
    SensorFrame,
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

V2_RANGE_MAX = 3.5  # m: codec v2 range the env encodes by default (the v1 models' range)
V2_RANGE_MIN = 0.05  # m: codec v2 clip floor (below every profile's footprint)


def v1_lidar_fits(robot: RobotSpec, sectors: int) -> bool:
    """True when the robot's lidar is the kind codec v1 was made for: 360 degrees at the
    robot centre, a beam count that is a multiple of the sectors."""
    lid = robot.lidar
    return (math.isclose(lid.fov_deg, 360.0) and lid.mount == (0.0, 0.0, 0.0)
            and lid.beams % sectors == 0)


def make_obs_spec(robot: RobotSpec, sectors: int = 60, codec: str | None = None,
                  history: int = 0, min_fov_deg: float | None = None,
                  obs_range_max: float = V2_RANGE_MAX) -> ObsSpec:
    """The observation spec an env on `robot` encodes: codec "1" (the default where the
    lidar fits it and no v2 option is asked for) or "2"."""
    lid = robot.lidar
    if isinstance(sectors, bool) or not isinstance(sectors, (int, float, np.integer)) \
            or not float(sectors).is_integer() or sectors < 1:
        raise ConfigError(f"sectors must be a positive integer, got {sectors!r}")
    sectors = int(sectors)
    if codec is None:
        v2_asked = history or min_fov_deg is not None
        codec = "1" if v1_lidar_fits(robot, sectors) and not v2_asked else "2"
    if codec == "1":
        if history or min_fov_deg is not None:
            raise ConfigError("history and min_fov_deg need codec '2'")
        if v1_lidar_fits(robot, sectors):  # the lidar's own limits, as the shipped models
            return ObsSpec(beams=lid.beams, sectors=sectors, range_min=lid.range_min,
                           range_max=lid.range_max, v_max=robot.v_max, w_max=robot.w_max)
        # a foreign lidar: the v1 models' own spec, the scan resampled by angle into it
        base = ObsSpec()
        return ObsSpec(beams=base.beams if base.beams % sectors == 0 else sectors,
                       sectors=sectors, range_min=base.range_min,
                       range_max=min(base.range_max, lid.range_max), v_max=robot.v_max,
                       w_max=robot.w_max)
    if codec != "2":
        raise ConfigError(f"codec {codec!r} is not one of '1', '2'")
    return ObsSpec(version="2", beams=lid.beams, sectors=sectors,
                   range_min=min(V2_RANGE_MIN, lid.range_min),
                   range_max=min(obs_range_max, lid.range_max), v_max=robot.v_max,
                   w_max=robot.w_max, history=int(history),
                   min_fov_deg=lid.fov_deg if min_fov_deg is None else float(min_fov_deg),
                   footprint=robot.footprint)


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
        lidar_noise: float | None = None,
        lidar_dropout: float | None = None,
        actuation_noise: float = 0.0,
        odom_drift: float = 0.0,
        randomize: bool = False,
        robot: RobotSpec | str | Path | None = None,
        codec: str | None = None,
        history: int = 0,
        min_fov_deg: float | None = None,
        obs_range_max: float = V2_RANGE_MAX,
        render_mode: str | None = None,
        render_size: int = 400,
        world_pool: int = 0,
        world_pool_dir: str | Path | None = None,
    ) -> None:
        self.robot = robot if isinstance(robot, RobotSpec) else load_robot_spec(robot)
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
        lid = self.robot.lidar
        self.noise_max = {"lidar_noise": lid.noise_std if lidar_noise is None else lidar_noise,
                          "lidar_dropout": lid.dropout if lidar_dropout is None else lidar_dropout,
                          "actuation_noise": actuation_noise, "odom_drift": odom_drift}
        self.randomize = randomize
        self.obs_spec = make_obs_spec(self.robot, sectors, codec, history, min_fov_deg,
                                      obs_range_max)
        self.encoder = ObservationEncoder(self.obs_spec)
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
        self.encoder.reset()
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
                           stamp=odom.stamp, mount=lid.mount)

    def _observation(self) -> np.ndarray:
        """The codec vector of this step (stateful with a v2 history: once per env step)."""
        return self.encoder.encode(self.sensors(), self.prev_action)

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
        """Distance (m) from the robot's footprint to the closest lidar return (the closest
        return minus the radius for a disc robot with the lidar at its centre)."""
        finite = self._ranges[np.isfinite(self._ranges)]
        lid = self.sim.lidar
        fp = self.robot.footprint
        if fp is None or (fp.shape == "circle" and lid.mount == (0.0, 0.0, 0.0)):
            closest = float(finite.min()) if finite.size else lid.range_max
            return closest - self.robot.radius
        if not finite.size:
            return lid.range_max - fp.circumradius
        a = self.sim.beam_angles[np.isfinite(self._ranges)] + lid.mount_yaw
        pts = np.stack([lid.mount_x + finite * np.cos(a), lid.mount_y + finite * np.sin(a)], 1)
        return float(fp.distance(pts).min())

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
