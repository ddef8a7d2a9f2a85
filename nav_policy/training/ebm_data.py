"""Expert demonstrations for the energy-based planner: LocalNav-v0 episodes driven by an expert
(classical MPPI / DWA on the robot's sensors, or an exported rl policy on the env's own codec
observation) with DART-style noise injection and recovery bursts, stored as one npz.

Every state is labelled with the expert's clean action, also where the executed action was
perturbed, so the data covers off-nominal states and how to leave them. Observations come from
the env, i.e. the shared codec: the dataset is what local_planner_node feeds the model.

    arrays: obs (N, obs_dim) float32, act (N, 2) float32 normalised expert labels,
            executed (N, 2) the action actually applied, episode (N,) int32, tier (N,) int8
            (index into TIER_NAMES), perturbed (N,) bool, to_collision (N,) int32: control
            steps from the state to the collision that ended its episode (-1 where the episode
            did not end in one; files written before this field load with -1 throughout)
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np

from nav_policy.codecs import encode_action
from nav_policy.sim.generate import KNOWN_TIERS
from nav_policy.training.ebm_config import DAGGER_SEED_STRIDE, TrainEbmConfig

ENV_ID = "nav_policy/LocalNav-v0"
TIER_NAMES = KNOWN_TIERS  # a sample's tier is its index here (new tiers append)


def episode_plan(cfg: TrainEbmConfig, round_: int = 0) -> list[tuple[int, str, int]]:
    """(episode index, tier, world seed) for every episode of collection round `round_` (0: the
    expert's own episodes; r > 0: DAgger round r), drawn from cfg.seed."""
    rng = np.random.default_rng([cfg.seed, round_])
    names = list(cfg.data.tiers)
    w = np.array([cfg.data.tiers[n] for n in names], dtype=float)
    n = cfg.data.episodes if round_ == 0 else cfg.data.dagger_episodes
    tiers = rng.choice(len(names), size=n, p=w / w.sum())
    base = round_ * DAGGER_SEED_STRIDE
    return [(base + i, names[int(t)], cfg.data.world_seed + base + i)
            for i, t in enumerate(tiers)]


def run_expert_episode(cfg: TrainEbmConfig, index: int, tier: str, world_seed: int,
                       env: gym.Env | None = None, driver: Any = None) -> dict[str, np.ndarray]:
    """One episode; arrays for every visited state, each labelled by the expert. The executed
    action is the expert's with DART noise and recovery bursts, or, with a `driver` (a
    LocalPlanner: DAgger), the driver's own."""
    from nav_policy.envs.registration import register_envs

    register_envs()  # the ids, also in a fresh worker process
    from nav_policy.envs.local_nav import LocalNavEnv

    own = env is None
    env = env or gym.make(ENV_ID, **cfg.env)
    base = cast(LocalNavEnv, env.unwrapped)
    rng = np.random.default_rng([cfg.seed, index])
    obs, _ = env.reset(seed=world_seed, options={"tier": tier, "world_seed": world_seed})
    expert = _expert(cfg, base, world_seed)
    if driver is not None:
        driver.reset()
    std = float(rng.uniform(0.0, cfg.data.noise_std_max)) if driver is None else 0.0
    burst = 0
    rows: dict[str, list[Any]] = {k: [] for k in ("obs", "act", "executed", "perturbed")}
    done = False
    while not done:
        frame = base.sensors()
        v, w = expert(frame, obs)
        label = encode_action(v, w, base.action_spec)
        if driver is not None:
            executed = encode_action(*driver.compute(frame), base.action_spec)
        elif burst == 0 and rng.random() < cfg.data.perturb_prob:
            lo, hi = cfg.data.perturb_steps
            burst = int(rng.integers(lo, hi + 1))
            burst_action = rng.uniform(-1.0, 1.0, size=2)
        if driver is not None:
            pass
        elif burst > 0:
            executed = burst_action
            burst -= 1
        else:
            executed = np.clip(label + rng.normal(0.0, std, size=2), -1.0, 1.0)
        rows["obs"].append(obs)
        rows["act"].append(label)
        rows["executed"].append(executed)
        rows["perturbed"].append(burst > 0 or std > 0)
        obs, _, term, trunc, info = env.step(executed.astype(np.float32))
        done = term or trunc
    if own:
        env.close()
    n = len(rows["obs"])
    crashed = bool(info["collision"])
    return {"obs": np.asarray(rows["obs"], np.float32), "act": np.asarray(rows["act"], np.float32),
            "executed": np.asarray(rows["executed"], np.float32),
            "perturbed": np.asarray(rows["perturbed"], bool),
            "episode": np.full(n, index, np.int32),
            "tier": np.full(n, TIER_NAMES.index(tier), np.int8),
            "to_collision": (np.arange(n - 1, -1, -1) if crashed else np.full(n, -1)
                             ).astype(np.int32)}


def _expert(cfg: TrainEbmConfig, base: Any, world_seed: int) -> Any:
    """label(frame, obs) -> (v, w) SI. A classical expert plans on the sensor frame (its own
    state reset per episode); the rl expert is its exported policy applied to the env's codec
    observation, exactly what it was trained and exported on (no state of its own)."""
    from nav_policy.planners import make_planner

    if cfg.data.expert == "rl":
        runtime = _rl_runtime(cfg.data.expert_model, base.obs_spec)
        return lambda frame, obs: tuple(float(x) for x in runtime.act(obs))
    planner = make_planner(cfg.data.expert, robot=base.robot, seed=world_seed)
    planner.reset()
    return lambda frame, obs: planner.compute(frame)


_RL_EXPERTS: dict[str, Any] = {}


def _rl_model_file(model: str) -> Path:
    """The expert file; `models/NAME` falls back to the installed share/ copy."""
    from nav_policy.paths import model_path

    path = Path(model)
    if not path.is_file() and not path.is_absolute() and path.parts[:1] == ("models",):
        path = model_path(str(Path(*path.parts[1:])))
    return path


def _rl_runtime(model: str, obs_spec: Any) -> Any:
    from nav_policy.runtime.session import PolicyRuntime

    if model not in _RL_EXPERTS:  # one session per process
        _RL_EXPERTS[model] = PolicyRuntime(_rl_model_file(model), expect_kind="rl",
                                           obs_spec=obs_spec)
    return _RL_EXPERTS[model]


_WORKER: dict[str, Any] = {}


def _driver(model: str | None) -> Any:
    if not model:
        return None
    from nav_policy.planners.learned import PolicyPlanner

    return PolicyPlanner.from_file(model, expect_kind="ebm")


def _worker_init(cfg_json: str, driver_model: str | None) -> None:
    from nav_policy.envs.registration import register_envs
    from nav_policy.interrupts import ignore_sigint

    register_envs()  # the ids, also in a fresh worker process
    ignore_sigint()  # Ctrl-C is the trainer's to handle (the pool terminates its workers)

    cfg = TrainEbmConfig.model_validate_json(cfg_json)
    _WORKER["cfg"] = cfg
    _WORKER["env"] = gym.make(ENV_ID, **cfg.env)
    _WORKER["driver"] = _driver(driver_model)


def _worker_run(job: tuple[int, str, int]) -> dict[str, np.ndarray]:
    return run_expert_episode(_WORKER["cfg"], *job, env=_WORKER["env"], driver=_WORKER["driver"])


def collect(cfg: TrainEbmConfig, out: Path, progress: bool = True, round_: int = 0,
            driver_model: str | Path | None = None) -> dict[str, Any]:
    """Run every planned episode of round `round_` (cfg.data.workers processes) and write `out`
    (npz); with `driver_model` (an exported ebm ONNX) that model drives (DAgger)."""
    from tqdm import tqdm

    from nav_policy.training.rundir import git_commit

    t0 = time.time()
    jobs = episode_plan(cfg, round_)
    driver_arg = str(driver_model) if driver_model else None
    parts: dict[int, dict[str, np.ndarray]] = {}
    who = f"ebm-driven (DAgger round {round_})" if driver_model else "expert"
    bar = tqdm(total=len(jobs), desc=f"{who} episodes, {cfg.data.expert} labels", unit="ep",
               disable=not progress, dynamic_ncols=True)
    if cfg.data.workers > 1:
        ctx = mp.get_context("spawn")
        from nav_policy.interrupts import sigint_blocked

        with sigint_blocked():  # a Ctrl-C while the workers start would orphan one
            pool = ctx.Pool(cfg.data.workers, initializer=_worker_init,
                            initargs=(cfg.model_dump_json(), driver_arg))
        with pool:
            for part in pool.imap_unordered(_worker_run, jobs):
                parts[int(part["episode"][0])] = part
                bar.update(1)
                bar.set_postfix(samples=sum(len(p["act"]) for p in parts.values()))
    else:
        env = gym.make(ENV_ID, **cfg.env)
        driver = _driver(driver_arg)
        for job in jobs:
            part = run_expert_episode(cfg, *job, env=env, driver=driver)
            parts[job[0]] = part
            bar.update(1)
        env.close()
    bar.close()
    merged = {k: np.concatenate([parts[i][k] for i in sorted(parts)])
              for k in ("obs", "act", "executed", "perturbed", "episode", "tier", "to_collision")}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **merged, tier_names=np.array(TIER_NAMES),
                        expert=np.array(cfg.data.expert))
    report = {"samples": len(merged["act"]), "episodes": len(parts), "path": str(out),
              "round": round_, "driver": driver_arg,
              "wall_s": round(time.time() - t0, 1), "seed": cfg.seed, "git_commit": git_commit(),
              "data": cfg.data.model_dump(mode="json"), "env": cfg.env}
    if cfg.data.expert == "rl":  # which rl file labelled the data
        import hashlib

        report["expert_model_sha256"] = hashlib.sha256(
            _rl_model_file(cfg.data.expert_model).read_bytes()).hexdigest()
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")  # sidecar
    return report


def load_dataset(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a dataset file; DatasetError-like ConfigError with the reason if broken."""
    from nav_policy.errors import ConfigError

    try:
        with np.load(path, allow_pickle=False) as data:
            out = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read dataset {path}: {exc}") from exc
    missing = {"obs", "act", "episode"} - set(out)
    if missing:
        raise ConfigError(f"dataset {path} lacks {', '.join(sorted(missing))}")
    out.setdefault("to_collision", np.full(len(out["act"]), -1, np.int32))
    return out


def action_chunks(act: np.ndarray, episode: np.ndarray, horizon: int) -> np.ndarray:
    """(N, horizon, 2): the expert labels of steps t .. t+horizon-1 of the same episode; past
    an episode's end the last label repeats."""
    n = len(act)
    idx = np.arange(n)[:, None] + np.arange(horizon)[None, :]
    idx = np.minimum(idx, n - 1)
    # stay inside the episode: clamp to its last index
    last = np.zeros(n, dtype=np.int64)
    ends = np.flatnonzero(np.r_[episode[1:] != episode[:-1], True])
    starts = np.r_[0, ends[:-1] + 1]
    for s, e in zip(starts, ends):
        last[s:e + 1] = e
    idx = np.minimum(idx, last[:, None])
    return act[idx]
