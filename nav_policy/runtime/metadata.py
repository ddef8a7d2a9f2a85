"""Model metadata carried in ONNX metadata_props (see docs/DESIGN.md, "Model files").

Besides the required keys, a model records the sensor it was trained with (`sensor`: the
lidar's fov_deg, beams, range_min, range_max and mount pose, JSON) and the robot footprint
(`footprint`, JSON). Files written before these keys existed (the shipped v1 models) load as
before: their sensor is the v1 spec's 360-degree lidar at the robot centre and their footprint
the diffbot's 0.2 m disc, which is what they were trained with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nav_policy.codecs import CODEC_VERSIONS, ActionSpec, ObsSpec
from nav_policy.errors import ModelError
from nav_policy.sim.robot import Footprint, LidarConfig

KINDS = ("rl", "ebm", "dpp")
REQUIRED = ("nav_policy.kind", "obs_spec", "action_spec", "codec_version", "trained_steps",
            "source_commit")
OPTIONAL = ("sensor", "footprint")
SENSOR_FIELDS = ("fov_deg", "beams", "range_min", "range_max", "mount_x", "mount_y",
                 "mount_yaw")


def sensor_model(lidar: LidarConfig) -> dict[str, float]:
    """The `sensor` record of a lidar (what a model is trained with)."""
    return {k: float(getattr(lidar, k)) if k != "beams" else int(lidar.beams)
            for k in SENSOR_FIELDS}


def _v1_sensor(spec: ObsSpec) -> dict[str, float]:
    return {"fov_deg": 360.0, "beams": spec.beams, "range_min": spec.range_min,
            "range_max": spec.range_max, "mount_x": 0.0, "mount_y": 0.0, "mount_yaw": 0.0}


@dataclass(frozen=True)
class ModelMetadata:
    kind: str
    obs_spec: ObsSpec
    action_spec: ActionSpec
    codec_version: str
    trained_steps: int
    source_commit: str
    extra: dict[str, str]
    sensor: dict[str, float] | None = None  # None: not recorded (files before codec v2)
    footprint: Footprint | None = None  # None: the obs_spec's (v1: the diffbot's disc)

    @property
    def model_footprint(self) -> Footprint:
        return self.footprint or self.obs_spec.model_footprint

    @property
    def model_sensor(self) -> dict[str, float]:
        return self.sensor or _v1_sensor(self.obs_spec)

    def to_props(self) -> dict[str, str]:
        props = {"nav_policy.kind": self.kind, "obs_spec": self.obs_spec.to_json(),
                 "action_spec": self.action_spec.to_json(), "codec_version": self.codec_version,
                 "trained_steps": str(self.trained_steps), "source_commit": self.source_commit,
                 **self.extra}
        if self.sensor is not None:
            props["sensor"] = json.dumps(self.sensor, sort_keys=True)
        if self.footprint is not None:
            props["footprint"] = json.dumps(self.footprint.to_dict(), sort_keys=True)
        return props

    @classmethod
    def from_props(cls, props: dict[str, str], source: str) -> ModelMetadata:
        missing = [k for k in REQUIRED if k not in props]
        if missing:
            raise ModelError(f"{source}: missing metadata {', '.join(missing)} (not a nav_policy "
                             "model, or exported by an older version)")
        kind = props["nav_policy.kind"]
        if kind not in KINDS:
            raise ModelError(f"{source}: unknown model kind {kind!r}")
        version = props["codec_version"]
        if version not in CODEC_VERSIONS:
            raise ModelError(f"{source}: codec_version {version} but this nav_policy speaks "
                             f"{', '.join(CODEC_VERSIONS)}; re-export the model")
        try:
            obs = ObsSpec.from_json(props["obs_spec"]) if kind != "dpp" else ObsSpec()
            act = ActionSpec.from_json(props["action_spec"]) if kind != "dpp" else ActionSpec()
            steps = int(props["trained_steps"])
            sensor = None
            if "sensor" in props:
                sensor = json.loads(props["sensor"])
                if not isinstance(sensor, dict) or set(sensor) != set(SENSOR_FIELDS):
                    raise ValueError(f"sensor must have the fields {', '.join(SENSOR_FIELDS)}")
            footprint = Footprint.from_dict(json.loads(props["footprint"])) \
                if "footprint" in props else None
        except Exception as exc:  # noqa: BLE001 - any malformed field
            raise ModelError(f"{source}: malformed metadata: {exc}") from exc
        if kind != "dpp" and obs.version != version:
            raise ModelError(f"{source}: codec_version {version} but obs_spec is version "
                             f"{obs.version}")
        extra = {k: v for k, v in props.items() if k not in REQUIRED and k not in OPTIONAL}
        return cls(kind, obs, act, version, steps, props["source_commit"], extra, sensor,
                   footprint)


def check_compatible(meta: ModelMetadata, source: str, expect_kind: str | None = None,
                     obs_spec: ObsSpec | None = None, **lidar: Any) -> None:
    """Refuse a model whose kind or observation spec differs from what the caller feeds."""
    if expect_kind is not None and meta.kind != expect_kind:
        raise ModelError(f"{source}: model kind is {meta.kind!r}, expected {expect_kind!r}")
    if obs_spec is not None and obs_spec != meta.obs_spec:
        raise ModelError(f"{source}: observation spec {meta.obs_spec} does not match the "
                         f"configured {obs_spec}")
    for key, value in lidar.items():
        have = getattr(meta.obs_spec, key)
        if abs(float(have) - float(value)) > 1e-6:
            raise ModelError(f"{source}: model expects lidar {key}={have}, sensor has {value}")


def check_profile(meta: ModelMetadata, source: str, lidar: LidarConfig,
                  footprint: Footprint, robot_name: str = "the robot") -> None:
    """Refuse a model that cannot serve a robot with this lidar and footprint; the message names
    the field. The codec resamples any beam count and moves points from any mount pose, so
    those never refuse; what does:
    - fov_deg: v1 needs 360 degrees; v2 needs at least the model's min_fov_deg;
    - range_max: the sensor's must reach the model's (a longer one is clipped);
    - footprint: the robot must fit inside the footprint the model was trained with.
    """
    spec = meta.obs_spec
    need_fov = 360.0 if spec.version == "1" else spec.min_fov_deg
    if lidar.fov_deg < need_fov - 1e-6:
        why = "codec v1 has no unseen-sector mask" if spec.version == "1" else \
            "the model's min_fov_deg"
        raise ModelError(f"{source}: lidar fov_deg {lidar.fov_deg:g} on {robot_name} but the "
                         f"model needs at least {need_fov:g} ({why})")
    if lidar.range_max < spec.range_max - 1e-6:
        raise ModelError(f"{source}: lidar range_max {lidar.range_max:g} m on {robot_name} is "
                         f"shorter than the model's {spec.range_max:g} m")
    fp = meta.model_footprint
    if not footprint.fits_in(fp):
        raise ModelError(f"{source}: footprint {_describe(footprint)} of {robot_name} does not "
                         f"fit the model's footprint {_describe(fp)} (it was trained for a "
                         f"{'smaller' if footprint.circumradius > fp.circumradius else 'different'}"
                         " robot)")


def _describe(fp: Footprint) -> str:
    if fp.shape == "circle":
        return f"circle r={fp.radius:g} m"
    return f"rectangle {fp.length:g} x {fp.width:g} m"

