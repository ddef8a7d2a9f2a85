"""Codec v2 end to end: a tiny real training run on the Jackal profile (270-degree lidar
forward of centre, rectangle footprint, 2 past scans), real export, real onnxruntime; the
runtime refusing robot profiles a model cannot serve, naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import onnx
import pytest

from nav_policy.codecs import encode_action
from nav_policy.errors import ModelError
from nav_policy.paths import model_path
from nav_policy.planners.learned import PolicyPlanner
from nav_policy.runtime.session import PolicyRuntime
from nav_policy.sim.robot import load_robot_spec

TRAIN_ENV = {"robot": "jackal", "codec": "2", "history": 2}
V2_ENV = {**TRAIN_ENV, "tier": "easy"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from nav_policy.export.onnx_export import export_run
    from nav_policy.paths import config_path
    from nav_policy.training.local_rl import train_local

    root = tmp_path_factory.mktemp("runs_v2")
    run = train_local(config_path("train_local.yaml"), runs_root=root,
                      overrides={"total_steps": 256, "n_envs": 1, "vec_env": "dummy",
                                 "checkpoint_every_steps": 256, "env": TRAIN_ENV,
                                 "ppo": {"n_steps": 256, "batch_size": 128, "n_epochs": 1}})
    out = root / "jackal_v2.onnx"
    report = export_run(run, out, checkpoint="last", parity_samples=200)
    return out, report


def test_v2_export_parity_and_metadata(exported: tuple[Path, dict]) -> None:
    path, report = exported
    assert report["parity_max_abs_diff"] <= 1e-5 and report["obs_dim"] == 60 * 4 + 7
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["codec_version"] == "2"
    spec = json.loads(props["obs_spec"])
    assert spec["version"] == "2" and spec["history"] == 2 and spec["min_fov_deg"] == 270.0
    assert spec["footprint"] == {"shape": "rectangle", "length": 0.46, "width": 0.42}
    assert json.loads(props["sensor"]) == {"fov_deg": 270.0, "beams": 720, "range_min": 0.1,
                                           "range_max": 30.0, "mount_x": 0.12, "mount_y": 0.0,
                                           "mount_yaw": 0.0}
    assert json.loads(props["footprint"])["shape"] == "rectangle"


def test_v2_planner_encodes_as_the_env_and_serves_the_profile(exported: tuple[Path, dict]
                                                              ) -> None:
    """The node's planner path (PolicyPlanner: its own ObservationEncoder with history) feeds
    the model the env's observation, step by step, on the Jackal's simulated scans."""
    jackal = load_robot_spec("jackal")
    planner = PolicyPlanner.from_file(exported[0], robot=jackal)
    env = gym.make("nav_policy/LocalNav-v0", **V2_ENV)
    obs, _ = env.reset(seed=3)
    planner.reset()
    try:
        for _ in range(12):
            frame = env.unwrapped.sensors()
            v, w = planner.compute(frame)
            want = planner.runtime.act(obs)
            assert (v, w) == pytest.approx((float(want[0]), float(want[1])), abs=1e-6)
            assert "reason" not in planner.last_info
            obs, _, term, trunc, _ = env.step(encode_action(v, w, planner.action_spec))
            if term or trunc:
                break
    finally:
        env.close()


def _profile(tmp_path: Path, name: str, footprint: str, lidar: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nrobot: {{v_max: 0.5, w_max: 2.0, acc_v: 2.5, acc_w: 3.2, "
                    f"wheel_radius: 0.04, wheel_separation: 0.3}}\nfootprint: {footprint}\n"
                    f"lidar: {lidar}\n")
    return path


def test_runtime_refuses_profiles_naming_the_field(exported: tuple[Path, dict],
                                                   tmp_path: Path) -> None:
    rl = model_path("local_rl.onnx")
    cases = [
        (rl, "jackal", r"fov_deg 270 on jackal but the model needs at least 360 \(codec v1"),
        (rl, "diffbot_tim571", r"fov_deg 270 on diffbot_tim571"),
        (rl, _profile(tmp_path, "wide", "{shape: circle, radius: 0.3}",
                      "{beams: 360, fov_deg: 360, range_min: 0.1, range_max: 8.0}"),
         r"footprint circle r=0.3 m of wide does not fit the model's footprint circle r=0.2 m"),
        (rl, _profile(tmp_path, "short", "{shape: circle, radius: 0.15}",
                      "{beams: 360, fov_deg: 360, range_min: 0.1, range_max: 2.0}"),
         r"range_max 2 m on short is shorter than the model's 3.5 m"),
        (exported[0], _profile(tmp_path, "narrow", "{shape: circle, radius: 0.2}",
                               "{beams: 180, fov_deg: 180, range_min: 0.1, range_max: 8.0}"),
         r"fov_deg 180 on narrow but the model needs at least 270 \(the model's min_fov_deg"),
        (exported[0], _profile(tmp_path, "big", "{shape: rectangle, length: 0.6, width: 0.4}",
                               "{beams: 720, fov_deg: 360, range_min: 0.1, range_max: 8.0}"),
         r"footprint rectangle 0.6 x 0.4 m of big does not fit .* rectangle 0.46 x 0.42 m"),
    ]
    for model, profile, message in cases:
        with pytest.raises(ModelError, match=message):
            PolicyPlanner.from_file(model, robot=load_robot_spec(profile))


@pytest.mark.parametrize("model, profile", [
    ("local_rl.onnx", "diffbot"), ("local_rl.onnx", "turtlebot3_burger"),
    ("local_ebm.onnx", "diffbot_rplidar_a2"), (None, "diffbot_tim571"), (None, "jackal"),
])
def test_runtime_serves_the_profiles_that_fit(exported: tuple[Path, dict], model: str | None,
                                              profile: str) -> None:
    """v1 models on any 360-degree lidar reaching 3.5 m on a robot no larger than the diffbot
    (resampled by angle, points moved from the mount); the Jackal v2 model on the 270-degree
    TiM571 diffbot (its disc fits the Jackal's rectangle) and on the Jackal."""
    path = model_path(model) if model else exported[0]
    kind = "ebm" if model == "local_ebm.onnx" else "rl"
    robot = load_robot_spec(profile)
    planner = PolicyPlanner.from_file(path, robot=robot, expect_kind=kind)
    env = gym.make("nav_policy/LocalNav-v0", robot=robot, tier="easy",
                   codec=planner.spec.version, history=planner.spec.history,
                   min_fov_deg=None if planner.spec.version == "1" else planner.spec.min_fov_deg)
    try:
        env.reset(seed=5)
        v, w = planner.compute(env.unwrapped.sensors())
    finally:
        env.close()
    assert "reason" not in planner.last_info, planner.last_info
    assert np.isfinite([v, w]).all() and 0.0 <= v <= planner.action_spec.v_max


def test_metadata_version_mismatch_is_refused(exported: tuple[Path, dict],
                                              tmp_path: Path) -> None:
    model = onnx.load(str(exported[0]))
    for p in model.metadata_props:
        if p.key == "codec_version":
            p.value = "1"
    bad = tmp_path / "bad.onnx"
    onnx.save(model, str(bad))
    with pytest.raises(ModelError, match="codec_version 1 but obs_spec is version 2"):
        PolicyRuntime(bad)
