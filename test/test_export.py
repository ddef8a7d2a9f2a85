"""ONNX export and runtime: real training run (tiny), real export, real onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from nav_policy.errors import ConfigError, ModelError
from nav_policy.planners.learned import PolicyPlanner
from nav_policy.runtime.session import PolicyRuntime


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from nav_policy.export.onnx_export import export_run
    from nav_policy.paths import config_path
    from nav_policy.training.local_rl import train_local

    root = tmp_path_factory.mktemp("runs")
    run = train_local(config_path("train_local.yaml"), runs_root=root,
                      overrides={"total_steps": 1024, "n_envs": 1, "vec_env": "dummy",
                                 "checkpoint_every_steps": 512,
                                 "ppo": {"n_steps": 512, "batch_size": 128, "n_epochs": 1}})
    out = root / "m.onnx"
    report = export_run(run, out, checkpoint="last", parity_samples=1000)
    return out, report


def test_export_parity_and_metadata(exported: tuple[Path, dict]) -> None:
    path, report = exported
    assert report["parity_samples"] == 1000
    assert report["parity_max_abs_diff"] <= 1e-5
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    for key in ("nav_policy.kind", "obs_spec", "action_spec", "codec_version", "trained_steps",
                "source_commit"):
        assert key in props
    assert props["nav_policy.kind"] == "rl"
    assert int(props["trained_steps"]) >= 512
    card = Path(report["model_card"]).read_text()
    assert "max abs diff" in card and "seed 0" in card and "Stage 1" in card


def test_runtime_outputs_within_action_limits(exported: tuple[Path, dict]) -> None:
    rt = PolicyRuntime(exported[0], expect_kind="rl")
    low, high = rt.meta.obs_spec.bounds()
    obs = np.random.default_rng(0).uniform(low, high, size=(256, rt.meta.obs_spec.size))
    cmd = rt.run(obs.astype(np.float32))[0]
    spec = rt.meta.action_spec
    assert cmd.shape == (256, 2)
    assert np.all(cmd[:, 0] >= spec.v_min - 1e-6) and np.all(cmd[:, 0] <= spec.v_max + 1e-6)
    assert np.all(np.abs(cmd[:, 1]) <= spec.w_max + 1e-6)


def test_runtime_rejects_wrong_kind(exported: tuple[Path, dict]) -> None:
    with pytest.raises(ModelError, match="kind is 'rl', expected 'ebm'"):
        PolicyRuntime(exported[0], expect_kind="ebm")


def test_runtime_rejects_lidar_mismatch(exported: tuple[Path, dict]) -> None:
    with pytest.raises(ModelError, match="beams"):
        PolicyRuntime(exported[0], beams=720)


def test_runtime_rejects_wrong_observation_shape(exported: tuple[Path, dict]) -> None:
    rt = PolicyRuntime(exported[0])
    with pytest.raises(ModelError, match=r"expects \(N, 67\)"):
        rt.run(np.zeros(10, dtype=np.float32))


def test_runtime_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        PolicyRuntime(tmp_path / "nope.onnx")


def test_runtime_corrupt_file(tmp_path: Path, exported: tuple[Path, dict]) -> None:
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(exported[0].read_bytes()[:200])
    with pytest.raises(ModelError, match="cannot load model .*truncated.onnx"):
        PolicyRuntime(bad)


def test_runtime_missing_metadata(tmp_path: Path, exported: tuple[Path, dict]) -> None:
    model = onnx.load(str(exported[0]))
    keep = [p for p in model.metadata_props if p.key != "obs_spec"]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    path = tmp_path / "nometa.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match="missing metadata obs_spec"):
        PolicyRuntime(path)


def test_planner_stops_on_invalid_scan(exported: tuple[Path, dict]) -> None:
    from nav_policy.codecs import SensorFrame

    planner = PolicyPlanner.from_file(exported[0])
    frame = SensorFrame(ranges=np.full(360, np.nan, dtype=np.float32), angle_min=-np.pi,
                        angle_increment=2 * np.pi / 360, range_min=0.12, range_max=3.5,
                        pose=(0.0, 0.0, 0.0), velocity=(0.0, 0.0), goal=(2.0, 0.0))
    assert planner.compute(frame) == (0.0, 0.0)
    assert "invalid" in planner.last_info["reason"]


def test_planner_matches_env_policy_path(exported: tuple[Path, dict]) -> None:
    """Train/serve parity: the planner (node path) and the env observation agree step by step."""
    import gymnasium as gym

    from nav_policy.codecs import encode_action, encode_observation

    planner = PolicyPlanner.from_file(exported[0])
    env = gym.make("nav_policy/LocalNav-v0", tier="easy")
    obs, _ = env.reset(seed=3)
    base = env.unwrapped
    for _ in range(20):
        frame = base.sensors()
        np.testing.assert_array_equal(encode_observation(frame, planner.prev_action,
                                                         planner.spec), obs)
        v, w = planner.compute(frame)
        np.testing.assert_allclose(planner.runtime.act(obs), [v, w], atol=1e-6)
        obs, _, term, trunc, _ = env.step(encode_action(v, w, base.action_spec))
        if term or trunc:
            break
    env.close()


def test_train_rejects_bad_config(tmp_path: Path) -> None:
    from nav_policy.training.config import load_config

    bad = tmp_path / "bad.yaml"
    bad.write_text("algo: dqn\n")
    with pytest.raises(ConfigError, match="algo"):
        load_config(bad)
    bad.write_text("curriculum: [{start_step: 0, tiers: {lunar: 1.0}}]\n")
    with pytest.raises(ConfigError, match="unknown tier 'lunar'"):
        load_config(bad)


def test_proximity_features_train_export_and_serve(tmp_path: Path) -> None:
    """policy_features: proximity: the fixed features are inside the network, the export holds
    them (parity against the SB3 policy on the raw codec vector), the runtime serves the file,
    and the features are what the docstring says."""
    import torch
    from stable_baselines3 import PPO

    from nav_policy.export.onnx_export import export_run
    from nav_policy.paths import config_path
    from nav_policy.training.local_rl import train_local

    run = train_local(config_path("train_local.yaml"), runs_root=tmp_path, overrides={
        "total_steps": 512, "n_envs": 1, "vec_env": "dummy", "checkpoint_every_steps": 512,
        "policy_features": "proximity", "proximity_scale": 0.25,
        "ppo": {"n_steps": 512, "batch_size": 128, "n_epochs": 1}})
    report = export_run(run, tmp_path / "p.onnx", checkpoint="last", parity_samples=1000)
    assert report["parity_max_abs_diff"] <= 1e-5
    model = PPO.load(run / "checkpoints" / "step_512.zip", device="cpu")
    ext = model.policy.features_extractor
    spec = PolicyRuntime(tmp_path / "p.onnx").meta.obs_spec
    obs = np.concatenate([np.full(spec.sectors, spec.range_max), [5.0, 1, 0, 0, 0, 0, 0]])
    obs[0] = spec.range_min + 0.25  # one sector a scale away from range_min
    with torch.no_grad():
        f = ext(torch.as_tensor(obs[None], dtype=torch.float32)).numpy()[0]
    assert f.shape == (spec.size + spec.sectors,)
    assert np.all(np.abs(f[:spec.size]) <= 1.0 + 1e-6)
    np.testing.assert_allclose(f[spec.size], np.exp(-1.0), rtol=1e-5)
    np.testing.assert_allclose(f[spec.size + 1], np.exp(-(spec.range_max - spec.range_min) / 0.25),
                               rtol=1e-4)
    # the served graph answers on the raw vector and differs from a scan with no close sector
    rt = PolicyRuntime(tmp_path / "p.onnx")
    far = obs.copy()
    far[0] = spec.range_max
    near_cmd, far_cmd = rt.act(obs.astype(np.float32)), rt.act(far.astype(np.float32))
    assert np.all(np.isfinite(near_cmd)) and not np.allclose(near_cmd, far_cmd)
    with pytest.raises(ConfigError, match="policy_features"):
        train_local(config_path("train_local.yaml"), runs_root=tmp_path,
                    overrides={"policy_features": "proximity", "algo": "sac"})


def test_curriculum_reaches_the_envs_behind_their_wrappers(tmp_path: Path) -> None:
    """The tiers the curriculum sets are the tiers the training episodes are drawn from, in
    SubprocVecEnv workers behind Monitor and gymnasium's wrappers (a VecEnv.set_attr there only
    sets an attribute on the outermost wrapper: every episode stayed on the default tier)."""
    import json

    from nav_policy.paths import config_path
    from nav_policy.training.local_rl import train_local

    run = train_local(config_path("train_local.yaml"), runs_root=tmp_path, overrides={
        "total_steps": 1024, "n_envs": 2, "vec_env": "subproc", "checkpoint_every_steps": 1024,
        "curriculum": [{"start_step": 0, "tiers": {"hard": 1.0}},
                       {"start_step": 512, "tiers": {"dynamic": 1.0}}],
        "ppo": {"n_steps": 256, "batch_size": 128, "n_epochs": 1},
        "eval": {"episodes_per_tier": 1, "every_steps": 100_000, "tiers": ["easy"]}})
    counts = json.loads((run / "meta.json").read_text())["episodes_by_tier"]
    assert set(counts) == {"hard", "dynamic"}, counts


def test_sac_trains_and_exports(tmp_path: Path) -> None:
    """algo: sac runs end to end (the trainer's PPO-only parts stay out of its way) and its
    deterministic actor exports with parity."""
    from nav_policy.export.onnx_export import export_run
    from nav_policy.paths import config_path
    from nav_policy.training.local_rl import train_local

    run = train_local(config_path("train_local.yaml"), runs_root=tmp_path, overrides={
        "algo": "sac", "total_steps": 300, "n_envs": 1, "vec_env": "dummy",
        "checkpoint_every_steps": 300, "sac": {"learning_starts": 100, "batch_size": 64},
        "eval": {"episodes_per_tier": 1, "every_steps": 100_000, "tiers": ["easy"]}})
    report = export_run(run, tmp_path / "sac.onnx", checkpoint="last", parity_samples=200)
    assert report["parity_max_abs_diff"] <= 1e-5
    assert PolicyRuntime(tmp_path / "sac.onnx", expect_kind="rl").act(
        np.zeros(report["obs_dim"], dtype=np.float32)).shape == (2,)
