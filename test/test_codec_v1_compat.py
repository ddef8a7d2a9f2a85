"""Codec v1 compatibility: the shipped models give the same actions on the same inputs as the
code before codec v2 (reference computed at commit 5903f5f by test/data/make_codec_v1_reference.py),
and their metadata (without the sensor and footprint keys) keeps loading."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from nav_policy.codecs import V1_FOOTPRINT, ObsSpec, SensorFrame, encode_observation
from nav_policy.paths import model_path
from nav_policy.runtime.session import PolicyRuntime

DATA = Path(__file__).parent / "data"
REF = np.load(DATA / "codec_v1_reference.npz")


def _script():  # the same rollout code that wrote the reference
    spec = importlib.util.spec_from_file_location("make_ref", DATA / "make_codec_v1_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_shipped_models_reproduce_the_reference_rollouts_exactly() -> None:
    got = _script().rollout()
    for key in REF.files:
        np.testing.assert_array_equal(got[key], REF[key], err_msg=key)


def test_v1_codec_reencodes_the_reference_frames_exactly() -> None:
    spec = ObsSpec()
    rl = PolicyRuntime(model_path("local_rl.onnx"), expect_kind="rl")
    for i in range(len(REF["obs"])):
        frame = SensorFrame(ranges=REF["ranges"][i], angle_min=-math.pi,
                            angle_increment=2 * math.pi / 360, range_min=0.12, range_max=3.5,
                            pose=tuple(REF["pose"][i]), velocity=tuple(REF["velocity"][i]),
                            goal=tuple(REF["goal"][i]), stamp=float(REF["stamp"][i]))
        obs = encode_observation(frame, REF["prev_rl"][i], spec)
        np.testing.assert_array_equal(obs, REF["obs"][i])
        np.testing.assert_array_equal(rl.act(obs).astype(np.float64), REF["rl"][i])


@pytest.mark.parametrize("name", ["local_rl.onnx", "local_ebm.onnx"])
def test_shipped_v1_metadata_loads_with_the_implied_sensor_and_footprint(name: str) -> None:
    rt = PolicyRuntime(model_path(name))
    meta = rt.meta
    assert meta.codec_version == "1" and meta.obs_spec.version == "1"
    assert meta.sensor is None and meta.footprint is None  # not recorded in these files
    assert meta.model_footprint == V1_FOOTPRINT
    assert meta.model_sensor == {"fov_deg": 360.0, "beams": 360, "range_min": 0.12,
                                 "range_max": 3.5, "mount_x": 0.0, "mount_y": 0.0,
                                 "mount_yaw": 0.0}
