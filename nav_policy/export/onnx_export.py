"""Export a trained run to ONNX: normalisation + deterministic actor + action scaling in one graph.

The graph maps the raw codec observation (float32 [N, obs_dim]) to cmd (float32 [N, 2]:
v m/s, w rad/s). Parity is verified against the SB3 policy itself (not the wrapper) on
`parity_samples` observations; a max abs difference above 1e-5 fails the export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nav_policy.codecs import ActionSpec, ObsSpec, decode_action
from nav_policy.errors import ModelError
from nav_policy.runtime.metadata import ModelMetadata, sensor_model
from nav_policy.sim.robot import load_robot_spec
from nav_policy.training.config import load_config
from nav_policy.training.rundir import read_meta

PARITY_TOL = 1e-5


def _torch_module(model: Any, obs_mean: np.ndarray, obs_var: np.ndarray, clip_obs: float,
                  eps: float, action_spec: ActionSpec) -> Any:
    import torch
    from torch import nn

    policy = model.policy

    class ExportPolicy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.as_tensor(obs_mean, dtype=torch.float32))
            self.register_buffer("std", torch.sqrt(torch.as_tensor(obs_var, dtype=torch.float32) + eps))
            self.extractor = policy.mlp_extractor.policy_net if hasattr(policy, "mlp_extractor") \
                else None
            self.sac_actor = None if self.extractor is not None else policy.actor
            self.action_net = policy.action_net if self.extractor is not None else None

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            x = torch.clamp((obs - self.mean) / self.std, -clip_obs, clip_obs)
            if self.extractor is not None:  # PPO: its features extractor, then the actor
                x = policy.extract_features(x, policy.pi_features_extractor)
                a = self.action_net(self.extractor(x))
            else:  # SAC: deterministic action is tanh(mu)
                latent = self.sac_actor.latent_pi(x)
                a = torch.tanh(self.sac_actor.mu(latent))
            return decode_action(a, action_spec)

    return ExportPolicy().eval()


def _parity_observations(spec: ObsSpec, n: int, rng: np.random.Generator,
                         env_kwargs: dict[str, Any]) -> np.ndarray:
    """Half from real env rollouts (random actions), half uniform within the obs bounds."""
    import gymnasium as gym

    from nav_policy.envs.registration import register_envs

    register_envs()  # the ids, also in a fresh worker process

    kwargs = {k: v for k, v in env_kwargs.items() if k != "randomize"}
    env = gym.make("nav_policy/LocalNav-v0", **kwargs)
    real: list[np.ndarray] = []
    obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
    while len(real) < n // 2:
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        real.append(obs)
        if term or trunc:
            obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
    env.close()
    low, high = spec.bounds()
    uniform = rng.uniform(low, high, size=(n - len(real), spec.size)).astype(np.float32)
    return np.concatenate([np.array(real, dtype=np.float32), uniform])


def export_module(module: Any, md: ModelMetadata, path: str | Path) -> Path:
    """Write `module` (raw codec observation [N, obs_dim] -> cmd [N, 2]) to `path` as ONNX
    with the metadata `md` (codec version, specs, sensor, footprint); checked by onnx."""
    import warnings

    import onnx
    import torch

    path = Path(path)
    dummy = torch.zeros(1, md.obs_spec.size)
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated but exact for MLPs
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, (dummy,), str(path), input_names=["obs"], output_names=["cmd"],
                          dynamic_axes={"obs": {0: "batch"}, "cmd": {0: "batch"}},
                          opset_version=17, dynamo=False)
    onnx_model = onnx.load(str(path))
    for k, v in md.to_props().items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, str(path))
    return path


def export_run(run_dir: str | Path, out: str | Path, checkpoint: str = "best",
               parity_samples: int = 1000, seed: int = 0) -> dict[str, Any]:
    import onnxruntime as ort
    import torch
    from stable_baselines3 import PPO, SAC

    run = Path(run_dir)
    meta = read_meta(run)
    cfg = load_config(run / "config.yaml")
    if checkpoint == "best" and (run / "best_model.zip").exists():
        model_file, norm_file = run / "best_model.zip", run / "best_vecnormalize.pkl"
        best_step = int(float((run / "best.txt").read_text().split()[1]))
    else:
        ck = sorted((run / "checkpoints").glob("step_*.zip"),
                    key=lambda f: int(f.stem.split("_")[1]))
        if not ck:
            raise ModelError(f"{run} has no checkpoint to export")
        model_file = ck[-1]
        if checkpoint == "best":
            import sys

            print(f"note: {run} has no best checkpoint (best_model.zip is written at the first "
                  f"evaluation, eval.every_steps); exporting the last one, {model_file.name}",
                  file=sys.stderr)
        norm_file = model_file.with_name(f"{model_file.stem}_vecnormalize.pkl")
        best_step = int(model_file.stem.split("_")[1])
    best_step += int(meta.get("init_from_steps", 0))  # staged runs count all their steps
    algo = PPO if cfg.algo == "ppo" else SAC
    model = algo.load(model_file, device="cpu")
    norm = _load_norm(norm_file)

    from nav_policy.envs.registration import codec_specs

    spec, action_spec = codec_specs(cfg.env)
    if norm.norm_obs:
        module = _torch_module(model, norm.obs_rms.mean, norm.obs_rms.var, norm.clip_obs,
                               norm.epsilon, action_spec)
    else:  # the network scales its own input (policy_features: proximity)
        module = _torch_module(model, np.zeros(spec.size), np.ones(spec.size), np.inf, 0.0,
                               action_spec)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.onnx")
    robot = load_robot_spec(cfg.env.get("robot"))
    md = ModelMetadata(kind="rl", obs_spec=spec, action_spec=action_spec,
                       codec_version=spec.version, trained_steps=best_step,
                       source_commit=str(meta.get("git_commit")),
                       extra={"algo": cfg.algo, "seed": str(cfg.seed),
                              "control_hz": str(cfg.env.get("control_hz", 10.0)),
                              "output": "cmd = [v m/s, w rad/s]"},
                       sensor=sensor_model(robot.lidar), footprint=robot.footprint)
    export_module(module, md, tmp)

    # parity: ORT graph vs the SB3 policy's own deterministic action, decoded by the codec
    rng = np.random.default_rng(seed)
    obs = _parity_observations(spec, parity_samples, rng, cfg.env)
    sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    got = sess.run(["cmd"], {"obs": obs})[0]
    with torch.no_grad():
        ref_a, _ = model.predict(norm.normalize_obs(obs), deterministic=True)
    ref = decode_action(np.asarray(ref_a, dtype=np.float64), action_spec)
    diff = float(np.max(np.abs(got - ref)))
    if not diff <= PARITY_TOL:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"parity check failed: max abs diff {diff:.2e} > {PARITY_TOL:.0e}")
    try:
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"cannot write {out}: {exc.strerror or exc}") from exc
    report = {"out": str(out), "parity_max_abs_diff": diff, "parity_samples": len(obs),
              "trained_steps": best_step, "checkpoint": str(model_file), "obs_dim": spec.size}
    from nav_policy.export.model_card import write_model_card

    report["model_card"] = str(write_model_card(out, run, report))
    return report


def _load_norm(path: Path) -> Any:
    import pickle

    with open(path, "rb") as f:
        norm = pickle.load(f)
    norm.training = False
    return norm
