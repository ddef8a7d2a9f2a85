"""`nav-policy train local`: SB3 PPO (or SAC) on LocalNav-v0 with a tier curriculum.

Run directory layout (runs/local/<stamp>_seed<S>/):
    config.yaml command.txt meta.json   what ran, from which commit, with which seed
    checkpoints/step_<N>.zip + step_<N>_vecnormalize.pkl
    best_model.zip best_vecnormalize.pkl (best held-out success rate so far)
    eval.csv                            periodic evaluation on fixed held-out world seeds
    tb/                                 TensorBoard logs
"""

from __future__ import annotations

import csv
import re
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from nav_policy.errors import ConfigError
from nav_policy.training.config import TrainLocalConfig, load_config
from nav_policy.training.rundir import (
    TrainingInterrupted,
    create_run_dir,
    read_meta,
    write_meta,
)

ENV_ID = "nav_policy/LocalNav-v0"


def _make_env(env_kwargs: dict[str, Any], rank: int, seed: int):  # type: ignore[no-untyped-def]
    def _init() -> gym.Env:
        from stable_baselines3.common.monitor import Monitor

        from nav_policy.envs.registration import register_envs
        from nav_policy.interrupts import ignore_sigint, in_worker_process

        register_envs()  # the ids, also in a fresh worker process
        if in_worker_process():  # a terminal's Ctrl-C reaches workers too; the trainer stops them
            ignore_sigint()

        env = gym.make(ENV_ID, **env_kwargs)
        env = Monitor(env, info_keywords=("is_success", "collision"))
        env.reset(seed=seed + 1000 * rank)
        return env

    return _init


def evaluate(model: Any, norm: Any, cfg: TrainLocalConfig, tiers: list[str] | None = None,
             episodes: int | None = None) -> dict[str, dict[str, float]]:
    """Deterministic policy on held-out world seeds; success/collision/timeout per tier."""
    from nav_policy.training.evaluation import held_out_rates

    def act(obs: np.ndarray) -> np.ndarray:
        return model.predict(norm.normalize_obs(obs[None]), deterministic=True)[0][0]

    return held_out_rates(cfg.env, tiers or cfg.eval.tiers, episodes or cfg.eval.episodes_per_tier,
                          cfg.eval.seed, act)


class TrainCallback:  # built lazily to keep SB3 imports inside train()
    pass


def _callback_cls():  # type: ignore[no-untyped-def]
    from stable_baselines3.common.callbacks import BaseCallback

    class _Callback(BaseCallback):
        """Curriculum, progress bar with success rate, checkpoints and periodic evaluation."""

        def __init__(self, cfg: TrainLocalConfig, run: Path, start_step: int,
                     target_step: int | None = None) -> None:
            super().__init__()
            self.cfg, self.run = cfg, run
            self.bar = tqdm(total=target_step or cfg.total_steps, initial=start_step, unit="step",
                            dynamic_ncols=True, file=sys.stderr, desc="train local")
            self.recent: list[float] = []
            self.actor_frozen = False
            # finished training episodes per tier (what the curriculum really produced)
            self.tier_counts: dict[str, int] = dict(read_meta(run).get("episodes_by_tier", {}))
            self.stage_start = -1
            self.next_ckpt = (start_step // cfg.checkpoint_every_steps + 1) * cfg.checkpoint_every_steps
            self.next_eval = (start_step // cfg.eval.every_steps + 1) * cfg.eval.every_steps
            self.best = -1.0
            best_file = run / "best.txt"
            if best_file.exists():
                self.best = float(best_file.read_text().split()[0])

        def _apply_curriculum(self) -> None:
            stage = self.cfg.stage_at(self.num_timesteps)
            if stage.start_step != self.stage_start:
                tiers = list(stage.tiers)
                w = np.array([stage.tiers[t] for t in tiers], dtype=float)
                self.training_env.env_method("set_tiers", tiers, list(w / w.sum()))
                self.stage_start = stage.start_step
                tqdm.write(f"curriculum @ {self.num_timesteps}: {stage.tiers}", file=sys.stderr)

        def _on_training_start(self) -> None:
            self._apply_curriculum()
            if self.cfg.bc_init is not None and self.num_timesteps == 0:
                self._evaluate()  # the cloned policy, before any PPO update (step 0)
            if self._warmup_steps() > 0:  # only with bc_init, which needs PPO
                self._freeze_actor(self.num_timesteps < self._warmup_steps())

        def _warmup_steps(self) -> int:
            return self.cfg.bc_init.critic_warmup_steps if self.cfg.bc_init is not None else 0

        def _freeze_actor(self, frozen: bool) -> None:
            """Critic warm-up: the actor's parameters take no gradient (Adam skips them)."""
            policy = self.model.policy
            for p in [*policy.mlp_extractor.policy_net.parameters(),
                      *policy.action_net.parameters(), policy.log_std]:
                p.requires_grad_(not frozen)
            self.actor_frozen = frozen
            if frozen:
                tqdm.write(f"critic warm-up: actor frozen until step {self._warmup_steps()}",
                           file=sys.stderr)

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", []):
                if "episode" in info:
                    self.recent.append(float(info.get("is_success", False)))
                    tier = str(info.get("tier"))
                    self.tier_counts[tier] = self.tier_counts.get(tier, 0) + 1
            self.recent = self.recent[-200:]
            n = self.training_env.num_envs
            self.bar.update(n)
            if self.n_calls % 50 == 0 and self.recent:
                self.bar.set_postfix(success=f"{np.mean(self.recent):.2f}")
            self._apply_curriculum()
            if self.actor_frozen and self.num_timesteps >= self._warmup_steps():
                self._freeze_actor(False)
                tqdm.write(f"critic warm-up done at step {self.num_timesteps}", file=sys.stderr)
            if self.num_timesteps >= self.next_ckpt:
                self._checkpoint()
                self.next_ckpt += self.cfg.checkpoint_every_steps
            if self.num_timesteps >= self.next_eval:
                self._evaluate()
                self.next_eval += self.cfg.eval.every_steps
            return True

        def _checkpoint(self) -> None:
            ck = self.run / "checkpoints"
            step = self.num_timesteps
            self.model.save(ck / f"step_{step}.zip")
            self.model.get_vec_normalize_env().save(str(ck / f"step_{step}_vecnormalize.pkl"))
            write_meta(self.run, trained_steps=step, episodes_by_tier=self.tier_counts)

        def _evaluate(self) -> None:
            norm = self.model.get_vec_normalize_env()
            t0 = time.time()
            res = evaluate(self.model, norm, self.cfg)
            mean_success = float(np.mean([r["success"] for r in res.values()]))
            path = self.run / "eval.csv"
            new = not path.exists()
            with path.open("a", newline="") as f:
                w = csv.writer(f)
                if new:
                    w.writerow(["step", "tier", "success", "collision", "timeout"])
                for tier, r in res.items():
                    w.writerow([self.num_timesteps, tier, r["success"], r["collision"], r["timeout"]])
            for tier, r in res.items():
                self.logger.record(f"eval/{tier}_success", r["success"])
            summary = " ".join(f"{t}={r['success']:.2f}" for t, r in res.items())
            tqdm.write(f"eval @ {self.num_timesteps} ({time.time() - t0:.0f}s): {summary}",
                       file=sys.stderr)
            if mean_success >= self.best:
                self.best = mean_success
                self.model.save(self.run / "best_model.zip")
                norm.save(str(self.run / "best_vecnormalize.pkl"))
                (self.run / "best.txt").write_text(f"{mean_success} {self.num_timesteps}\n")

        def _on_training_end(self) -> None:
            self._checkpoint()
            self.bar.close()

    return _Callback


def _latest_checkpoint(run: Path) -> tuple[Path, Path, int] | None:
    best: tuple[Path, Path, int] | None = None
    for f in (run / "checkpoints").glob("step_*.zip"):
        m = re.fullmatch(r"step_(\d+)\.zip", f.name)
        if m:
            step = int(m.group(1))
            norm = f.with_name(f"step_{step}_vecnormalize.pkl")
            if norm.exists() and (best is None or step > best[2]):
                best = (f, norm, step)
    return best


def _init_from(cfg: TrainLocalConfig, venv: Any, run: Path) -> tuple[Any, Any]:
    """A new run starting from another run's checkpoint, with this config's hyperparameters."""
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.vec_env import VecNormalize

    src = Path(str(cfg.init_from))
    norm = src.with_name(f"{src.stem}_vecnormalize.pkl")
    if src.name == "best_model.zip":
        norm = src.with_name("best_vecnormalize.pkl")
    if not src.is_file() or not norm.is_file():
        raise ConfigError(f"init_from: {src} or its normalisation {norm.name} not found")
    venv = VecNormalize.load(str(norm), venv)
    venv.training, venv.norm_reward = True, True
    algo = PPO if cfg.algo == "ppo" else SAC
    hp = cfg.ppo.model_dump() if cfg.algo == "ppo" else cfg.sac.model_dump()
    lr = float(hp["learning_rate"])
    custom = {**hp, "learning_rate": lr, "lr_schedule": lambda _: lr}
    if cfg.algo == "ppo":
        clip = float(hp["clip_range"])
        custom["clip_range"] = lambda _: clip
    model = algo.load(src, env=venv, device="cpu", custom_objects=custom,
                      tensorboard_log=str(run / "tb"), seed=cfg.seed)
    write_meta(run, init_from=str(src), init_from_steps=int(model.num_timesteps))
    print(f"initialised from {src} ({model.num_timesteps} steps)", file=sys.stderr)
    return model, venv


def behaviour_clone(model: Any, venv: Any, cfg: TrainLocalConfig, run: Path) -> dict[str, float]:
    """Fit the PPO actor's mean action to the expert labels of cfg.bc_init.dataset (MSE in
    normalised action units), after setting the observation normalisation from that data."""
    import torch
    from tqdm import tqdm

    from nav_policy.training.ebm_data import load_dataset

    bc = cfg.bc_init
    assert bc is not None
    files = [bc.dataset] if isinstance(bc.dataset, str) else list(bc.dataset)
    obs_parts, act_parts = [], []
    for file in files:
        data = load_dataset(file)
        if data["obs"].shape[1] != venv.observation_space.shape[0]:
            raise ConfigError(f"bc_init.dataset {file}: observations of width "
                              f"{data['obs'].shape[1]}, the env gives "
                              f"{venv.observation_space.shape[0]}")
        obs_parts.append(data["obs"].astype(np.float64))
        act_parts.append(data["act"].astype(np.float32))
    obs, act = np.concatenate(obs_parts), np.concatenate(act_parts)
    if venv.norm_obs:  # else the network scales its own input (policy_features)
        venv.obs_rms.mean, venv.obs_rms.var = obs.mean(0), obs.var(0)
        venv.obs_rms.count = float(len(obs))
    x = torch.as_tensor(venv.normalize_obs(obs).astype(np.float32))
    y = torch.as_tensor(act)
    policy = model.policy
    params = [*policy.mlp_extractor.policy_net.parameters(), *policy.action_net.parameters()]
    opt = torch.optim.Adam(params, lr=bc.learning_rate)
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(x)

    def mse_all() -> float:
        with torch.no_grad():
            features = policy.extract_features(x, policy.pi_features_extractor)
            mean = policy.action_net(policy.mlp_extractor.forward_actor(features))
            return float(torch.nn.functional.mse_loss(mean, y))

    initial = mse_all()
    bar = tqdm(range(bc.epochs), desc="behaviour cloning", unit="ep", file=sys.stderr,
               dynamic_ncols=True)
    for _ in bar:
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for b0 in range(0, n, bc.batch_size):
            idx = perm[b0:b0 + bc.batch_size]
            features = policy.extract_features(x[idx], policy.pi_features_extractor)
            mean = policy.action_net(policy.mlp_extractor.forward_actor(features))
            loss = torch.nn.functional.mse_loss(mean, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        bar.set_postfix(mse=f"{total / n:.4f}")
    with torch.no_grad():
        policy.log_std.fill_(bc.log_std)
    final = mse_all()
    write_meta(run, bc_init={"dataset": files, "samples": n, "epochs": bc.epochs,
                             "initial_mse": round(initial, 5), "final_mse": round(final, 5)})
    return {"initial_mse": initial, "mse": final, "samples": float(n)}


def train_local(config: str | Path | None = None, resume: str | Path | None = None,
                runs_root: str | Path = "runs", overrides: dict[str, Any] | None = None) -> Path:
    """Train (or resume) a local planner; returns the run directory."""
    import torch
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.vec_env import (
        DummyVecEnv,
        SubprocVecEnv,
        VecNormalize,
    )

    from nav_policy.envs.registration import check_env_kwargs

    if resume:
        run = Path(resume)
        meta = read_meta(run)
        cfg = load_config(run / "config.yaml", overrides)
        ckpt = _latest_checkpoint(run)
        if ckpt is None:
            raise ConfigError(f"{run} has no checkpoint to resume from")
        if not _resume_target(run, cfg, ckpt[2], overrides):
            return run
    else:
        if config is None:
            raise ConfigError("train local needs --config FILE or --resume RUN_DIR")
        cfg = load_config(config, overrides)
        check_env_kwargs(cfg.env, f"config {config}")  # before the run folder and any worker
        run = create_run_dir(runs_root, "local", cfg.model_dump(), cfg.seed)
        meta, ckpt = read_meta(run), None
    print(f"run directory: {run}", file=sys.stderr)
    torch.set_num_threads(1)
    env_kwargs = dict(cfg.env)
    first = cfg.stage_at(ckpt[2] if ckpt else 0)  # the first episodes come from the curriculum too
    tiered = {**env_kwargs, "tier": list(first.tiers), "tier_weights": list(first.tiers.values())}
    fns = [_make_env(tiered, r, cfg.seed) for r in range(cfg.n_envs)]
    from nav_policy.interrupts import sigint_blocked

    with sigint_blocked():  # a Ctrl-C while the workers start would orphan one
        if cfg.vec_env == "batched" and cfg.n_envs > 1:
            import os

            from nav_policy.envs.vec import BatchedSubprocVecEnv

            workers = min(cfg.n_envs, cfg.vec_workers or os.cpu_count() or 1)
            venv = BatchedSubprocVecEnv(fns, workers)
        elif cfg.vec_env == "subproc" and cfg.n_envs > 1:
            venv = SubprocVecEnv(fns)
        else:
            venv = DummyVecEnv(fns)
    start_step = 0
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU}[cfg.activation]
    if ckpt is not None:
        model_file, norm_file, start_step = ckpt
        venv = VecNormalize.load(str(norm_file), venv)
        algo = PPO if cfg.algo == "ppo" else SAC
        model = algo.load(model_file, env=venv, device="cpu")
        print(f"resuming {run} from step {start_step}", file=sys.stderr)
    elif cfg.init_from:
        model, venv = _init_from(cfg, venv, run)
    else:
        venv = VecNormalize(venv, norm_obs=cfg.policy_features == "raw", norm_reward=True,
                            clip_obs=10.0, gamma=cfg.ppo.gamma)
        policy_kwargs = {"net_arch": list(cfg.net_arch), "activation_fn": act}
        if cfg.policy_features == "proximity":
            from nav_policy.envs.registration import codec_specs
            from nav_policy.policies.features import proximity_extractor_class

            policy_kwargs["features_extractor_class"] = proximity_extractor_class()
            policy_kwargs["features_extractor_kwargs"] = {
                "sectors": codec_specs(env_kwargs)[0].sectors, "scale": cfg.proximity_scale}
        if cfg.algo == "ppo":
            policy_kwargs["net_arch"] = {"pi": list(cfg.net_arch), "vf": list(cfg.net_arch)}
            model = PPO("MlpPolicy", venv, seed=cfg.seed, device="cpu", verbose=0,
                        tensorboard_log=str(run / "tb"), policy_kwargs=policy_kwargs,
                        **cfg.ppo.model_dump())
            if cfg.bc_init is not None:
                behaviour_clone(model, venv, cfg, run)
        else:
            model = SAC("MlpPolicy", venv, seed=cfg.seed, device="cpu", verbose=0,
                        tensorboard_log=str(run / "tb"), policy_kwargs=policy_kwargs,
                        **cfg.sac.model_dump())
    t0 = time.time()
    remaining = cfg.total_steps - start_step
    target = start_step + rounded_steps(cfg, remaining)
    if target != cfg.total_steps:
        chunk = cfg.ppo.n_steps * cfg.n_envs if cfg.algo == "ppo" else cfg.n_envs
        what = (f"PPO collects rollouts of n_steps x n_envs = {cfg.ppo.n_steps} x {cfg.n_envs} = "
                if cfg.algo == "ppo" else f"SAC steps {cfg.n_envs} envs at once: multiples of ")
        print(f"note: {what}{chunk} steps, so total_steps {cfg.total_steps} trains to step "
              f"{target}", file=sys.stderr)
    stopped = False
    callback = _callback_cls()(cfg, run, start_step, target)
    try:
        model.learn(total_timesteps=remaining, callback=callback,
                    reset_num_timesteps=ckpt is None, tb_log_name="run")
    except KeyboardInterrupt:  # Ctrl-C: keep what was learnt, resumable with --resume
        from nav_policy.interrupts import hold_interrupts

        hold_interrupts("saving the checkpoint")
        stopped = True
        callback.bar.close()  # the message below gets its own line
        ck = run / "checkpoints"
        model.save(ck / f"step_{model.num_timesteps}.zip")
        model.get_vec_normalize_env().save(
            str(ck / f"step_{model.num_timesteps}_vecnormalize.pkl"))
        print(f"\ninterrupted: checkpoint saved at step {model.num_timesteps}; resume with: "
              f"nav-policy train local --resume {run}", file=sys.stderr)
    wall = float(meta.get("wall_time_s", 0.0)) + time.time() - t0
    write_meta(run, wall_time_s=round(wall, 1), trained_steps=int(model.num_timesteps),
               **({"stopped_early_at": int(model.num_timesteps)} if stopped else {}))
    _close_quietly(venv, interrupted=stopped)
    if stopped:
        raise TrainingInterrupted(run, int(model.num_timesteps))
    return run


def rounded_steps(cfg: TrainLocalConfig, steps: int) -> int:
    """The steps SB3 really trains for `steps` requested: whole PPO rollouts (n_steps x n_envs),
    or whole vectorised SAC steps (n_envs)."""
    chunk = cfg.ppo.n_steps * cfg.n_envs if cfg.algo == "ppo" else cfg.n_envs
    return -(-max(steps, 0) // chunk) * chunk


def _resume_target(run: Path, cfg: TrainLocalConfig, trained: int,
                   overrides: dict[str, Any] | None) -> bool:
    """Whether a resumed run has steps left; with --total-steps the run's config is extended
    (config.yaml rewritten, so later resumes keep the new total). False: nothing to do (said)."""
    import yaml

    if overrides and set(overrides) - {"total_steps"}:
        raise ConfigError(f"--resume keeps the run's config; only --total-steps can change "
                          f"(got {', '.join(sorted(overrides))})")
    asked = (overrides or {}).get("total_steps")
    if asked is not None:
        if asked <= trained:
            raise ConfigError(f"--total-steps {asked}: {run} has already trained {trained} steps; "
                              f"give more than {trained} to extend it")
        (run / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(), sort_keys=False))
        print(f"extending {run} from step {trained} to total_steps {asked}", file=sys.stderr)
        return True
    if trained >= cfg.total_steps:
        print(f"nothing to train: {run} is at step {trained}, its total_steps is "
              f"{cfg.total_steps}; add --total-steps N (N > {trained}) to train further",
              file=sys.stderr)
        return False
    return True


def _close_quietly(venv: Any, interrupted: bool = False) -> None:
    """Close the vectorised env. After Ctrl-C the worker pipes may hold half-read replies (the
    interrupt can land between two workers' answers), so the workers are terminated instead of
    asked: a polite close would wait forever."""
    import contextlib

    inner = venv
    while not hasattr(inner, "processes") and hasattr(inner, "venv"):
        inner = inner.venv
    if interrupted and hasattr(inner, "processes"):
        for p in inner.processes:
            if p.is_alive():
                p.terminate()
        for p in inner.processes:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(1)
        inner.closed = True
        return
    with contextlib.suppress(EOFError, BrokenPipeError, ConnectionResetError, OSError):
        venv.close()
