"""`nav-policy train dpp`: PPO for the DeceptionGNN on random deceptive planning tasks.

Plain-torch PPO (clipped objective, GAE, value loss, entropy bonus, early stop on KL) with
action masking by the budget guard. ``n_envs`` episodes run side by side in one process
(the ego graphs are small; one batched GNN forward serves all of them).

Run directory (nav_policy.training.rundir): config.yaml, meta.json, command.txt,
checkpoints/last.pt (model, optimiser, step, RNG states; written every
``checkpoint_every_steps``), best.pt (best held-out evaluation), progress.csv, eval.csv.
``--resume RUN_DIR`` continues from checkpoints/last.pt; episodes in flight at the checkpoint
are redrawn (from the restored task RNG).

Truncated episodes (step cap) are treated as terminal in GAE; with the budget guard they do
not occur in practice (the count is logged).
"""

from __future__ import annotations

import csv
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nav_policy.deception.baselines import plan_within_budget
from nav_policy.deception.config import TrainDppConfig, load_dpp_config
from nav_policy.deception.ego import EgoGraph, hops_for_layers
from nav_policy.deception.episode import Episode
from nav_policy.deception.gnn import DeceptionGNN, GraphBatch, collate, masked_logits
from nav_policy.deception.metrics import last_point_completion, ldp, path_cost
from nav_policy.deception.policy import LogitPolicy, TorchPolicy, run_policy
from nav_policy.deception.problem import Problem
from nav_policy.deception.tasks import TaskSampler, make_graph, sample_problem
from nav_policy.errors import ConfigError

PROGRESS_FIELDS = ("step", "episodes", "mean_return", "mean_completion", "mean_cost_ratio",
                   "truncated", "policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac",
                   "steps_per_s")
EVAL_FIELDS = ("step", "success_rate", "within_budget_rate", "rl_completion", "pi_d2_completion",
               "ratio_to_pi_d2")


# ---- rollout storage ----------------------------------------------------------------------
@dataclass
class Buffer:
    obs: list[EgoGraph] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    logp: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    dones: list[bool] = field(default_factory=list)
    env_ids: list[int] = field(default_factory=list)


@dataclass
class EpisodeStats:
    returns: list[float] = field(default_factory=list)
    completions: list[float] = field(default_factory=list)
    cost_ratios: list[float] = field(default_factory=list)
    truncated: int = 0


def gae(buf: Buffer, last_values: np.ndarray, n_envs: int, gamma: float, lam: float
        ) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and returns per transition; transitions are interleaved by env id."""
    rewards = np.asarray(buf.rewards)
    values = np.asarray(buf.values)
    dones = np.asarray(buf.dones, dtype=float)
    env_ids = np.asarray(buf.env_ids)
    adv = np.zeros_like(rewards)
    for e in range(n_envs):
        idx = np.nonzero(env_ids == e)[0]
        next_value, running = float(last_values[e]), 0.0
        for t in idx[::-1]:
            nonterminal = 1.0 - dones[t]
            delta = rewards[t] + gamma * next_value * nonterminal - values[t]
            running = delta + gamma * lam * nonterminal * running
            adv[t] = running
            next_value = values[t]
    return adv, adv + values


# ---- the trainer --------------------------------------------------------------------------
class DppTrainer:
    def __init__(self, cfg: TrainDppConfig, run: Path) -> None:
        self.cfg, self.run = cfg, run
        self.hops = hops_for_layers(cfg.layers)
        self.net = DeceptionGNN(hidden=cfg.hidden, layers=cfg.layers)
        self.optim = torch.optim.Adam(self.net.parameters(), lr=cfg.learning_rate)
        self.rng = np.random.default_rng(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.step = 0
        self.best = -np.inf
        self.task_cfg = cfg.tasks.to_task_config()
        self.rewards = cfg.rewards.to_reward_config()
        self.eval_set = held_out_tasks(cfg)
        self.sampler: TaskSampler | None = None
        self.envs: list[Episode] = []
        self.returns = np.zeros(cfg.n_envs)

    # ---- episodes -----------------------------------------------------------------------
    def new_episode(self) -> Episode:
        assert self.sampler is not None
        return Episode(self.sampler.sample(), self.cfg.mode, self.hops, self.cfg.beta_per_edge,
                       self.cfg.max_nodes, self.cfg.max_actions, self.rewards)

    def start_envs(self) -> None:
        self.sampler = TaskSampler(self.task_cfg, self.rng, self.cfg.tasks.pool_size,
                                   self.cfg.tasks.refresh_prob)
        self.envs = [self.new_episode() for _ in range(self.cfg.n_envs)]
        self.returns = np.zeros(self.cfg.n_envs)

    def act(self, egos: list[EgoGraph]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        batch = collate(egos)
        with torch.no_grad():
            logits, values = self.net.forward_batch(batch)
            dist = torch.distributions.Categorical(logits=masked_logits(logits, batch.cand_mask))
            actions = dist.sample()
            logp = dist.log_prob(actions)
        return actions.numpy(), logp.numpy(), values.numpy()

    def collect(self, stats: EpisodeStats) -> tuple[Buffer, np.ndarray]:
        buf = Buffer()
        for _ in range(self.cfg.n_steps):
            egos = [ep.observe() for ep in self.envs]
            actions, logp, values = self.act(egos)
            for e, ep in enumerate(self.envs):
                reward, term, trunc, _ = ep.step(int(actions[e]))
                self.returns[e] += reward
                buf.obs.append(egos[e])
                buf.actions.append(int(actions[e]))
                buf.logp.append(float(logp[e]))
                buf.values.append(float(values[e]))
                buf.rewards.append(reward)
                buf.dones.append(term or trunc)
                buf.env_ids.append(e)
                if term or trunc:
                    self.record(ep, e, trunc, stats)
                    self.envs[e] = self.new_episode()
        _, _, last_values = self.act([ep.observe() for ep in self.envs])
        return buf, last_values

    def record(self, ep: Episode, e: int, truncated: bool, stats: EpisodeStats) -> None:
        flags = ~ep.problem.truthful() if self.cfg.mode == "ambiguity" else ep.problem.exaggerated()
        stats.returns.append(float(self.returns[e]))
        stats.completions.append(last_point_completion(ep.problem, ep.path, flags)[1])
        stats.cost_ratios.append(ep.spent / ep.problem.optc)
        stats.truncated += int(truncated)
        self.returns[e] = 0.0

    # ---- PPO update ---------------------------------------------------------------------
    def losses(self, batch: GraphBatch, actions: torch.Tensor, old_logp: torch.Tensor,
               adv: torch.Tensor, ret: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        logits, values = self.net.forward_batch(batch)
        dist = torch.distributions.Categorical(logits=masked_logits(logits, batch.cand_mask))
        logp = dist.log_prob(actions)
        ratio = torch.exp(logp - old_logp)
        pg = -torch.min(ratio * adv, torch.clamp(ratio, 1 - cfg.clip_range,
                                                 1 + cfg.clip_range) * adv).mean()
        vloss = ((values - ret) ** 2).mean()
        # entropy only over real choices (masked slots carry ~0 probability)
        ent = dist.entropy().mean()
        loss = pg + cfg.vf_coef * vloss - cfg.ent_coef * ent
        with torch.no_grad():
            kl = float(((ratio - 1) - torch.log(ratio)).mean())
            clip = float(((ratio - 1).abs() > cfg.clip_range).float().mean())
        return loss, {"policy_loss": float(pg.detach()), "value_loss": float(vloss.detach()),
                      "entropy": float(ent.detach()), "approx_kl": kl, "clip_frac": clip}

    def update(self, buf: Buffer, last_values: np.ndarray) -> dict[str, float]:
        cfg = self.cfg
        adv, ret = gae(buf, last_values, cfg.n_envs, cfg.gamma, cfg.gae_lambda)
        n = len(buf.obs)
        actions = torch.as_tensor(buf.actions)
        old_logp = torch.as_tensor(buf.logp, dtype=torch.float32)
        adv_t = torch.as_tensor(adv, dtype=torch.float32)
        ret_t = torch.as_tensor(ret, dtype=torch.float32)
        logs: dict[str, float] = {}
        self.net.train()
        for _ in range(cfg.n_epochs):
            stop = False
            for mb in np.array_split(self.rng.permutation(n), max(1, n // cfg.batch_size)):
                a = adv_t[mb]
                a = (a - a.mean()) / (a.std() + 1e-8)
                loss, logs = self.losses(collate([buf.obs[i] for i in mb]), actions[mb],
                                         old_logp[mb], a, ret_t[mb])
                self.optim.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.max_grad_norm)
                self.optim.step()
                if cfg.target_kl is not None and logs["approx_kl"] > 1.5 * cfg.target_kl:
                    stop = True
                    break
            if stop:
                break
        self.net.eval()
        return logs

    # ---- evaluation and checkpoints -----------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        return evaluate_policy(TorchPolicy(self.net, self.hops, self.cfg.beta_per_edge,
                                           self.cfg.mode), self.eval_set, self.cfg.mode)

    def state(self) -> dict[str, Any]:
        return {"model": self.net.state_dict(), "optim": self.optim.state_dict(),
                "step": self.step, "best": self.best, "np_rng": self.rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(), "config": self.cfg.model_dump(mode="json"),
                "hops": self.hops}

    def save(self, name: str) -> None:
        path = self.run / "checkpoints" / name
        tmp = path.with_suffix(".tmp")
        torch.save(self.state(), tmp)
        tmp.replace(path)

    def load(self, path: Path) -> None:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        self.net.load_state_dict(ck["model"])
        self.optim.load_state_dict(ck["optim"])
        self.step, self.best = int(ck["step"]), float(ck["best"])
        self.rng.bit_generator.state = ck["np_rng"]
        torch.set_rng_state(ck["torch_rng"])

    # ---- main loop ----------------------------------------------------------------------
    def train(self) -> None:
        cfg = self.cfg
        self.start_envs()
        next_ck = (self.step // cfg.checkpoint_every_steps + 1) * cfg.checkpoint_every_steps
        next_eval = (self.step // cfg.eval.every_steps + 1) * cfg.eval.every_steps
        while self.step < cfg.total_steps:
            t0 = time.time()
            stats = EpisodeStats()
            buf, last_values = self.collect(stats)
            logs = self.update(buf, last_values)
            self.step += len(buf.obs)
            self.log_progress(stats, logs, len(buf.obs) / max(time.time() - t0, 1e-9))
            if self.step >= next_eval or self.step >= cfg.total_steps:
                self.run_eval()
                next_eval += cfg.eval.every_steps
            if self.step >= next_ck or self.step >= cfg.total_steps:
                self.save("last.pt")
                next_ck += cfg.checkpoint_every_steps

    def run_eval(self) -> None:
        res = self.evaluate()
        append_csv(self.run / "eval.csv", EVAL_FIELDS, {"step": self.step, **res})
        if res["rl_completion"] > self.best:
            self.best = res["rl_completion"]
            self.save("best.pt")
        print(f"[dpp] step {self.step}: eval completion {res['rl_completion']:.3f} "
              f"(pi_d2 {res['pi_d2_completion']:.3f}), success {res['success_rate']:.2f}",
              file=sys.stderr, flush=True)

    def log_progress(self, stats: EpisodeStats, logs: dict[str, float], sps: float) -> None:
        row = {"step": self.step, "episodes": len(stats.returns),
               "mean_return": _mean(stats.returns), "mean_completion": _mean(stats.completions),
               "mean_cost_ratio": _mean(stats.cost_ratios), "truncated": stats.truncated,
               "steps_per_s": sps, **logs}
        append_csv(self.run / "progress.csv", PROGRESS_FIELDS, row)


def _mean(xs: list[float]) -> float:
    return float(np.mean(xs)) if xs else float("nan")


def append_csv(path: Path, fields: tuple[str, ...], row: dict[str, Any]) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


# ---- held-out evaluation ------------------------------------------------------------------
def held_out_tasks(cfg: TrainDppConfig) -> list[Problem]:
    """Fixed evaluation tasks from cfg.eval.seed (graphs never drawn in training)."""
    rng = np.random.default_rng(cfg.eval.seed)
    task_cfg = cfg.tasks.to_task_config()
    out: list[Problem] = []
    k = 0
    while len(out) < cfg.eval.episodes:
        fam = task_cfg.families[k % len(task_cfg.families)]
        ratio = cfg.eval.budgets[(k // len(task_cfg.families)) % len(cfg.eval.budgets)]
        problem = sample_problem(make_graph(fam, rng), task_cfg, rng, ratio)
        if problem is not None:
            out.append(problem)
        k += 1
    return out


def evaluate_policy(policy: LogitPolicy, problems: list[Problem], mode: str) -> dict[str, float]:
    """Greedy rollouts vs budgeted pi_d2 on the same problems."""
    rl, d2, ok, within = [], [], 0, 0
    for problem in problems:
        roll = run_policy(problem, policy)
        ok += int(roll.path[-1] == problem.goal and not roll.truncated)
        within += int(path_cost(problem.graph, roll.path) <= problem.budget * (1 + 1e-9))
        flags = ~problem.truthful() if mode == "ambiguity" else problem.exaggerated()
        rl.append(last_point_completion(problem, roll.path, flags)[1])
        base = plan_within_budget(problem, "pi_d2").path
        d2.append(ldp(problem, base)[1] if mode == "ambiguity"
                  else last_point_completion(problem, base, flags)[1])
    n = len(problems)
    rl_mean, d2_mean = float(np.mean(rl)), float(np.mean(d2))
    return {"success_rate": ok / n, "within_budget_rate": within / n,
            "rl_completion": rl_mean, "pi_d2_completion": d2_mean,
            "ratio_to_pi_d2": rl_mean / max(d2_mean, 1e-9)}


# ---- entry point --------------------------------------------------------------------------
def train_dpp(config: Path | None, resume: Path | None, runs_root: Path,
              overrides: dict[str, Any] | None = None) -> Path:
    """Train (or resume) a deception policy; returns the run directory."""
    from nav_policy.training.rundir import create_run_dir, read_meta, write_meta

    torch.set_num_threads(1)
    if resume is not None:
        meta = read_meta(resume)
        if meta.get("kind") != "dpp":
            raise ConfigError(f"{resume} is a {meta.get('kind')!r} run, not dpp")
        cfg = load_dpp_config(resume / "config.yaml", overrides)
        run = resume
        if overrides:
            (run / "config.yaml").write_text(_yaml(cfg))
    else:
        cfg = load_dpp_config(config, overrides)
        run = create_run_dir(runs_root, "dpp", cfg.model_dump(mode="json"), cfg.seed)
    trainer = DppTrainer(cfg, run)
    last = run / "checkpoints" / "last.pt"
    if resume is not None and last.exists():
        trainer.load(last)
        print(f"[dpp] resuming {run} at step {trainer.step}", file=sys.stderr)
    t0 = time.time()
    trainer.train()
    wall = time.time() - t0
    prev = float(read_meta(run).get("wall_seconds", 0.0))
    write_meta(run, trained_steps=trainer.step, wall_seconds=round(prev + wall, 1),
               best_eval_completion=trainer.best)
    return run


def _yaml(cfg: TrainDppConfig) -> str:
    import yaml

    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


__all__ = ["DppTrainer", "evaluate_policy", "gae", "held_out_tasks", "train_dpp"]
