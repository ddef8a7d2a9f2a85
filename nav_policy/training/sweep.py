"""`nav-policy train local --seeds 0,1,2 [--ray ADDRESS|auto|local]`: one run per seed.

Layout (runs/local_seeds/<stamp>/):
    sweep.json          config, seeds, total steps, command, and where each seed's run is
    seed<S>/local/<stamp>_seed<S>/   that seed's ordinary run directory (train_local's layout)
    summary.json summary.md          per seed: selection-split success, steps, wall time; the
                                     best seed

Seeds run as Ray tasks (`--ray local` starts a Ray instance on this machine, `auto` joins the
running cluster, anything else is a cluster address) or one after another in this process
without --ray. Each seed's run is resumable: `--resume runs/local_seeds/<stamp>` continues every
unfinished seed from its latest checkpoint, starts the seeds that have none, skips finished ones.

The best seed is picked by the selection split: the periodic evaluation of the run (config
`eval`: world seeds eval.seed + i, never trained on, the ones train_local keeps
best_model.zip by), never by the benchmark's held-out test worlds (bench seeds), which stay
untouched until the chosen model is benchmarked once. A seed whose run never evaluated gets
one evaluation of its last checkpoint on the same split.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

from nav_policy.errors import ConfigError
from nav_policy.training.config import load_config


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' or '0-3' (inclusive) -> seeds; ConfigError on anything else."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part and not part.startswith("-"):
                lo, hi = part.split("-", 1)
                seeds += list(range(int(lo), int(hi) + 1))
            elif part:
                seeds.append(int(part))
        except ValueError as exc:
            raise ConfigError(f"--seeds: {part!r} is not a seed (use e.g. 0,1,2 or 0-3)") from exc
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError(f"--seeds {text!r}: need distinct non-negative seeds")
    return seeds


def _seed_run(sweep: Path, seed: int) -> Path | None:
    """The seed's newest run directory that has a checkpoint (None: start a new run)."""
    runs = sorted((sweep / f"seed{seed}" / "local").glob(f"*_seed{seed}"))
    with_ckpt = [r for r in runs if any((r / "checkpoints").glob("step_*.zip"))]
    return with_ckpt[-1] if with_ckpt else None


def train_one_seed(sweep: str, seed: int, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Train (or resume, or skip when finished) one seed of a sweep; its summary row."""
    from nav_policy.training.local_rl import train_local
    from nav_policy.training.rundir import read_meta

    root = Path(sweep)
    info = json.loads((root / "sweep.json").read_text())
    config = root / "config.yaml"
    total = int(info["total_steps"])
    run = _seed_run(root, seed)
    t0 = time.time()
    if run is None:
        run = train_local(config, None, root / f"seed{seed}", {**(overrides or {}), "seed": seed})
    elif int(read_meta(run).get("trained_steps", 0)) < total:
        run = train_local(None, run, root / f"seed{seed}")
    return _summarise(run, seed, time.time() - t0)


def _summarise(run: Path, seed: int, wall: float) -> dict[str, Any]:
    from nav_policy.training.rundir import read_meta

    meta = read_meta(run)
    row: dict[str, Any] = {"seed": seed, "run": str(run),
                           "trained_steps": int(meta.get("trained_steps", 0)),
                           "wall_time_s": float(meta.get("wall_time_s", wall))}
    best = run / "best.txt"
    if best.exists():
        success, step = best.read_text().split()[:2]
        row |= {"selection_success": float(success), "selection_step": int(step),
                "model": str(run / "best_model.zip")}
    else:  # never evaluated (a short run): evaluate the last checkpoint on the same split
        row |= _evaluate_last(run)
    evals = run / "eval.csv"
    if evals.exists():
        with evals.open() as f:
            rows = list(csv.DictReader(f))
        last = max((int(r["step"]) for r in rows), default=None)
        if last is not None:
            row["last_eval"] = {r["tier"]: float(r["success"]) for r in rows
                                if int(r["step"]) == last}
    return row


def _evaluate_last(run: Path) -> dict[str, Any]:
    import numpy as np
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.vec_env import VecNormalize

    from nav_policy.training.local_rl import _latest_checkpoint, evaluate

    cfg = load_config(run / "config.yaml")
    ckpt = _latest_checkpoint(run)
    if ckpt is None:
        return {"selection_success": None, "selection_step": None, "model": None}
    model_file, norm_file, step = ckpt
    model = (PPO if cfg.algo == "ppo" else SAC).load(model_file, device="cpu")
    norm = VecNormalize.load(str(norm_file), _dummy_venv(cfg))
    norm.training = False
    res = evaluate(model, norm, cfg)
    return {"selection_success": float(np.mean([r["success"] for r in res.values()])),
            "selection_step": step, "model": str(model_file)}


def _dummy_venv(cfg: Any) -> Any:
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    from nav_policy.envs.registration import register_envs

    register_envs()  # the ids, also in a Ray worker
    kw = {k: v for k, v in cfg.env.items() if k != "randomize"}
    return DummyVecEnv([lambda: gym.make("nav_policy/LocalNav-v0", **kw)])


def train_seeds(config: str | Path | None, seeds: list[int] | None, ray: str | None = None,
                runs_root: str | Path = "runs", overrides: dict[str, Any] | None = None,
                resume: str | Path | None = None) -> Path:
    """Train every seed (on Ray when `ray` is given); returns the sweep directory."""
    if resume is not None:
        root = Path(resume)
        try:
            info = json.loads((root / "sweep.json").read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{root} is not a seed sweep directory (sweep.json: {exc})") from exc
        seeds = [int(s) for s in info["seeds"]]
        overrides = info.get("overrides") or None
    else:
        if config is None:
            raise ConfigError("train local --seeds needs --config FILE or --resume SWEEP_DIR")
        if not seeds:
            raise ConfigError("train local --seeds needs at least one seed")
        cfg = load_config(config, overrides)  # validated before anything starts
        root = Path(runs_root) / "local_seeds" / time.strftime("%Y%m%d-%H%M%S")
        root.mkdir(parents=True, exist_ok=False)
        (root / "config.yaml").write_text(Path(config).read_text())
        (root / "sweep.json").write_text(json.dumps(
            {"config": str(config), "seeds": seeds, "total_steps": cfg.total_steps,
             "overrides": overrides or {}, "command": " ".join(sys.argv),
             "ray": ray}, indent=2) + "\n")
    assert seeds is not None
    rows = _run_all(root, seeds, overrides, ray)
    _write_summary(root, rows)
    return root


def _run_all(root: Path, seeds: list[int], overrides: dict[str, Any] | None,
             address: str | None) -> list[dict[str, Any]]:
    if not address:
        return [train_one_seed(str(root), s, overrides) for s in seeds]
    from nav_policy.distributed import import_ray, ray_start

    ray = import_ray()
    import os

    started = ray_start(ray, address, num_cpus=os.cpu_count() or 1)
    try:
        task = ray.remote(num_cpus=1)(train_one_seed)
        refs = [task.remote(str(root), s, overrides) for s in seeds]
        rows = []
        for s, ref in zip(seeds, refs):
            try:
                rows.append(ray.get(ref))
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if getattr(exc, "cause", None) else exc
                raise ConfigError(f"seed {s} failed on Ray: {cause}") from exc
        return rows
    finally:
        if started:
            ray.shutdown()


def _write_summary(root: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    scored = [r for r in rows if r.get("selection_success") is not None]
    best = max(scored, key=lambda r: (r["selection_success"], -r["seed"])) if scored else None
    summary = {"sweep": str(root), "selection": "the runs' periodic evaluation split (config "
               "eval: seeds eval.seed + i), not the benchmark's held-out test worlds",
               "best_seed": best["seed"] if best else None,
               "best_model": best.get("model") if best else None, "seeds": rows}
    (root / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = ["| seed | selection success | at step | trained steps | wall s | run |",
             "|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        s = r.get("selection_success")
        lines.append(f"| {r['seed']}{' (best)' if best and r is best else ''} | "
                     f"{'-' if s is None else f'{s:.2f}'} | {r.get('selection_step') or '-'} | "
                     f"{r['trained_steps']} | {r['wall_time_s']:.0f} | {r['run']} |")
    (root / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), file=sys.stderr)
    return summary
