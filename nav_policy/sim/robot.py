"""Robot constants: geometry from the URDF, limits and sensors from config/robot.yaml, or a
robot profile config/robots/NAME.yaml (limits, footprint, lidar with its mount pose, noise).

A profile without a URDF gets one generated from its footprint and wheels (a box or cylinder
base, two wheels, two casters), so the simulator's collision check uses the profile's shape.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nav_policy.errors import ConfigError
from nav_policy.paths import config_path, sim_path
from nav_policy.yamlcheck import check_keys


@dataclass(frozen=True)
class LidarConfig:
    beams: int = 360
    fov_deg: float = 360.0
    range_min: float = 0.12
    range_max: float = 3.5
    height: float = 0.22
    noise_std: float = 0.0
    dropout: float = 0.0
    mount_x: float = 0.0  # lidar pose on base_link: m forward, m left, rad (yaw)
    mount_y: float = 0.0
    mount_yaw: float = 0.0

    def __post_init__(self) -> None:
        if self.beams < 2 or not 0.0 < self.fov_deg <= 360.0:
            raise ConfigError(f"lidar needs beams >= 2 and 0 < fov_deg <= 360, got beams "
                              f"{self.beams}, fov_deg {self.fov_deg}")
        if not 0.0 < self.range_min < self.range_max:
            raise ConfigError(f"lidar needs 0 < range_min < range_max, got {self.range_min}, "
                              f"{self.range_max}")

    @property
    def mount(self) -> tuple[float, float, float]:
        return (float(self.mount_x), float(self.mount_y), float(self.mount_yaw))

    @property
    def angle_min(self) -> float:
        return -math.radians(self.fov_deg) / 2.0

    @property
    def angle_increment(self) -> float:
        full = math.isclose(self.fov_deg, 360.0)
        span = math.radians(self.fov_deg)
        return span / self.beams if full else span / max(self.beams - 1, 1)


FOOTPRINT_SHAPES = ("circle", "rectangle")


@dataclass(frozen=True)
class Footprint:
    """The robot's outline on the ground, centred on base_link: a circle of `radius`, or a
    rectangle `length` (along x) by `width` (along y)."""

    shape: str = "circle"
    radius: float = 0.0
    length: float = 0.0
    width: float = 0.0

    def __post_init__(self) -> None:
        if self.shape not in FOOTPRINT_SHAPES:
            raise ConfigError(f"footprint shape {self.shape!r} is not one of "
                              f"{', '.join(FOOTPRINT_SHAPES)}")
        if self.shape == "circle" and not (self.radius > 0 and self.length == self.width == 0):
            raise ConfigError(f"a circle footprint needs radius > 0 (and no length/width), got "
                              f"radius {self.radius}")
        if self.shape == "rectangle" and not (self.length > 0 and self.width > 0
                                              and self.radius == 0):
            raise ConfigError(f"a rectangle footprint needs length > 0 and width > 0 (and no "
                              f"radius), got {self.length} x {self.width}")

    @classmethod
    def circle(cls, radius: float) -> Footprint:
        return cls("circle", radius=float(radius))

    @classmethod
    def rectangle(cls, length: float, width: float) -> Footprint:
        return cls("rectangle", length=float(length), width=float(width))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "footprint") -> Footprint:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping, got {data!r}")
        check_keys(data, {f.name for f in fields(cls)}, where)
        try:
            return cls(**{k: (float(v) if k != "shape" else str(v)) for k, v in data.items()})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        if self.shape == "circle":
            return {"shape": "circle", "radius": self.radius}
        return {"shape": "rectangle", "length": self.length, "width": self.width}

    @property
    def circumradius(self) -> float:
        """Radius of the smallest circle about base_link holding the footprint."""
        if self.shape == "circle":
            return self.radius
        return math.hypot(self.length / 2.0, self.width / 2.0)

    @property
    def inradius(self) -> float:
        """Radius of the largest circle about base_link inside the footprint."""
        if self.shape == "circle":
            return self.radius
        return min(self.length, self.width) / 2.0

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Distance (m) from base-frame points (N, 2) to the footprint's outline, 0 inside."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if self.shape == "circle":
            return np.maximum(np.hypot(pts[:, 0], pts[:, 1]) - self.radius, 0.0)
        dx = np.maximum(np.abs(pts[:, 0]) - self.length / 2.0, 0.0)
        dy = np.maximum(np.abs(pts[:, 1]) - self.width / 2.0, 0.0)
        return np.hypot(dx, dy)

    def fits_in(self, other: Footprint, tol: float = 1e-6) -> bool:
        """True when this footprint lies inside `other` (both centred on base_link)."""
        if other.shape == "circle":
            return self.circumradius <= other.radius + tol
        if self.shape == "rectangle":
            return self.length <= other.length + tol and self.width <= other.width + tol
        return 2 * self.radius <= min(other.length, other.width) + tol


@dataclass(frozen=True)
class CameraConfig:
    width: int = 64
    height: int = 48
    fov_deg: float = 70.0
    near: float = 0.1
    far: float = 4.0


@dataclass(frozen=True)
class RobotSpec:
    urdf: Path
    radius: float
    wheel_radius: float
    wheel_separation: float
    v_max: float
    w_max: float
    acc_v: float
    acc_w: float
    lidar: LidarConfig = field(default_factory=LidarConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    camera_offset: tuple[float, float, float] = (0.15, 0.0, 0.12)
    footprint: Footprint | None = None  # None: the circle of `radius` (the URDF's base)
    name: str = "diffbot"

    def __post_init__(self) -> None:
        if self.footprint is None:
            object.__setattr__(self, "footprint", Footprint.circle(self.radius))


def _urdf_geometry(urdf: Path) -> dict[str, float]:
    try:
        root = ET.parse(urdf).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ConfigError(f"cannot read robot URDF {urdf}: {exc}") from exc
    links = {link.get("name"): link for link in root.iter("link")}
    base = links.get("base_link")
    cyl = base.find("collision/geometry/cylinder") if base is not None else None
    wheel = links.get("left_wheel")
    wcyl = wheel.find("collision/geometry/cylinder") if wheel is not None else None
    joints = {j.get("name"): j for j in root.iter("joint")}
    lj, rj = joints.get("left_wheel_joint"), joints.get("right_wheel_joint")
    if cyl is None or wcyl is None or lj is None or rj is None:
        raise ConfigError(
            f"robot URDF {urdf} needs base_link with a cylinder collision, left/right wheels "
            "and left_wheel_joint/right_wheel_joint"
        )
    ly = float(lj.find("origin").get("xyz").split()[1])
    ry = float(rj.find("origin").get("xyz").split()[1])
    return {
        "radius": float(cyl.get("radius")),
        "wheel_radius": float(wcyl.get("radius")),
        "wheel_separation": abs(ly - ry),
    }


# the sections of a robot file (config/robot.yaml, config/robots/*.yaml) and the keys of its
# robot: section (lidar: and camera: hold the fields of LidarConfig and CameraConfig)
ROBOT_KEYS = {"urdf", "v_max", "w_max", "acc_v", "acc_w", "wheel_radius", "wheel_separation"}
TOP_KEYS = {"name", "description", "robot", "footprint", "lidar", "camera"}


def profile_names() -> list[str]:
    """The shipped robot profiles (config/robots/*.yaml)."""
    return sorted(p.stem for p in config_path("robots").glob("*.yaml"))


def resolve_robot_config(robot: str | Path | None) -> Path:
    """A profile name (config/robots/NAME.yaml), a YAML path, or None (config/robot.yaml)."""
    if robot is None or str(robot) == "":
        return config_path("robot.yaml")
    text = str(robot)
    if "/" not in text and not text.endswith((".yaml", ".yml")):
        path = config_path("robots") / f"{text}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown robot profile {text!r}; shipped profiles: "
                              f"{', '.join(profile_names())} (or give a YAML path)")
        return path
    return Path(text)


def generated_urdf(name: str, footprint: Footprint, wheel_radius: float,
                   wheel_separation: float, lidar_height: float) -> Path:
    """A URDF for a profile without one: base of the footprint's shape (its top 3 cm below the
    lidar so the scan never hits the robot), two wheels, two casters. Cached by content."""
    r_w = wheel_radius
    top = lidar_height - 0.03
    bottom = min(r_w, 0.05)
    if top - bottom < 0.02:
        raise ConfigError(f"robot {name}: lidar height {lidar_height} m leaves no room for the "
                          f"base above the wheels (radius {r_w} m)")
    h, zc = top - bottom, (top + bottom) / 2
    if footprint.shape == "circle":
        geom = f'<cylinder radius="{footprint.radius}" length="{h}"/>'
        caster_x = 0.7 * footprint.radius
    else:
        geom = f'<box size="{footprint.length} {footprint.width} {h}"/>'
        caster_x = 0.35 * footprint.length
    rc = r_w / 2.0
    wheel = ('<link name="{n}"><inertial><mass value="0.2"/><inertia ixx="0.0002" ixy="0" '
             'ixz="0" iyy="0.0002" iyz="0" izz="0.0003"/></inertial><collision><origin '
             'rpy="1.5708 0 0"/><geometry><cylinder radius="{r}" length="0.02"/></geometry>'
             '</collision></link><joint name="{n}_joint" type="continuous"><parent '
             'link="base_link"/><child link="{n}"/><origin xyz="0 {y} {r}"/><axis xyz="0 1 0"/>'
             '<limit effort="5.0" velocity="40.0"/></joint>')
    caster = ('<link name="{n}"><inertial><mass value="0.05"/><inertia ixx="0.00001" ixy="0" '
              'ixz="0" iyy="0.00001" iyz="0" izz="0.00001"/></inertial><collision><geometry>'
              '<sphere radius="{r}"/></geometry></collision></link><joint name="{n}_joint" '
              'type="fixed"><parent link="base_link"/><child link="{n}"/><origin '
              'xyz="{x} 0 {r}"/></joint>')
    text = (f'<?xml version="1.0"?>\n<!-- generated by nav_policy.sim.robot for profile {name} '
            f'-->\n<robot name="{name}"><link name="base_link"><inertial><origin '
            f'xyz="0 0 {zc}"/><mass value="4.0"/><inertia ixx="0.05" ixy="0" ixz="0" '
            f'iyy="0.05" iyz="0" izz="0.08"/></inertial><collision><origin xyz="0 0 {zc}"/>'
            f'<geometry>{geom}</geometry></collision></link>'
            + wheel.format(n="left_wheel", y=wheel_separation / 2, r=r_w)
            + wheel.format(n="right_wheel", y=-wheel_separation / 2, r=r_w)
            + caster.format(n="front_caster", x=caster_x, r=rc)
            + caster.format(n="rear_caster", x=-caster_x, r=rc) + "</robot>\n")
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / "nav_policy_urdf"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}_{digest}.urdf"
    if not path.is_file():
        tmp = path.with_suffix(f".{np.random.default_rng().integers(1 << 30)}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return path


def load_robot_spec(path: str | Path | None = None, **overrides: object) -> RobotSpec:
    """Read config/robot.yaml, a robot profile by name (config/robots/NAME.yaml) or a YAML
    `path`, and the URDF it names. `overrides` replace `robot:` keys. Unknown keys are errors."""
    cfg_file = resolve_robot_config(path)
    try:
        cfg = yaml.safe_load(cfg_file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read robot config {cfg_file}: {exc}") from exc
    if not isinstance(cfg, dict) or "robot" not in cfg:
        raise ConfigError(f"robot config {cfg_file} has no 'robot:' section")
    check_keys(cfg, TOP_KEYS, str(cfg_file))
    for section in ("robot", "lidar", "camera"):
        if not isinstance(cfg.get(section) or {}, dict):
            raise ConfigError(f"robot config {cfg_file}: '{section}' must be a mapping")
    robot = dict(cfg["robot"])
    robot.update(overrides)
    check_keys(robot, ROBOT_KEYS, f"{cfg_file}: robot")
    name = str(cfg.get("name") or ("diffbot" if cfg_file.name == "robot.yaml" else cfg_file.stem))
    check_keys(cfg.get("lidar") or {}, {f.name for f in fields(LidarConfig)}, f"{cfg_file}: lidar")
    check_keys(cfg.get("camera") or {}, {f.name for f in fields(CameraConfig)},
               f"{cfg_file}: camera")
    try:
        lidar = LidarConfig(**(cfg.get("lidar") or {}))
        camera = CameraConfig(**(cfg.get("camera") or {}))
    except TypeError as exc:
        raise ConfigError(f"robot config {cfg_file}: {exc}") from exc
    footprint = Footprint.from_dict(cfg["footprint"], f"{cfg_file}: footprint") \
        if cfg.get("footprint") is not None else None
    urdf_text = robot.pop("urdf", None)
    if urdf_text:
        urdf = Path(urdf_text)
        if not urdf.is_absolute():
            urdf = sim_path(str(urdf))
        geom = _urdf_geometry(urdf)
        for key in ("wheel_radius", "wheel_separation"):
            if key in robot:
                raise ConfigError(f"robot config {cfg_file}: {key} comes from the URDF {urdf}; "
                                  "remove it (or remove urdf)")
        if footprint is not None and footprint.shape == "circle" \
                and not math.isclose(footprint.radius, geom["radius"], abs_tol=1e-6):
            raise ConfigError(f"robot config {cfg_file}: footprint radius {footprint.radius} "
                              f"differs from the URDF's base radius {geom['radius']}")
        if footprint is not None and footprint.shape != "circle":
            raise ConfigError(f"robot config {cfg_file}: a {footprint.shape} footprint needs a "
                              "generated body (remove urdf; give wheel_radius, "
                              "wheel_separation)")
    else:
        if footprint is None:
            raise ConfigError(f"robot config {cfg_file}: without a urdf the profile needs a "
                              "footprint")
        missing = [k for k in ("wheel_radius", "wheel_separation") if k not in robot]
        if missing:
            raise ConfigError(f"robot config {cfg_file}: without a urdf it needs "
                              f"{', '.join(missing)}")
        geom = {"radius": footprint.circumradius, "wheel_radius": float(robot.pop("wheel_radius")),
                "wheel_separation": float(robot.pop("wheel_separation"))}
        urdf = generated_urdf(name, footprint, geom["wheel_radius"], geom["wheel_separation"],
                              lidar.height)
    try:
        return RobotSpec(urdf=urdf, lidar=lidar, camera=camera, footprint=footprint, name=name,
                         **geom, **robot)
    except TypeError as exc:
        raise ConfigError(f"robot config {cfg_file}: {exc}") from exc
