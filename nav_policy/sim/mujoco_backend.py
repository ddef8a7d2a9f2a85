"""MuJoCo backend of the Simulator: kinematic mode, the same World, the same motion model.

The scene is built once with pools of geom slots (boxes, cylinders, moving cylinders) and
reused: a new world moves and resizes the slots it needs and parks the others (out of every
ray and collision group), so a reset costs microseconds, not a model compile. A world with
more obstacles than the pools hold grows them (one recompile).

- every obstacle (static or moving) is a slot geom of the world body, sized and placed
  through the model (geom_size, geom_pos, geom_quat, with geom_rbound and geom_aabb kept in
  step), so a new world needs no recompile (see _Scene);
- the robot is a free body carrying the URDF's collision geoms (base cylinder, wheels,
  casters), posed through qpos. A free body is not welded to the world, so MuJoCo generates
  its contacts with the (static) obstacles: the analogue of PyBullet's pitfall that it
  never reports contacts between two static bodies. Collisions are mj_collision contacts with
  distance <= 1 mm (the PyBullet backend's threshold);
- the lidar is one mj_multiRay call per scan from the scanner (robot centre, lidar height),
  restricted to the obstacle geom group and excluding the robot body;
- moving obstacles sit where Simulator.moving_positions() puts them, as in the PyBullet
  backend: MovingObstacle.position(t), or a crowd tier's pedestrians stepped live.

No depth camera (depth_image raises: use backend="pybullet") and no physics mode.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco
import numpy as np

from nav_policy.errors import ConfigError
from nav_policy.sim.simulator import Simulator
from nav_policy.sim.world import Box, Cylinder, World

CONTACT_DISTANCE = 1e-3  # a contact closer than this is a collision (as in the PyBullet backend)
OBSTACLE_GROUP, ROBOT_GROUP, PARKED_GROUP = 0, 1, 5
PARK_Z = -100.0  # parked slots sit far below the floor, out of every ray and contact
_RAY_GROUPS = np.array([1 if g == OBSTACLE_GROUP else 0 for g in range(6)], dtype=np.uint8)


def _rpy_matrix(rpy: tuple[float, float, float]) -> np.ndarray:
    r, p_, y = rpy
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p_), math.sin(p_), \
        math.cos(y), math.sin(y)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def _origin(el: ET.Element | None) -> tuple[np.ndarray, np.ndarray]:
    if el is None:
        return np.zeros(3), np.eye(3)
    xyz = np.array([float(v) for v in el.get("xyz", "0 0 0").split()])
    rpy = tuple(float(v) for v in el.get("rpy", "0 0 0").split())
    return xyz, _rpy_matrix(rpy)  # type: ignore[arg-type]


def robot_collision_geoms(urdf: Path) -> list[str]:
    """MJCF <geom> elements of the URDF's collision geometry, in the base_link frame (joints at
    their zero position), as PyBullet builds the robot from the same file."""
    try:
        root = ET.parse(urdf).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ConfigError(f"cannot read robot URDF {urdf}: {exc}") from exc
    parent: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}
    for j in root.iter("joint"):
        par, child = j.find("parent"), j.find("child")
        if par is not None and child is not None:
            parent[child.get("link", "")] = (par.get("link", ""), *_origin(j.find("origin")))

    def frame(link: str) -> tuple[np.ndarray, np.ndarray]:
        pos, rot = np.zeros(3), np.eye(3)
        while link in parent:
            link, jp, jr = parent[link]
            pos, rot = jp + jr @ pos, jr @ rot
        return pos, rot

    geoms: list[str] = []
    for link in root.iter("link"):
        lp, lr = frame(link.get("name", ""))
        for col in link.findall("collision"):
            cp, cr = _origin(col.find("origin"))
            pos, rot = lp + lr @ cp, lr @ cr
            quat = np.zeros(4)
            mujoco.mju_mat2Quat(quat, rot.ravel())
            g = col.find("geometry")
            shape = g[0] if g is not None and len(g) else None
            if shape is None:
                continue
            if shape.tag == "cylinder":
                size = f"{float(shape.get('radius'))} {float(shape.get('length')) / 2}"
            elif shape.tag == "sphere":
                size = f"{float(shape.get('radius'))}"
            elif shape.tag == "box":
                size = " ".join(str(float(v) / 2) for v in shape.get("size", "").split())
            else:
                raise ConfigError(f"robot URDF {urdf}: collision {shape.tag!r} not supported by "
                                  "the mujoco backend (cylinder, sphere, box)")
            geoms.append(f'<geom type="{shape.tag}" size="{size}" pos="{_f(pos)}" '
                         f'quat="{_f(quat)}" group="{ROBOT_GROUP}" contype="1" conaffinity="0" '
                         f'margin="{CONTACT_DISTANCE}"/>')
    if not geoms:
        raise ConfigError(f"robot URDF {urdf} has no collision geometry")
    return geoms


def _f(v: np.ndarray) -> str:
    return " ".join(repr(float(x)) for x in v)


def _yaw_quat(yaw: float) -> tuple[float, float, float, float]:
    return math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)


class _Scene:
    """A compiled model with `nbox` box, `ncyl` cylinder and `nmov` moving-cylinder slots.

    Slots are geoms of the world body, posed through the model's geom_pos / geom_quat (MuJoCo
    casts rays against world geoms several times faster than against mocap bodies, ~300 against
    ~1,000 us per 360-beam scan with 100 slots). Static-frame shortcuts (geom_sameframe) are
    turned off so mj_kinematics places every slot from its geom_pos, and the collision midphase
    (a BVH of the world body's geoms built at compile time) is disabled so moved slots are
    never culled by stale boxes: the broadphase then checks the robot's few geoms against each
    live slot.
    """

    def __init__(self, robot_geoms: list[str], nbox: int, ncyl: int, nmov: int) -> None:
        self.nbox, self.ncyl, self.nmov = nbox, ncyl, nmov
        slots = []
        for kind, n in (("box", nbox), ("cylinder", ncyl + nmov)):
            for k in range(n):
                slots.append(f'<geom type="{kind}" size="0.01 0.01 0.01" '
                             f'pos="{k + 1} 0 {PARK_Z}" quat="0.9 0 0 0.1" '
                             f'group="{PARKED_GROUP}" contype="0" conaffinity="0" margin="0"/>')
        xml = ('<mujoco model="nav_policy"><option timestep="0.1"/><worldbody>'
               + "".join(slots)
               + '<body name="robot"><freejoint/>' + "".join(robot_geoms) + "</body>"
               + "</worldbody></mujoco>")
        self.model = mujoco.MjModel.from_xml_string(xml)
        m = self.model
        m.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_MIDPHASE)
        nslots = nbox + ncyl + nmov
        m.geom_sameframe[:nslots] = 0
        # the broadphase filters bodies first, by the OR of their geoms' flags at compile time
        # (all slots parked then): the world body must accept the robot's contacts
        m.body_conaffinity[0] = 1
        self.data = mujoco.MjData(m)
        self.robot_body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "robot")
        self.moving0 = nbox + ncyl  # first moving slot (geom id = slot index)

    def set_slot(self, k: int, kind: str, half: tuple[float, float, float] | None,
                 pos: tuple[float, float, float] = (0.0, 0.0, PARK_Z),
                 yaw: float = 0.0) -> None:
        """Resize slot k (half extents; cylinders (r, r, h/2)), place and enable it, or park
        it (half None)."""
        m = self.model
        if half is None:
            m.geom_group[k], m.geom_conaffinity[k] = PARKED_GROUP, 0
            m.geom_pos[k] = (k + 1.0, 0.0, PARK_Z)
            return
        m.geom_group[k], m.geom_conaffinity[k] = OBSTACLE_GROUP, 1
        if kind == "box":
            m.geom_size[k] = half
            m.geom_rbound[k] = math.sqrt(half[0] ** 2 + half[1] ** 2 + half[2] ** 2)
        else:
            m.geom_size[k] = (half[0], half[2], 0.0)
            m.geom_rbound[k] = math.hypot(half[0], half[2])
        m.geom_aabb[k] = (0.0, 0.0, 0.0, *half)
        m.geom_pos[k] = pos
        m.geom_quat[k] = _yaw_quat(yaw)


class MujocoSimulator(Simulator):
    """The Simulator on MuJoCo (kinematic mode). Same interface and motion model."""

    backend = "mujoco"
    # initial pool sizes; the hard tier has up to 34 obstacles (+4 wall boxes), dynamic 5 movers
    POOL = (48, 40, 8)

    def _connect(self) -> None:
        if self.motion_mode != "kinematic":
            raise ConfigError("the mujoco backend has kinematic mode only; use "
                              f"backend='pybullet' for motion_mode={self.motion_mode!r}")
        self.client = -1
        self._robot_geoms = robot_collision_geoms(self.robot.urdf)
        self._scene = _Scene(self._robot_geoms, *self.POOL)
        self._beam_cs: tuple[np.ndarray, np.ndarray] | None = None  # set at the first cast
        self._pnt = np.zeros(3)
        self._moving_slots: list[int] = []

    def close(self) -> None:
        self.client = -1

    def load_world(self, world: World) -> None:
        """Place the world's obstacles in the pooled slots (grows the pools if too small)."""
        if world is self.world:  # same world again (a fixed world, a pooled one): nothing to do
            return
        boxes = [ob for ob in world.all_static() if isinstance(ob, Box)]
        cyls = [ob for ob in world.all_static() if isinstance(ob, Cylinder)]
        sc = self._scene
        if len(boxes) > sc.nbox or len(cyls) > sc.ncyl or len(world.moving) > sc.nmov:
            self._scene = sc = _Scene(self._robot_geoms, max(len(boxes), 2 * sc.nbox),
                                      max(len(cyls), 2 * sc.ncyl),
                                      max(len(world.moving), 2 * sc.nmov))
        for k in range(sc.nbox):
            if k < len(boxes):
                ob = boxes[k]
                sc.set_slot(k, "box", (ob.size[0] / 2, ob.size[1] / 2, ob.height / 2),
                            (ob.center[0], ob.center[1], ob.height / 2), ob.yaw)
            else:
                sc.set_slot(k, "box", None)
        for i in range(sc.ncyl):
            k = sc.nbox + i
            if i < len(cyls):
                c = cyls[i]
                sc.set_slot(k, "cylinder", (c.radius, c.radius, c.height / 2),
                            (c.center[0], c.center[1], c.height / 2))
            else:
                sc.set_slot(k, "cylinder", None)
        self._moving_slots = []
        for i in range(sc.nmov):
            k = sc.moving0 + i
            if i < len(world.moving):
                mv = world.moving[i]
                sc.set_slot(k, "cylinder", (mv.radius, mv.radius, mv.height / 2))
                self._moving_slots.append(k)
            else:
                sc.set_slot(k, "cylinder", None)
        self.world = world
        self._move_obstacles()

    def _place_robot(self) -> None:
        x, y, yaw = self.pose
        q = self._scene.data.qpos
        q[0], q[1], q[2] = x, y, 0.0
        q[3], q[4], q[5], q[6] = math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)
        mujoco.mj_kinematics(self._scene.model, self._scene.data)

    def _move_obstacles(self) -> None:
        assert self.world is not None
        gp = self._scene.model.geom_pos
        # the base class's moving_positions: position(t), or a live crowd stepped to now
        for (x, y), m, k in zip(self.moving_positions(), self.world.moving, self._moving_slots):
            gp[k] = (x, y, m.height / 2)

    def _in_collision(self) -> bool:
        sc = self._scene
        mujoco.mj_collision(sc.model, sc.data)
        n = sc.data.ncon
        return bool(n) and bool(np.any(sc.data.contact.dist[:n] <= CONTACT_DISTANCE))

    def _cast(self) -> np.ndarray:
        lid = self.lidar
        x, y, yaw = self.pose
        if self._beam_cs is None or len(self._beam_cs[0]) != len(self.beam_angles):
            self._beam_cs = (np.cos(self.beam_angles), np.sin(self.beam_angles))
            self._vec = np.zeros((len(self.beam_angles), 3))
            self._tmp = np.empty(len(self.beam_angles))
            self._dist = np.zeros(len(self.beam_angles))
            self._geomid = np.zeros(len(self.beam_angles), dtype=np.int32)
        cb, sb = self._beam_cs
        c, s = math.cos(yaw), math.sin(yaw)
        vec, tmp = self._vec, self._tmp
        # beam directions rotated by the robot's yaw (cos(yaw + a), sin(yaw + a)), in place
        np.multiply(cb, c, out=vec[:, 0])
        np.multiply(sb, s, out=tmp)
        vec[:, 0] -= tmp
        np.multiply(sb, c, out=vec[:, 1])
        np.multiply(cb, s, out=tmp)
        vec[:, 1] += tmp
        pnt = self._pnt
        pnt[0], pnt[1], pnt[2] = x, y, lid.height
        sc = self._scene
        mujoco.mj_multiRay(sc.model, sc.data, pnt, vec.reshape(-1), _RAY_GROUPS, 1,
                           sc.robot_body, self._geomid, self._dist, None, len(cb), lid.range_max)
        ranges = self._dist.copy()
        ranges[(self._geomid < 0) | (ranges > lid.range_max)] = np.inf
        return ranges

    def depth_image(self) -> np.ndarray:
        raise ConfigError("the mujoco backend has no depth camera; use backend='pybullet' "
                          "for depth images")
