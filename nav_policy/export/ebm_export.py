"""Export an ebm run to ONNX: normalisation, the energy network, its analytic action gradient
and the unrolled inference steps in one graph (nav_policy.policies.ebm.EbmInference).

    input  obs    float32 [N, obs_dim]  raw codec observation
    input  steps, max_steps  float32 scalars, optional (defaults inside the file)
    output cmd    float32 [N, 2]        (v m/s, w rad/s) of the chunk's first step
           energy float32 [N]           E(o, a) of the returned chunk (the uncertainty)
           steps_used float32 [N]       gradient steps applied (early stop, dynamic compute)
           chunk  float32 [N, H, 2]     the whole chunk, normalised

Parity: ORT vs the torch module on `parity_samples` observations (half from the run's own
data, half uniform in the observation bounds): on samples that took the same number of steps,
max abs diff of cmd over 1e-4 (m/s, rad/s) or a relative energy diff over 1e-4 fails, and so
do more than 0.5 % of samples taking a different number of steps (an energy on the gate).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from nav_policy.codecs import ActionSpec
from nav_policy.errors import ConfigError, ModelError
from nav_policy.runtime.metadata import ModelMetadata, sensor_model
from nav_policy.sim.robot import load_robot_spec
from nav_policy.training.rundir import read_meta

PARITY_TOL = 1e-4  # m/s and rad/s, after up to 8 unrolled float32 gradient steps
OUTPUTS = ["cmd", "energy", "steps_used", "chunk"]


def load_checkpoint(run: Path, checkpoint: str = "best") -> tuple[Any, float, dict[str, Any]]:
    """(EnergyModel, alpha, checkpoint dict) of a run."""
    import torch

    from nav_policy.training.ebm_config import build_energy_model, load_ebm_config

    path = run / "best.pt" if checkpoint == "best" else run / "checkpoints" / "last.pt"
    if not path.is_file():
        raise ModelError(f"{run} has no {checkpoint} checkpoint ({path.name})")
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg = load_ebm_config(run / "config.yaml")
    sd = ck["model"]
    model = build_energy_model(cfg, int(sd["obs_mean"].shape[0]))
    model.load_state_dict(sd)
    model.eval()
    return model, float(np.exp(ck["log_alpha"])), ck


def build_inference(run: Path, checkpoint: str = "best", steps: int | None = None,
                    max_steps: int | None = None) -> tuple[Any, dict[str, Any]]:
    """The EbmInference module of a run with its settings (energy_high from validation)."""
    from nav_policy.policies.ebm import EbmInference, InferenceSettings
    from nav_policy.training.ebm_config import load_ebm_config

    cfg = load_ebm_config(run / "config.yaml")
    model, alpha, ck = load_checkpoint(run, checkpoint)
    k = cfg.inference.steps if steps is None else steps
    cap = max(cfg.inference.max_steps, k) if max_steps is None else max_steps
    settings = InferenceSettings(steps=k, max_steps=cap, grad_eps=cfg.inference.grad_eps,
                                 energy_high=float(ck["val"]["val_energy_high"]),
                                 momentum=cfg.train.momentum)
    try:
        module = EbmInference(model, alpha, settings, ActionSpec()).eval()
    except ValueError as exc:
        raise ConfigError(f"{run}: steps={k}, max_steps={cap}: {exc}") from exc
    return module, {
        "alpha": alpha, "settings": settings, "checkpoint": ck, "config": cfg}


def export_ebm_run(run_dir: str | Path, out: str | Path, checkpoint: str = "best",
                   parity_samples: int = 1000, seed: int = 0, steps: int | None = None,
                   max_steps: int | None = None) -> dict[str, Any]:
    import onnx
    import onnxruntime as ort
    import torch

    from nav_policy.training.ebm_data import load_dataset

    run = Path(run_dir)
    meta = read_meta(run)
    module, info = build_inference(run, checkpoint, steps, max_steps)
    cfg, s, ck = info["config"], info["settings"], info["checkpoint"]
    from nav_policy.envs.registration import codec_specs

    spec, action_spec = codec_specs(cfg.env)
    if action_spec != module.action_spec:
        raise ModelError(f"{run}: env action spec {action_spec} differs from the model's")
    if spec.size != module.model.obs_dim:
        raise ModelError(f"{run}: model input {module.model.obs_dim} but the codec gives {spec.size}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.onnx")
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated but exact here
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, spec.size), *module.defaults()), str(tmp),
                          input_names=["obs", "steps", "max_steps"], output_names=OUTPUTS,
                          dynamic_axes={k: {0: "batch"} for k in ["obs", *OUTPUTS]},
                          opset_version=17, dynamo=False)
    model = onnx.load(str(tmp))
    # steps / max_steps: optional inputs, their defaults stored as initialisers of the same name
    from onnx import numpy_helper

    for name, value in zip(("steps", "max_steps"), module.defaults()):
        model.graph.initializer.append(numpy_helper.from_array(
            np.array(float(value), dtype=np.float32), name))
    trained = int(ck["updates"])
    robot = load_robot_spec(cfg.env.get("robot"))
    md = ModelMetadata(kind="ebm", obs_spec=spec, action_spec=action_spec,
                       codec_version=spec.version, trained_steps=trained,
                       source_commit=str(meta.get("git_commit")),
                       extra={"seed": str(cfg.seed), "control_hz": str(cfg.env.get("control_hz", 10.0)),
                              "ebm.steps": str(s.steps), "ebm.max_steps": str(s.max_steps),
                              "ebm.iterations": str(module.iterations),
                              "ebm.alpha": f"{info['alpha']:.6g}", "ebm.grad_eps": str(s.grad_eps),
                              "ebm.energy_high": f"{s.energy_high:.6g}",
                              "ebm.horizon": str(cfg.model.horizon),
                              "ebm.momentum": str(s.momentum),
                              "trained_steps_unit": "gradient updates",
                              "output": "cmd = [v m/s, w rad/s], energy, steps, chunk"},
                       sensor=sensor_model(robot.lidar), footprint=robot.footprint)
    for k, v in md.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp))

    rng = np.random.default_rng(seed)
    data = load_dataset(meta.get("dataset_file") or run / "dataset.npz")
    real = data["obs"][rng.choice(len(data["obs"]), size=parity_samples // 2,
                                  replace=len(data["obs"]) < parity_samples // 2)]
    low, high = spec.bounds()
    uni = rng.uniform(low, high, size=(parity_samples - len(real), spec.size))
    obs = np.concatenate([real, uni]).astype(np.float32)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # the overridable-initialiser notice is expected here
    sess = ort.InferenceSession(str(tmp), sess_options=opts, providers=["CPUExecutionProvider"])
    got = sess.run(OUTPUTS, {"obs": obs})
    with torch.no_grad():
        ref = [t.numpy() for t in module(torch.as_tensor(obs))]
    # Float32 rounding differs between ORT and torch; through up to 8 gradient steps it stays
    # far below a velocity anyone could measure, but a sample whose energy sits on energy_high
    # can take the extra steps in one and not the other: compare samples that took the same
    # number of steps, and allow only a few gate flips.
    same = got[2] == ref[2]
    flips = int((~same).sum())
    diff = float(np.max(np.abs(got[0][same] - ref[0][same]))) if same.any() else float("inf")
    ediff = float(np.max(np.abs(got[1][same] - ref[1][same]) / (1.0 + np.abs(ref[1][same])))) \
        if same.any() else float("inf")
    if not (diff <= PARITY_TOL and ediff <= 1e-4 and flips <= 0.005 * len(obs)):
        tmp.unlink(missing_ok=True)
        raise ModelError(f"parity check failed: cmd max abs diff {diff:.2e} (tolerance "
                         f"{PARITY_TOL:.0e}), energy rel diff {ediff:.2e}, {flips} of "
                         f"{len(obs)} samples took a different number of steps")
    tmp.replace(out)
    report = {"out": str(out), "parity_max_abs_diff": diff, "parity_energy_rel_diff": ediff,
              "parity_step_flips": flips,
              "parity_samples": len(obs), "trained_steps": trained, "epoch": int(ck["epoch"]),
              "eval": ck.get("eval"), "val": ck.get("val"), "alpha": info["alpha"],
              "steps": s.steps, "max_steps": s.max_steps, "obs_dim": spec.size,
              "energy_high": s.energy_high}
    report["model_card"] = str(write_ebm_card(out, run, report))
    return report


def _expert_text(data_cfg: dict[str, Any], dataset: dict[str, Any]) -> str:
    if data_cfg.get("expert") == "rl":
        sha = str(dataset.get("expert_model_sha256", "?"))[:12]
        return (f"rl: `{data_cfg.get('expert_model')}` (sha256 {sha}...) on the env's codec "
                "observation")
    return f"{data_cfg.get('expert')} (goal only, same sensors as the student)"


def _features_text(model_cfg: dict[str, Any]) -> str:
    if model_cfg.get("features", "raw") != "proximity":
        return " on the standardised codec vector"
    return (" on the standardised codec vector plus exp(-(r - range_min) / "
            f"{model_cfg.get('proximity_scale', 0.25)} m) per lidar sector (proximity features)")


def _training_terms(train: dict[str, Any], updates: Any) -> list[str]:
    """The model card's description of the loss terms a run trained with."""
    terms = [f"{train['epochs']} epochs", f"{updates} gradient updates to the exported checkpoint",
             f"K in [{train['k_min']}, {train['k_max']}]",
             f"InfoNCE weight {train['infonce_weight']}"]
    if train.get("density_weight", 0):
        risk = (f", states < {train['risk_steps']} steps before a collision as negatives"
                if train.get("risk_steps", 0) else "")
        terms.append(f"observation density term weight {train['density_weight']} (corruptions "
                     f"up to {train.get('density_sigma_max', 1.0)} std{risk})")
    if train.get("momentum", 0):
        terms.append(f"Nesterov momentum {train['momentum']} (in the graph too)")
    if train.get("crash_action_weight", 0):
        terms.append(f"crash-action term weight {train['crash_action_weight']}")
    return terms


def _eval_curve(run: Path) -> list[dict[str, str]]:
    import csv

    path = run / "eval.csv"
    if not path.is_file():
        return []
    with path.open() as f:
        return [r for r in csv.DictReader(f) if r.get("mean_success")]


def write_ebm_card(out: Path, run: Path, report: dict[str, Any]) -> Path:
    """models/NAME.md: config, seed, data, steps, wall time, held-out evaluation, parity."""
    import yaml

    meta = read_meta(run)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    command = (run / "command.txt").read_text().strip() if (run / "command.txt").exists() else "?"
    first, _, rest = command.partition(" ")
    data = meta.get("dataset") or {}
    lines = [
        f"# {out.stem}", "",
        "Energy-based local planner (kind `ebm`): E(o, a) over a chunk of "
        f"{cfg['model']['horizon']} (v, w) steps, MLP {cfg['model']['hidden']} with SiLU"
        f"{_features_text(cfg['model'])}; inference = {report['steps']} gradient steps from a learned start (up to "
        f"{report['max_steps']} where the energy is above {report['energy_high']:.4g}), "
        f"alpha {report['alpha']:.4g}, all inside the ONNX graph. Exported by `nav-policy export` "
        f"from `{run.name}` (epoch {report['epoch']}).", "",
        "| field | value |", "|---|---|",
        f"| command | `{Path(first).name} {rest}` |",
        f"| seed | {cfg.get('seed')} |",
        f"| expert | {_expert_text(cfg['data'], data)}, "
        f"{cfg['data']['episodes']} episodes, DART noise std <= {cfg['data']['noise_std_max']}, "
        f"recovery bursts p={cfg['data']['perturb_prob']} |",
        f"| dataset | {data.get('samples', meta.get('samples', '?'))} samples, collected in "
        f"{meta.get('dataset_wall_time_s', '?')} s (seed {data.get('seed', '?')}, commit "
        f"`{data.get('git_commit', '?')}`) |",
        f"| training | {', '.join(_training_terms(cfg['train'], report['trained_steps']))}"
        + (f", then {cfg['data']['dagger_rounds']} DAgger rounds ("
           f"{cfg['data'].get('dagger_episodes')} model-driven episodes labelled by the expert, "
           f"{cfg['data'].get('dagger_epochs')} epochs each)"
           if cfg["data"].get("dagger_rounds") else ", no DAgger")
        + f"; {meta.get('train_wall_time_s', '?')} s of training (with its evaluations"
        + (" and DAgger collection" if cfg["data"].get("dagger_rounds") else "")
        + ") after the dataset |",
        f"| commit | `{meta.get('git_commit', '?')}` |",
        f"| parity (ORT vs torch, {report['parity_samples']} obs) | cmd max abs diff "
        f"{report['parity_max_abs_diff']:.2e}, energy rel diff {report['parity_energy_rel_diff']:.2e}, "
        f"{report['parity_step_flips']} step-count flips |",
        f"| inputs | `obs` float32 [N, {report['obs_dim']}] (codec v1, raw SI); optional `steps`, "
        "`max_steps` |",
        "| outputs | `cmd` [N, 2] (v m/s, w rad/s), `energy` [N], `steps_used` [N], `chunk` [N, H, 2] |",
        ""]
    curve = _eval_curve(run)
    if curve:
        lines += ["## Training curve (eval.csv: evaluations only)", "",
                  "| epoch | DAgger round | samples | val first-step MSE | mean held-out success |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['epoch']} | {r.get('round', '0')} | {r.get('samples', '?')} | "
                  f"{float(r['val_first_mse']):.4f} | {float(r['mean_success']):.3f} |"
                  for r in curve]
        lines.append("")
    ev = report.get("eval") or {}
    if ev:
        lines += ["## Held-out evaluation at the exported checkpoint", "",
                  f"Closed loop, deterministic, no sensor noise, world seeds "
                  f"{cfg['eval']['seed']}+i ({cfg['eval']['episodes_per_tier']} per tier), never "
                  "used in training.", "", "| tier | success | collision | timeout |",
                  "|---|---|---|---|"]
        lines += [f"| {t} | {r['success']:.2f} | {r['collision']:.2f} | {r['timeout']:.2f} |"
                  for t, r in ev.items()]
        lines.append("")
    lines += ["The side-by-side benchmark (rl, ebm, dwa, mppi in one run) and the energy study "
              "(steps curve, uncertainty, energy gate, recovery) are in experiments/NOTES.md.", ""]
    card = out.with_suffix(".md")
    card.write_text("\n".join(lines))
    return card
