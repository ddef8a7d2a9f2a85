"""`nav-policy train ebm`: expert data -> energy model trained by unrolled gradient descent.

Stages, all in one run directory (resumable with --resume RUN_DIR):
1. dataset.npz from the expert (nav_policy.training.ebm_data), unless data.dataset names one;
2. epochs over the dataset: per batch draw K in [k_min, k_max], unroll K steps of
   a <- clip(a - alpha grad_a E(o, a), -1, 1) from the learned start (Langevin noise, cosine
   annealed, in training only), loss = mean over the K steps of the squared distance to the expert
   chunk (gradients flow through every step: second order), plus infonce_weight x IBC's InfoNCE
   of the expert chunk against counter-examples (uniform and perturbed chunks);
3. every eval.every_epochs: closed-loop success on held-out worlds with the inference that is
   exported (same module, torch), checkpoints, eval.csv; the best by mean success is kept.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nav_policy.codecs import encode_action
from nav_policy.envs.registration import check_env_kwargs, codec_specs
from nav_policy.errors import ConfigError
from nav_policy.training.ebm_config import (
    TrainEbmConfig,
    build_energy_model,
    load_ebm_config,
)
from nav_policy.training.ebm_data import action_chunks, collect, load_dataset
from nav_policy.training.rundir import create_run_dir, read_meta, write_meta


def split_episodes(episode: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation samples: whole episodes, drawn from `seed`."""
    ids = np.unique(episode)
    if len(ids) < 2:
        raise ConfigError(f"the dataset holds {len(ids)} episode(s): training needs at least 2, "
                          "whole episodes being split between training and validation")
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(fraction * len(ids))))
    val_ids = rng.choice(ids, size=n_val, replace=False)
    return np.isin(episode, val_ids)


def infonce(model: Any, feat: Any, target: Any, n_neg: int, gen: Any) -> Any:
    """IBC InfoNCE: -log softmax(-E) of the expert chunk among `n_neg` counter-examples (half
    uniform in [-1, 1], half the expert chunk plus N(0, 0.3) noise)."""
    import torch

    b, d = target.shape
    n_uni = n_neg // 2
    uni = torch.rand(b, n_uni, d, generator=gen) * 2 - 1
    near = torch.clamp(target[:, None] + 0.3 * torch.randn(b, n_neg - n_uni, d, generator=gen),
                       -1, 1)
    cand = torch.cat([target[:, None], uni, near], dim=1)  # (B, 1 + n_neg, d)
    e = model.energy(feat[:, None].expand(-1, cand.shape[1], -1).reshape(-1, feat.shape[-1]),
                     cand.reshape(-1, d)).reshape(b, -1)
    return torch.nn.functional.cross_entropy(-e, torch.zeros(b, dtype=torch.long))


def cosine(frac: float, floor: float) -> float:
    """1 at frac 0, `floor` at frac 1, cosine in between (learning rate, Langevin noise)."""
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * frac))


def corrupt_observations(obs: Any, low: Any, high: Any, std: Any, sigma_max: float,
                         gen: Any) -> Any:
    """Generic off-distribution negatives for the density term, one per observation, clipped
    to the codec's bounds (so they are observations the node could be given):
    - first half: additive Gaussian noise on a random subset of features (each sample keeps a
      fraction drawn in U[0, 1]), sigma log-uniform in [0.05, sigma_max] dataset stds;
    - second half: a random subset of features (fraction U[0, 1]) each taken from another
      random sample of the batch (the joint structure broken, the marginals kept).
    Nothing here is drawn from the evaluation's corruptions (metric lidar noise with dropout,
    the unseen world, uniform random observations)."""
    import torch

    b, d = obs.shape
    keep = torch.rand(b, 1, generator=gen)
    mask = torch.rand(b, d, generator=gen) < keep
    log_s = torch.empty(b, 1).uniform_(math.log(0.05), math.log(sigma_max), generator=gen)
    gauss = obs + mask * log_s.exp() * std * torch.randn(b, d, generator=gen)
    other = obs.gather(0, torch.randint(0, b, (b, d), generator=gen))
    shuffled = torch.where(torch.rand(b, d, generator=gen) < keep, other, obs)
    first = (torch.arange(b) < b // 2).unsqueeze(-1)
    return torch.clamp(torch.where(first, gauss, shuffled), low, high)


def density_loss(model: Any, obs: Any, feat: Any, a_hat: Any, alpha: Any, k: int, low: Any,
                 high: Any, sigma_max: float, gen: Any, risky: Any = None,
                 momentum: float = 0.0) -> Any:
    """Logistic loss with the energy at the inferred action as the logit: softplus(E) on the
    data (energy pushed below 0), softplus(-E) on corrupted observations at the action the
    same inference reaches from them (pushed above 0). The published energy is thereby a
    learned log-odds of 'not from the data'; its gradient in the action is left to the
    unrolled loss (the actions here are constants). `risky` (bool per sample, optional): data
    states shortly before a collision, moved from the positives to the negatives."""
    import torch

    from nav_policy.policies.ebm import unroll

    bad = corrupt_observations(obs, low, high, model.obs_std, sigma_max, gen)
    feat_bad = model.obs_features(bad)
    with torch.no_grad():
        a_bad = unroll(model, feat_bad.detach(), alpha.detach(), k, momentum=momentum)[-1]
    e_data = model.energy(feat, a_hat.detach())
    e_out = model.energy(feat_bad, a_bad)
    e_in = e_data
    if risky is not None and risky.any():
        e_in, e_out = e_data[~risky], torch.cat([e_out, e_data[risky]])
    sp = torch.nn.functional.softplus
    inside = sp(e_in).mean() if len(e_in) else e_data.sum() * 0.0  # a batch of risky states only
    return 0.5 * (inside + sp(-e_out).mean())


def crash_action_loss(model: Any, feat: Any, expert: Any, executed: Any) -> Any:
    """softplus(E(o, a*) - E(o, a_exec)) on states before a collision: the executed chunk that
    led there is to have a higher energy than the expert's, so that minimising the energy
    steers away from it."""
    import torch

    return torch.nn.functional.softplus(
        model.energy(feat, expert) - model.energy(feat, executed)).mean()


def evaluate_closed_loop(policy: Any, cfg: TrainEbmConfig, tiers: list[str] | None = None,
                         episodes: int | None = None, seed: int | None = None
                         ) -> dict[str, dict[str, float]]:
    """Success / collision / timeout per tier of `policy(obs) -> (v, w)` on held-out worlds
    (deterministic, no sensor noise)."""
    from nav_policy.codecs import ActionSpec
    from nav_policy.training.evaluation import held_out_rates

    spec = ActionSpec()
    return held_out_rates(cfg.env, tiers or cfg.eval.tiers, episodes or cfg.eval.episodes_per_tier,
                          cfg.eval.seed if seed is None else seed,
                          lambda obs: encode_action(*policy(obs), spec))


def torch_policy(model: Any, alpha: float, cfg: TrainEbmConfig, energy_high: float = math.inf
                 ) -> Any:
    """obs -> (v, w) through EbmInference (the module that is exported)."""
    import torch

    from nav_policy.codecs import ActionSpec
    from nav_policy.policies.ebm import EbmInference, InferenceSettings

    inf = EbmInference(model, alpha, InferenceSettings(
        cfg.inference.steps, cfg.inference.max_steps, cfg.inference.grad_eps, energy_high,
        cfg.train.momentum), ActionSpec())

    def act(obs: np.ndarray) -> tuple[float, float]:
        with torch.no_grad():
            cmd = inf(torch.as_tensor(obs, dtype=torch.float32)[None])[0][0]
        return float(cmd[0]), float(cmd[1])

    return act


def _load_or_collect(cfg: TrainEbmConfig, run: Path) -> tuple[dict[str, np.ndarray], Path]:
    path = Path(cfg.data.dataset) if cfg.data.dataset else run / "dataset.npz"
    if not path.is_file():
        if cfg.data.dataset:
            raise ConfigError(f"data.dataset {path} not found")
        report = collect(cfg, path)
        write_meta(run, dataset=report, dataset_wall_time_s=report["wall_s"])
    elif "dataset" not in read_meta(run):  # reused: record how it was made (its sidecar)
        side = path.with_suffix(".json")
        report = json.loads(side.read_text()) if side.is_file() else {"path": str(path)}
        write_meta(run, dataset=report, dataset_wall_time_s=report.get("wall_s"))
    return load_dataset(path), path


def train_ebm(config: str | Path | None = None, resume: str | Path | None = None,
              runs_root: str | Path = "runs", overrides: dict[str, Any] | None = None,
              progress: bool = True, collect_only: bool = False,
              export_driver: Callable[[Path, Path], Any] | None = None) -> Path:
    """Train (or resume) an ebm run; returns its run directory.

    `export_driver(run, onnx_path)` writes the model that drives each DAgger round (the command
    line passes nav_policy.export.ebm_export's exporter: training sits below export in the
    package layers, so it takes the exporter as an argument instead of importing it). A config
    with DAgger rounds and no exporter is refused before anything is collected.
    """
    import torch
    from tqdm import tqdm

    from nav_policy.policies.ebm import unroll

    if resume:
        run = Path(resume)
        if read_meta(run).get("kind") != "ebm":
            raise ConfigError(f"{run} is not an ebm run")
        cfg = load_ebm_config(run / "config.yaml", overrides)
    else:
        cfg = load_ebm_config(config, overrides)
        check_env_kwargs(cfg.env, f"config {config}")  # before the run folder and any worker
    if cfg.data.dagger_rounds > 0 and export_driver is None and not collect_only:
        raise ConfigError(f"data.dagger_rounds = {cfg.data.dagger_rounds} needs an exporter for "
                          "the DAgger driver: run `nav-policy train ebm`, or pass export_driver")
    if not resume:
        run = create_run_dir(runs_root, "ebm", cfg.model_dump(mode="json"), cfg.seed)
    print(f"run directory: {run}", file=sys.stderr)
    data, data_path = _load_or_collect(cfg, run)
    write_meta(run, dataset_file=str(data_path))
    if collect_only:  # demonstrations only (e.g. for rl's bc_init.dataset); --resume trains on
        return run
    t_start = time.time()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    h = cfg.model.horizon
    datasets = [data]

    risky_t: Any = None
    exec_t: Any = None

    def tensors() -> tuple[Any, Any, Any, Any]:
        nonlocal risky_t, exec_t
        obs = np.concatenate([d["obs"] for d in datasets])
        episode = np.concatenate([d["episode"] for d in datasets])
        chunks = np.concatenate([action_chunks(d["act"], d["episode"], h) for d in datasets])
        chunks = chunks.reshape(len(obs), 2 * h)
        to_col = np.concatenate([d["to_collision"] for d in datasets])
        risky = (to_col >= 0) & (to_col < cfg.train.risk_steps)
        val = split_episodes(episode, cfg.train.val_fraction, cfg.seed)
        risky_t = torch.as_tensor(risky[~val])
        if cfg.train.crash_action_weight > 0:  # the executed chunks (what led to the crash)
            if any("executed" not in d for d in datasets):
                raise ConfigError("train.crash_action_weight needs datasets with the executed "
                                  "actions (collected by this version)")
            ex = np.concatenate([action_chunks(d["executed"], d["episode"], h)
                                 for d in datasets]).reshape(len(obs), 2 * h)
            exec_t = torch.as_tensor(ex[~val])
        return (torch.as_tensor(obs[~val]), torch.as_tensor(chunks[~val]),
                torch.as_tensor(obs[val]), torch.as_tensor(chunks[val]))

    obs_t, tgt_t, obs_v, tgt_v = tensors()
    model = build_energy_model(cfg, obs_t.shape[1])
    model.set_normalisation(obs_t.mean(0), obs_t.std(0))  # from the expert's data, kept after
    log_alpha = torch.nn.Parameter(torch.tensor(math.log(cfg.train.alpha_init)))
    opt = torch.optim.Adam([*model.parameters(), log_alpha], lr=cfg.train.learning_rate,
                           weight_decay=cfg.train.weight_decay)
    start_epoch, best, updates = 0, {"score": -1.0, "epoch": -1}, 0
    last = run / "checkpoints" / "last.pt"
    if resume and last.is_file():
        ck = torch.load(last, weights_only=False)
        model.load_state_dict(ck["model"])
        log_alpha.data.fill_(ck["log_alpha"])
        opt.load_state_dict(ck["optimizer"])
        start_epoch, best, updates = ck["epoch"] + 1, ck["best"], ck["updates"]
    e0, ed, rounds = cfg.train.epochs, cfg.data.dagger_epochs, cfg.data.dagger_rounds
    total_epochs = e0 + rounds * ed

    def round_of(epoch: int) -> int:
        return 0 if epoch < e0 else 1 + (epoch - e0) // ed

    def ensure_round(r: int) -> None:
        """DAgger round r: the latest model drives, the expert labels, the data grows."""
        path = run / f"dataset_dagger{r}.npz"
        if not path.is_file():
            driver = run / f"dagger_driver_r{r}.onnx"
            assert export_driver is not None  # checked before training starts
            export_driver(run, driver)
            report = collect(cfg, path, progress=progress, round_=r, driver_model=driver)
            write_meta(run, **{f"dagger_round_{r}": report})
        datasets.append(load_dataset(path))

    for r in range(1, round_of(start_epoch) + 1) if start_epoch < total_epochs else ():
        ensure_round(r)
    if len(datasets) > 1:
        obs_t, tgt_t, obs_v, tgt_v = tensors()
    bs = cfg.train.batch_size
    low_np, high_np = codec_specs(cfg.env)[0].bounds()
    low_t, high_t = torch.as_tensor(low_np), torch.as_tensor(high_np)
    total_updates = max(updates, 1) + sum(
        math.ceil(len(obs_t) / bs) for _ in range(start_epoch, total_epochs))
    eval_csv = run / "eval.csv"
    bar = tqdm(total=total_epochs, initial=start_epoch, desc="ebm epochs", unit="ep",
               disable=not progress, dynamic_ncols=True)
    for epoch in range(start_epoch, total_epochs):
        if round_of(epoch) > len(datasets) - 1:
            ensure_round(round_of(epoch))
            obs_t, tgt_t, obs_v, tgt_v = tensors()
        n = len(obs_t)
        model.train()
        perm = torch.randperm(n, generator=gen)
        sums = {"loss": 0.0, "mse": 0.0, "nce": 0.0, "density": 0.0, "crash": 0.0}
        for b0 in range(0, n, bs):
            idx = perm[b0:b0 + bs]
            k = int(rng.integers(cfg.train.k_min, cfg.train.k_max + 1))
            frac = min(updates / max(total_updates - 1, 1), 1.0)
            noise = cfg.train.langevin_std * cosine(frac, 0.01)
            feat = model.obs_features(obs_t[idx])
            steps = unroll(model, feat, log_alpha.exp(), k, noise, cfg.train.momentum)
            mse = torch.stack([((a - tgt_t[idx]) ** 2).mean() for a in steps]).mean()
            loss = mse
            if cfg.train.energy_anchor_weight > 0:
                anchor = (model.energy(feat, tgt_t[idx]) ** 2).mean()
                loss = loss + cfg.train.energy_anchor_weight * anchor
            risky = risky_t[idx]
            if cfg.train.density_weight > 0:
                den = density_loss(model, obs_t[idx], feat, steps[-1], log_alpha.exp(), k,
                                   low_t, high_t, cfg.train.density_sigma_max, gen,
                                   risky if cfg.train.risk_steps > 0 else None,
                                   cfg.train.momentum)
                loss = loss + cfg.train.density_weight * den
                sums["density"] += den.item() * len(idx)
            if cfg.train.crash_action_weight > 0 and bool(risky.any()):
                r = idx[risky]
                crash = crash_action_loss(model, feat[risky], tgt_t[r], exec_t[r])
                loss = loss + cfg.train.crash_action_weight * crash
                sums["crash"] += crash.item() * len(r)  # logged per sample of the epoch
            if cfg.train.infonce_weight > 0:
                nce = infonce(model, feat, tgt_t[idx], cfg.train.counter_examples, gen)
                loss = loss + cfg.train.infonce_weight * nce
                sums["nce"] += nce.item() * len(idx)
            if cfg.train.lr_schedule == "cosine":
                for group in opt.param_groups:
                    group["lr"] = cfg.train.learning_rate * cosine(frac, 0.05)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*model.parameters(), log_alpha], 10.0)
            opt.step()
            updates += 1
            sums["loss"] += loss.item() * len(idx)
            sums["mse"] += mse.item() * len(idx)
        stats = {k: v / n for k, v in sums.items()}
        val_stats = validate(model, log_alpha.exp().item(), cfg, obs_v, tgt_v)
        row: dict[str, Any] = {"epoch": epoch, "updates": updates, "alpha": log_alpha.exp().item(),
                               **stats, **val_stats}
        is_eval = (epoch + 1) % cfg.eval.every_epochs == 0 or epoch + 1 == total_epochs \
            or round_of(epoch + 1) != round_of(epoch)
        row["round"] = round_of(epoch)
        row["samples"] = n
        if is_eval:
            model.eval()
            res = evaluate_closed_loop(torch_policy(model, log_alpha.exp().item(), cfg), cfg)
            score = float(np.mean([r["success"] for r in res.values()]))
            row.update({f"{t}_success": r["success"] for t, r in res.items()})
            row.update({f"{t}_collision": r["collision"] for t, r in res.items()})
            row["mean_success"] = score
            ck = {"model": model.state_dict(), "log_alpha": log_alpha.item(), "epoch": epoch,
                  "updates": updates, "eval": res, "val": val_stats, "config": cfg.model_dump(mode="json")}
            torch.save(ck, run / "checkpoints" / f"epoch_{epoch:03d}.pt")
            if score > best["score"]:
                best = {"score": score, "epoch": epoch, "eval": res}
                torch.save(ck, run / "best.pt")
        torch.save({"model": model.state_dict(), "log_alpha": log_alpha.item(), "epoch": epoch,
                    "optimizer": opt.state_dict(), "best": best, "updates": updates,
                    "val": val_stats}, last)
        _append_csv(eval_csv, row)
        bar.update(1)
        bar.set_postfix(mse=f"{stats['mse']:.4f}", val=f"{val_stats['val_first_mse']:.4f}",
                        success=f"{row.get('mean_success', float('nan')):.2f}")
    bar.close()
    previous = float(read_meta(run).get("train_wall_time_s", 0.0)) if resume else 0.0
    write_meta(run, dataset_file=str(data_path), samples=len(obs_t), updates=updates, best=best,
               train_wall_time_s=round(time.time() - t_start + previous, 1))
    return run


def validate(model: Any, alpha: float, cfg: TrainEbmConfig, obs: Any, target: Any
             ) -> dict[str, float]:
    """Inference as exported (default steps, no noise) on held-out episodes: squared error of the
    first step and of the whole chunk, and the energy quantiles."""
    import torch

    from nav_policy.codecs import ActionSpec
    from nav_policy.policies.ebm import EbmInference, InferenceSettings

    inf = EbmInference(model, alpha, InferenceSettings(cfg.inference.steps, cfg.inference.steps,
                                                       cfg.inference.grad_eps,
                                                       momentum=cfg.train.momentum), ActionSpec())
    model.eval()
    with torch.no_grad():
        _, e, _, chunk = inf(obs)
        chunk = chunk.reshape(len(obs), -1)
    return {"val_first_mse": float(((chunk[:, :2] - target[:, :2]) ** 2).mean()),
            "val_chunk_mse": float(((chunk - target) ** 2).mean()),
            "val_energy_p50": float(torch.quantile(e, 0.5)),
            "val_energy_high": float(torch.quantile(e, cfg.inference.energy_quantile))}


def _append_csv(path: Path, row: dict[str, Any]) -> None:
    rows = []
    if path.is_file():
        with open(path) as f:
            rows = list(csv.DictReader(f))
    rows.append({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def summary(run: Path) -> dict[str, Any]:
    return json.loads((run / "meta.json").read_text())
