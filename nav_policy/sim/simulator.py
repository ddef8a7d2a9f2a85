"""PyBullet simulator of one differential-drive robot in a World.

DIRECT mode only; every p.* call passes this simulator's client id, so several simulators
live in one process. Two motion modes report collisions the same way:

- "kinematic": unicycle integration of the commanded velocity (acceleration-limited), the
  robot teleported each control step and checked with performCollisionDetection. The robot
  body has mass, so PyBullet reports its contacts with the static (mass 0) obstacles.
- "physics": wheel velocity motors, stepSimulation at physics_hz (must be a multiple of
  control_hz), contacts read after the last substep.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pybullet as p

from nav_policy.errors import ConfigError
from nav_policy.sim.robot import LidarConfig, RobotSpec
from nav_policy.sim.world import Box, Cylinder, MovingObstacle, World

MOTION_MODES = ("kinematic", "physics")
BACKENDS = ("pybullet", "mujoco")


@dataclass(frozen=True)
class Odometry:
    x: float
    y: float
    yaw: float
    v: float
    w: float
    stamp: float


def wrap_angle(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


class Simulator:
    """One robot in one world. Build with load_world(), then reset() and step().

    This is the PyBullet backend; nav_policy.sim.mujoco_backend.MujocoSimulator is the MuJoCo
    one (kinematic mode). A backend overrides the scene hooks (_connect, load_world,
    _place_robot, _move_obstacles, _in_collision, _cast, close); the motion model, odometry,
    noise and limits below are shared, so both backends move the robot identically.
    """

    backend = "pybullet"

    def __init__(self, robot: RobotSpec, motion_mode: str = "kinematic", control_hz: float = 10.0,
                 physics_hz: float = 240.0, lidar: LidarConfig | None = None,
                 actuation_noise: float = 0.0, odom_drift: float = 0.0,
                 rng: np.random.Generator | None = None) -> None:
        if motion_mode not in MOTION_MODES:
            raise ConfigError(f"unknown motion_mode {motion_mode!r}; expected one of {MOTION_MODES}")
        if control_hz <= 0:
            raise ConfigError(f"control_hz must be positive, got {control_hz}")
        self.substeps = 1
        if motion_mode == "physics":
            ratio = physics_hz / control_hz
            if abs(ratio - round(ratio)) > 1e-9 or ratio < 1:
                raise ConfigError(f"physics_hz {physics_hz} must be a multiple of control_hz {control_hz}")
            self.substeps = int(round(ratio))
        self.robot = robot
        self.lidar = lidar or robot.lidar
        self.motion_mode = motion_mode
        self.dt = 1.0 / control_hz
        self.physics_dt = self.dt / self.substeps
        self.actuation_noise = actuation_noise
        self.odom_drift = odom_drift
        self.rng = rng if rng is not None else np.random.default_rng()
        self._connect()
        self.world: World | None = None
        self._robot_id = -1
        self._obstacle_ids: set[int] = set()
        self._moving_ids: list[int] = []
        self.crowd: Any = None  # a LiveCrowd (nav_policy.sim.crowd) when the world has one
        self._wheels: list[int] = []
        self._base_z = 0.0
        angles = self.lidar.angle_min + self.lidar.angle_increment * np.arange(self.lidar.beams)
        self.beam_angles = angles.astype(np.float64)
        self.reset_state()

    # ---- lifecycle ------------------------------------------------------------------------
    def _connect(self) -> None:
        self.client = p.connect(p.DIRECT)

    def close(self) -> None:
        if self.client >= 0:
            try:
                p.disconnect(physicsClientId=self.client)
            except p.error:  # already gone
                pass
            self.client = -1

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def reset_state(self) -> None:
        self.t = 0.0
        self.pose = np.zeros(3)
        self.v = 0.0
        self.w = 0.0
        self.prev_v = 0.0
        self.odom_pose = np.zeros(3)
        self.collided = False

    def load_world(self, world: World) -> None:
        """(Re)build the PyBullet scene for `world`."""
        cid = self.client
        p.resetSimulation(physicsClientId=cid)
        p.setGravity(0, 0, -9.81, physicsClientId=cid)
        p.setTimeStep(self.physics_dt, physicsClientId=cid)
        plane = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=cid)
        self._plane_id = p.createMultiBody(0, plane, physicsClientId=cid)
        self._obstacle_ids = set()
        for ob in world.all_static():
            self._obstacle_ids.add(self._make_static(ob))
        self._moving_ids = []
        for m in world.moving:
            shape = p.createCollisionShape(p.GEOM_CYLINDER, radius=m.radius, height=m.height,
                                           physicsClientId=cid)
            x, y = m.position(0.0)
            bid = p.createMultiBody(0, shape, basePosition=[x, y, m.height / 2],
                                    physicsClientId=cid)
            self._moving_ids.append(bid)
            self._obstacle_ids.add(bid)
        self._robot_id = p.loadURDF(str(self.robot.urdf), [0, 0, 0.0],
                                    flags=p.URDF_USE_INERTIA_FROM_FILE, physicsClientId=cid)
        names = {p.getJointInfo(self._robot_id, j, physicsClientId=cid)[1].decode(): j
                 for j in range(p.getNumJoints(self._robot_id, physicsClientId=cid))}
        self._wheels = [names["left_wheel_joint"], names["right_wheel_joint"]]
        # PyBullet places and reports the base by its centre of mass; this keeps base_link on
        # the ground (inertial origin z above it) instead of sunk into the plane.
        self._base_z = float(p.getDynamicsInfo(self._robot_id, -1, physicsClientId=cid)[3][2])
        for link in (names.get("front_caster_joint"), names.get("rear_caster_joint")):
            if link is not None:
                p.changeDynamics(self._robot_id, link, lateralFriction=0.0, rollingFriction=0.0,
                                 spinningFriction=0.0, physicsClientId=cid)
        for j in self._wheels:
            p.changeDynamics(self._robot_id, j, lateralFriction=1.2, physicsClientId=cid)
        self.world = world

    def _make_static(self, ob: Box | Cylinder) -> int:
        cid = self.client
        if isinstance(ob, Box):
            shape = p.createCollisionShape(p.GEOM_BOX, halfExtents=[ob.size[0] / 2, ob.size[1] / 2,
                                                                      ob.height / 2],
                                           physicsClientId=cid)
            orn = p.getQuaternionFromEuler([0, 0, ob.yaw])
        else:
            shape = p.createCollisionShape(p.GEOM_CYLINDER, radius=ob.radius, height=ob.height,
                                           physicsClientId=cid)
            orn = [0, 0, 0, 1]
        return p.createMultiBody(0, shape, basePosition=[ob.center[0], ob.center[1], ob.height / 2],
                                 baseOrientation=orn, physicsClientId=cid)

    def reset(self, pose: tuple[float, float, float] | None = None) -> None:
        """Put the robot at `pose` (default: the world's start), at rest, time 0."""
        if self.world is None:
            raise ConfigError("Simulator.reset() before load_world()")
        self.reset_state()
        self.pose = np.array(pose if pose is not None else self.world.start, dtype=float)
        self.odom_pose = self.pose.copy()
        crowd = self.world.meta.get("crowd")
        self.crowd = crowd.live(self.world) if crowd is not None else None
        self._move_obstacles()
        self._place_robot()
        if self.motion_mode == "physics":
            for j in self._wheels:
                p.resetJointState(self._robot_id, j, 0.0, 0.0, physicsClientId=self.client)
        self.collided = self._in_collision()

    # ---- stepping ---------------------------------------------------------------------------
    def _place_robot(self) -> None:
        x, y, yaw = self.pose
        p.resetBasePositionAndOrientation(self._robot_id, [x, y, self._base_z],
                                          p.getQuaternionFromEuler([0, 0, yaw]),
                                          physicsClientId=self.client)
        if self.motion_mode == "physics":
            c, s = math.cos(yaw), math.sin(yaw)
            p.resetBaseVelocity(self._robot_id, [self.v * c, self.v * s, 0], [0, 0, self.w],
                                physicsClientId=self.client)

    def _move_obstacles(self) -> None:
        assert self.world is not None
        for (x, y), m, bid in zip(self.moving_positions(), self.world.moving, self._moving_ids):
            p.resetBasePositionAndOrientation(bid, [x, y, m.height / 2], [0, 0, 0, 1],
                                              physicsClientId=self.client)

    def _limit(self, v_cmd: float, w_cmd: float) -> tuple[float, float]:
        r = self.robot
        v_cmd = _clip(float(v_cmd), r.v_max)
        w_cmd = _clip(float(w_cmd), r.w_max)
        if self.actuation_noise > 0:
            v_cmd *= 1.0 + self.actuation_noise * float(self.rng.standard_normal())
            w_cmd *= 1.0 + self.actuation_noise * float(self.rng.standard_normal())
        v = self.v + _clip(v_cmd - self.v, r.acc_v * self.dt)
        w = self.w + _clip(w_cmd - self.w, r.acc_w * self.dt)
        return v, w

    def step(self, v_cmd: float, w_cmd: float) -> bool:
        """Advance one control period with commanded (v, w); returns True on collision."""
        if not (math.isfinite(v_cmd) and math.isfinite(w_cmd)):
            v_cmd, w_cmd = 0.0, 0.0  # a non-finite command never moves the robot
        self.prev_v = self.v
        v, w = self._limit(v_cmd, w_cmd)
        if self.motion_mode == "kinematic":
            self.pose = _integrate(self.pose, v, w, self.dt)
            self.v, self.w = v, w
            self.t += self.dt
            self._move_obstacles()
            self._place_robot()
        else:
            self._step_physics(v, w)
        self._update_odom()
        self.collided = self._in_collision()
        return self.collided

    def _step_physics(self, v: float, w: float) -> None:
        r = self.robot
        half = r.wheel_separation / 2
        targets = [(v - w * half) / r.wheel_radius, (v + w * half) / r.wheel_radius]
        p.setJointMotorControlArray(self._robot_id, self._wheels, p.VELOCITY_CONTROL,
                                    targetVelocities=targets, forces=[5.0, 5.0],
                                    physicsClientId=self.client)
        for _ in range(self.substeps):
            p.stepSimulation(physicsClientId=self.client)
            self.t += self.physics_dt
        pos, orn = p.getBasePositionAndOrientation(self._robot_id, physicsClientId=self.client)
        lin, ang = p.getBaseVelocity(self._robot_id, physicsClientId=self.client)
        yaw = p.getEulerFromQuaternion(orn)[2]
        self.pose = np.array([pos[0], pos[1], yaw])
        self.v = lin[0] * math.cos(yaw) + lin[1] * math.sin(yaw)
        self.w = ang[2]
        self._move_obstacles()

    def _update_odom(self) -> None:
        if self.odom_drift <= 0:
            self.odom_pose = self.pose.copy()
            return
        n = self.rng.standard_normal(2)
        v = self.v * (1 + self.odom_drift * n[0])
        w = self.w * (1 + self.odom_drift * n[1])
        self.odom_pose = _integrate(self.odom_pose, v, w, self.dt)

    def _in_collision(self) -> bool:
        # Both modes: contacts for the current poses. In physics mode the contacts left by the
        # last substep predate the moving obstacles' update for this control step.
        cid = self.client
        p.performCollisionDetection(physicsClientId=cid)
        for c in p.getContactPoints(bodyA=self._robot_id, physicsClientId=cid):
            if c[2] in self._obstacle_ids and c[8] <= 1e-3:
                return True
        return False

    # ---- sensors ----------------------------------------------------------------------------
    def scan(self) -> np.ndarray:
        """LaserScan-style ranges (float32, metres from the lidar, which sits at the lidar's
        mount pose on the base: the robot centre for the diffbot; +inf = no return)."""
        lid = self.lidar
        ranges = self._cast()
        if lid.noise_std > 0:
            ranges = ranges + lid.noise_std * self.rng.standard_normal(len(ranges))
        if lid.dropout > 0:
            ranges[self.rng.random(len(ranges)) < lid.dropout] = np.inf
        ranges[ranges > lid.range_max] = np.inf
        return ranges.astype(np.float32)

    def _cast(self) -> np.ndarray:
        """Noise-free ranges (float64, +inf = no return within range_max) at the current pose."""
        lid = self.lidar
        x, y, yaw = self.pose
        mx, my, myaw = lid.mount
        if mx or my or myaw:  # the lidar's pose on the base (LaserScan frame = base_scan)
            c, s = math.cos(yaw), math.sin(yaw)
            x, y, yaw = x + c * mx - s * my, y + s * mx + c * my, yaw + myaw
        a = yaw + self.beam_angles
        z = lid.height
        to = np.empty((a.size, 3))
        to[:, 0] = x + lid.range_max * np.cos(a)
        to[:, 1] = y + lid.range_max * np.sin(a)
        to[:, 2] = z
        frm = [[float(x), float(y), z]] * a.size  # every beam starts at the scanner
        hits = p.rayTestBatch(frm, to.tolist(), numThreads=1, physicsClientId=self.client)
        frac = np.fromiter((h[2] if h[0] >= 0 else 2.0 for h in hits), dtype=np.float64,
                           count=len(hits))
        ranges = frac * lid.range_max
        ranges[frac > 1.0] = np.inf
        return ranges

    def odometry(self) -> Odometry:
        x, y, yaw = self.odom_pose
        return Odometry(float(x), float(y), float(wrap_angle(yaw)), float(self.v), float(self.w),
                        self.t)

    def imu(self) -> tuple[float, float]:
        """(yaw rate rad/s, forward acceleration m/s^2)."""
        return float(self.w), float((self.v - self.prev_v) / self.dt)

    def moving_positions(self) -> list[tuple[float, float]]:
        """Moving obstacles now: their position(t), or the live crowd's pedestrians, stepped
        to this time (they see the robot's pose and velocity)."""
        assert self.world is not None
        if self.crowd is not None:
            yaw = self.pose[2]
            vel = (self.v * math.cos(yaw), self.v * math.sin(yaw))
            pos = self.crowd.advance_to(self.t, self.pose[:2], vel)
            return [(float(x), float(y)) for x, y in pos]
        return [m.position(self.t) for m in self.world.moving]

    def executed_world(self) -> World:
        """The world with the moving obstacles where they actually went (a live crowd's walk
        as timed trajectories); the world itself when nothing moved live."""
        assert self.world is not None
        if self.crowd is None:
            return self.world
        walked = tuple(MovingObstacle.timed(m.radius, keys, height=m.height)
                       for m, keys in zip(self.world.moving, self.crowd.executed()))
        return dataclasses.replace(self.world, moving=walked)

    def depth_image(self) -> np.ndarray:
        """Depth (metres, float32, HxW) from the forward camera; +inf beyond `far`."""
        cam = self.robot.camera
        x, y, yaw = self.pose
        ox, oy, oz = self.robot.camera_offset
        c, s = math.cos(yaw), math.sin(yaw)
        eye = [x + c * ox - s * oy, y + s * ox + c * oy, oz]
        target = [eye[0] + c, eye[1] + s, oz]
        view = p.computeViewMatrix(eye, target, [0, 0, 1], physicsClientId=self.client)
        aspect = cam.width / cam.height
        vfov = math.degrees(2 * math.atan(math.tan(math.radians(cam.fov_deg) / 2) / aspect))
        proj = p.computeProjectionMatrixFOV(vfov, aspect, cam.near, cam.far,
                                            physicsClientId=self.client)
        _, _, _, depth, _ = p.getCameraImage(cam.width, cam.height, view, proj,
                                             renderer=p.ER_TINY_RENDERER,
                                             physicsClientId=self.client)
        d = np.asarray(depth, dtype=np.float64).reshape(cam.height, cam.width)
        z = cam.far * cam.near / (cam.far - (cam.far - cam.near) * d)
        z[d >= 1.0 - 1e-7] = np.inf
        return z.astype(np.float32)


def default_backend(motion_mode: str) -> str:
    """MuJoCo for kinematic mode (fast), PyBullet for physics mode (MuJoCo has no physics here)."""
    return "mujoco" if motion_mode == "kinematic" else "pybullet"


def make_simulator(robot: RobotSpec, backend: str | None = None,
                   motion_mode: str = "kinematic", **kwargs: object) -> Simulator:
    """A Simulator on `backend` (None: default_backend(motion_mode)); kwargs as Simulator's."""
    if motion_mode not in MOTION_MODES:
        raise ConfigError(f"unknown motion_mode {motion_mode!r}; expected one of {MOTION_MODES}")
    backend = default_backend(motion_mode) if backend is None else backend
    if backend not in BACKENDS:
        raise ConfigError(f"unknown sim backend {backend!r}; expected one of {BACKENDS}")
    if backend == "pybullet":
        return Simulator(robot, motion_mode=motion_mode, **kwargs)  # type: ignore[arg-type]
    if motion_mode != "kinematic":
        raise ConfigError("the mujoco backend has kinematic mode only; use backend='pybullet' "
                          f"for motion_mode={motion_mode!r}")
    from nav_policy.sim.mujoco_backend import MujocoSimulator

    return MujocoSimulator(robot, motion_mode=motion_mode, **kwargs)  # type: ignore[arg-type]


def _clip(value: float, limit: float) -> float:
    """value clipped to [-limit, limit] (np.clip's result for finite floats, without its cost)."""
    return min(max(value, -limit), limit)


def _integrate(pose: np.ndarray, v: float, w: float, dt: float) -> np.ndarray:
    """Exact unicycle integration over dt (arc of constant v, w)."""
    x, y, th = pose
    if abs(w) < 1e-9:
        return np.array([x + v * dt * math.cos(th), y + v * dt * math.sin(th), th])
    th2 = th + w * dt
    r = v / w
    return np.array([x + r * (math.sin(th2) - math.sin(th)), y - r * (math.cos(th2) - math.cos(th)),
                     wrap_angle(th2)])
