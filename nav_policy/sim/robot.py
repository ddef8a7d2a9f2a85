"""Robot constants: geometry from the URDF, limits and sensors from config/robot.yaml."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nav_policy.errors import ConfigError
from nav_policy.paths import config_path, sim_path


@dataclass(frozen=True)
class LidarConfig:
    beams: int = 360
    fov_deg: float = 360.0
    range_min: float = 0.12
    range_max: float = 3.5
    height: float = 0.22
    noise_std: float = 0.0
    dropout: float = 0.0

    @property
    def angle_min(self) -> float:
        import math

        return -math.radians(self.fov_deg) / 2.0

    @property
    def angle_increment(self) -> float:
        import math

        full = math.isclose(self.fov_deg, 360.0)
        span = math.radians(self.fov_deg)
        return span / self.beams if full else span / max(self.beams - 1, 1)


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


# sections of config/robot.yaml and the keys of its robot: section (lidar: and camera: hold
# the fields of LidarConfig and CameraConfig); the geometry comes from the URDF
ROBOT_FILE_KEYS = ("robot", "lidar", "camera")
ROBOT_KEYS = ("urdf", "v_max", "w_max", "acc_v", "acc_w")


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


def load_robot_spec(path: str | Path | None = None, **overrides: object) -> RobotSpec:
    """Read config/robot.yaml (or `path`) and the URDF it names. `overrides` replace robot keys."""
    cfg_file = Path(path) if path else config_path("robot.yaml")
    try:
        cfg = yaml.safe_load(cfg_file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read robot config {cfg_file}: {exc}") from exc
    if not isinstance(cfg, dict) or "robot" not in cfg:
        raise ConfigError(f"robot config {cfg_file} has no 'robot:' section")
    from dataclasses import fields

    from nav_policy.yamlcheck import check_keys

    check_keys(cfg, ROBOT_FILE_KEYS, f"robot config {cfg_file}")
    for section, known in (("robot", ROBOT_KEYS), ("lidar", [f.name for f in fields(LidarConfig)]),
                           ("camera", [f.name for f in fields(CameraConfig)])):
        if not isinstance(cfg.get(section) or {}, dict):
            raise ConfigError(f"robot config {cfg_file}: '{section}' must be a mapping")
        check_keys(cfg.get(section) or {}, known, f"robot config {cfg_file}: {section}")
    robot = dict(cfg["robot"])
    robot.update(overrides)
    urdf = Path(robot.pop("urdf"))
    if not urdf.is_absolute():
        urdf = sim_path(str(urdf))
    geom = _urdf_geometry(urdf)
    try:
        lidar = LidarConfig(**cfg.get("lidar", {}))
        camera = CameraConfig(**cfg.get("camera", {}))
        return RobotSpec(urdf=urdf, lidar=lidar, camera=camera, **geom, **robot)
    except TypeError as exc:
        raise ConfigError(f"robot config {cfg_file}: {exc}") from exc
