"""The energy-based planner's own questions, measured on the shipped model file:

    python experiments/ebm_study.py --model models/local_ebm.onnx --episodes 20 --seed 0 \\
        --json experiments/data/ebm_study.json --plot docs/ebm_study.png

1. steps:       success / collision / compute per tier vs inference steps (1, 2, 4, 8): do 2 suffice?
2. gate:        hard and dynamic tiers, the energy-gated speed cap on (at each of
                `--gate-factors`) vs off (same model, same episodes): collisions and success;
   handover:    the same episodes with DWA driving the ticks where the energy is high (a gate
                that changes the action instead of the speed);
   precollision: does the energy rise in the last second before the model's own collisions
                (AUROC vs its other states on those tiers)? What a gate needs;
3. uncertainty: the model's energy on training-like observations (held-out episodes of the
                tiers it was trained on, `--seen-tiers`, no noise) vs the same states with heavy
                lidar noise and dropout, vs a world never trained on (sim/worlds/home.yaml), vs
                random observations, vs the tiers left out of training (if any); AUROC of
                energy as an out-of-distribution score;
4. recovery:    from near-collision states (the robot first driven straight at its nearest
                obstacle until it is within `--near` m of it, then braked to a standstill), the
                fraction of episodes each planner (ebm, rl, and mppi as the reference) still
                finishes, with no collision.

Episode i of a tier uses world seed S + i (as nav-policy bench). Everything runs through the
ONNX file in onnxruntime (steps via the file's optional `steps`/`max_steps` inputs).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np

from nav_policy.codecs import encode_action, encode_observation, initial_prev_action
from nav_policy.envs.local_nav import LocalNavEnv
from nav_policy.envs.registration import LOCAL_NAV_ID
from nav_policy.errors import WorldError
from nav_policy.planners.evaluate import run_episode, summarise
from nav_policy.planners.learned import PolicyPlanner

TIERS = ("easy", "medium", "hard", "dynamic")


def _bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, dynamic_ncols=True, file=sys.stderr)


def _tier_rows(env: gym.Env, planner: Any, tiers: tuple[str, ...], episodes: int, seed: int,
               keys: tuple[str, ...], bar: Any) -> tuple[dict[str, Any], list[Any]]:
    """Episodes seed .. seed + episodes - 1 of each tier with `planner`: {tier: the summary's
    `keys`}, and the episodes."""
    rows: dict[str, Any] = {}
    every: list[Any] = []
    for tier in tiers:
        eps = []
        for i in range(episodes):
            eps.append(run_episode(env, planner, tier, seed + i, with_path=False))
            bar.update(1)
        s = summarise(eps)
        rows[tier] = {key: s[key] for key in keys}
        rows[tier]["outcomes"] = "".join(e.outcome[0] for e in eps)  # s / c / t, episode i
        every += eps
    return rows, every


def collisions_vs_ungated(result: dict[str, Any]) -> dict[str, Any]:
    """Per gate setting (and the handover) and tier, against the ungated model on the same worlds:
    collisions `avoided` (ungated collided, this did not), `added` (the reverse) and the exact
    sign test's p on those two counts."""
    from nav_policy.bench.report import sign_test_p

    base = result.get("gate", {}).get("ungated")
    if not base:
        return {}
    rows = {k: v for k, v in result["gate"].items() if k != "ungated"}
    if "handover" in result:
        rows["handover"] = result["handover"]
    out: dict[str, Any] = {}
    for name, row in rows.items():
        out[name] = {}
        for tier in ("hard", "dynamic"):
            a, b = base[tier]["outcomes"], row[tier]["outcomes"]
            avoided = sum(x == "c" and y != "c" for x, y in zip(a, b))
            added = sum(y == "c" and x != "c" for x, y in zip(a, b))
            out[name][tier] = {"avoided": avoided, "added": added,
                               "p_value": sign_test_p(avoided, added)}
    return out


GATE_KEYS = ("success_rate", "collision_rate", "timeout_rate", "success_steps_mean")


def steps_curve(model: Path, episodes: int, seed: int, progress: bool) -> dict[str, Any]:
    cap = PolicyPlanner.from_file(model, expect_kind="ebm").iterations
    ks = [k for k in (1, 2, 4, 8) if k <= cap]
    env = gym.make(LOCAL_NAV_ID)
    out: dict[str, Any] = {}
    bar = _bar(len(ks) * len(TIERS) * episodes, "steps curve", progress)
    for k in ks:
        planner = PolicyPlanner.from_file(model, expect_kind="ebm", energy_gate=False,
                                          steps=k, max_steps=k)  # run_episode resets it
        out[str(k)], _ = _tier_rows(env, planner, TIERS, episodes, seed,
                                    ("success_rate", "collision_rate", "compute_us_p50",
                                     "compute_us_p99"), bar)
    bar.close()
    env.close()
    return out


class EnergyHandover:
    """The ebm planner, with a classical planner taking over for the ticks where the energy is
    above the file's energy_high (a gate that changes the action instead of capping speed)."""

    def __init__(self, model: Path, fallback: str, robot: Any, seed: int = 0) -> None:
        from nav_policy.planners import make_planner

        self.ebm = PolicyPlanner.from_file(model, expect_kind="ebm", energy_gate=False)
        self.fallback = make_planner(fallback, robot=robot, seed=seed)
        self.handovers = 0

    def reset(self) -> None:
        self.ebm.reset()
        self.fallback.reset()

    def compute(self, frame: Any) -> tuple[float, float]:
        v, w = self.ebm.compute(frame)
        if self.ebm.last_info.get("high_energy"):
            self.handovers += 1
            v, w = self.fallback.compute(frame)
            self.ebm.prev_action = encode_action(v, w, self.ebm.action_spec)
        return v, w


def gate_study(model: Path, episodes: int, seed: int, progress: bool,
               factors: tuple[float, ...] = (0.5,),
               thresholds: tuple[float | None, ...] = (None,)) -> dict[str, Any]:
    """Hard and dynamic episodes with the gate off, then on at each speed factor (v capped to
    factor x v_max where the energy is above the threshold; 0: only turning in place) and each
    threshold (None: the file's energy_high)."""
    env = gym.make(LOCAL_NAV_ID)
    out: dict[str, Any] = {}
    settings: list[tuple[float, float | None] | None] = [
        None, *((f, x) for x in thresholds for f in factors)]
    bar = _bar(len(settings) * 2 * episodes, "energy gate", progress)
    for setting in settings:
        planner = PolicyPlanner.from_file(model, expect_kind="ebm",
                                          energy_gate=setting is not None,
                                          energy_speed_factor=setting[0] if setting else 0.0)
        if setting is not None and setting[1] is not None:
            planner.energy_high = setting[1]
        row, _ = _tier_rows(env, planner, ("hard", "dynamic"), episodes, seed, GATE_KEYS, bar)
        if setting is None:
            out["ungated"] = row
        else:
            key = f"speed_factor_{setting[0]:g}"
            out[key if setting[1] is None else f"{key}_above_{setting[1]:g}"] = row
    bar.close()
    env.close()
    return out


def handover_study(model: Path, episodes: int, seed: int, progress: bool,
                   fallback: str = "dwa") -> dict[str, Any]:
    """Hard and dynamic episodes with `fallback` driving the ticks where the energy is high."""
    env = gym.make(LOCAL_NAV_ID)
    planner = EnergyHandover(model, fallback, cast(LocalNavEnv, env.unwrapped).robot, seed)
    out: dict[str, Any] = {"fallback": fallback}
    bar = _bar(2 * episodes, f"handover to {fallback}", progress)
    rows, eps = _tier_rows(env, planner, ("hard", "dynamic"), episodes, seed, GATE_KEYS, bar)
    out.update(rows)
    out["handover_share"] = planner.handovers / max(sum(len(e.compute_s) for e in eps), 1)
    bar.close()
    env.close()
    return out


def split_before_collision(energies: list[float], collided: bool, horizon: int
                           ) -> tuple[list[float], list[float]]:
    """(the last `horizon` values if the episode ended in a collision, the rest); steps without
    an energy (NaN: the codec refused the frame) are left out of both."""
    cut = max(len(energies) - horizon, 0) if collided else len(energies)

    def keep(xs: list[float]) -> list[float]:
        return [x for x in xs if math.isfinite(x)]

    return keep(energies[cut:]), keep(energies[:cut])


def precollision_study(model: Path, episodes: int, seed: int, progress: bool,
                       horizon: int = 10) -> dict[str, Any]:
    """Does the energy rise ahead of the model's own collisions? The model drives (gate off)
    the hard and dynamic episodes; per step its energy is recorded; AUROC of the states within
    `horizon` control steps of a collision against every other state of those episodes, and the
    share of each above energy_high (what the gate acts on)."""
    env = gym.make(LOCAL_NAV_ID)
    base = cast(LocalNavEnv, env.unwrapped)
    planner = PolicyPlanner.from_file(model, expect_kind="ebm", energy_gate=False)
    before: list[float] = []
    other: list[float] = []
    crashes = 0
    bar = _bar(2 * episodes, "energy before collisions", progress)
    for tier in ("hard", "dynamic"):
        for i in range(episodes):
            env.reset(seed=seed + i, options={"tier": tier, "world_seed": seed + i})
            planner.reset()
            energies, done, info = [], False, {}
            while not done:
                act = encode_action(*planner.compute(base.sensors()), base.action_spec)
                energies.append(float(planner.last_info.get("energy", math.nan)))
                _, _, term, trunc, info = env.step(act)
                done = term or trunc
            b, o = split_before_collision(energies, bool(info.get("collision")), horizon)
            crashes += bool(info.get("collision"))
            before += b
            other += o
            bar.update(1)
    bar.close()
    env.close()
    e_b, e_o = np.asarray(before), np.asarray(other)
    return {"horizon_steps": horizon, "episodes": 2 * episodes, "collisions": crashes,
            "n_before": len(e_b), "n_other": len(e_o),
            "above_energy_high_before": float(np.mean(e_b > planner.energy_high))
            if len(e_b) else None,
            "above_energy_high_other": float(np.mean(e_o > planner.energy_high))
            if len(e_o) else None,
            "auroc": auroc(e_o, e_b) if len(e_b) and len(e_o) else None}


def _energies(planner: PolicyPlanner, frames: list[Any]) -> np.ndarray:
    """Energies of (frame, previous action) pairs, as the node would encode them."""
    obs = np.stack([encode_observation(f, prev, planner.spec) for f, prev in frames])
    return np.asarray(planner.runtime.run(obs.astype(np.float32))[1], dtype=np.float64)


def _noisy(frame: Any, rng: np.random.Generator) -> Any:
    from dataclasses import replace

    r = np.asarray(frame.ranges, dtype=np.float64).copy()
    finite = np.isfinite(r)
    r[finite] = np.clip(r[finite] + rng.normal(0, 0.15, finite.sum()), 0.12, 3.5)
    r[rng.random(r.shape) < 0.25] = np.inf
    return replace(frame, ranges=r)


def _frames_along(env: gym.Env, planner: Any, tier: str, world_seed: int,
                  every: int = 5) -> list[Any]:
    """(frame, previous action) every `every` steps of a generated episode driven by `planner`."""
    env.reset(seed=world_seed, options={"tier": tier, "world_seed": world_seed})
    return _drive(env, planner, every)


def _drive(env: gym.Env, planner: Any, every: int) -> list[Any]:
    """Drive the episode already reset to its end; (frame, previous action) every `every` steps."""
    base = cast(LocalNavEnv, env.unwrapped)
    planner.reset()
    frames, done, t, prev = [], False, 0, initial_prev_action()
    while not done:
        frame = base.sensors()
        if t % every == 0:
            frames.append((frame, prev))
        prev = encode_action(*planner.compute(frame), base.action_spec)
        _, _, term, trunc, _ = env.step(prev)
        done, t = term or trunc, t + 1
    return frames


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(energy of an outside sample > energy of an inside one) (ties count half)."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([inside, outside]))  # average ranks: ties count half
    r_out = ranks[len(inside):].sum()
    n_in, n_out = len(inside), len(outside)
    return float((r_out - n_out * (n_out + 1) / 2) / (n_in * n_out))


def uncertainty_study(model: Path, episodes: int, seed: int, progress: bool,
                      home_world: Path, seen_tiers: tuple[str, ...] = TIERS) -> dict[str, Any]:
    """Energies of training-like states (held-out worlds of the tiers the model was trained on,
    `seen_tiers`) vs sensor noise, an unseen world, random observations, and, where
    `seen_tiers` leaves tiers out, the states of those unseen tiers."""
    from nav_policy.planners import make_planner

    env = gym.make(LOCAL_NAV_ID)
    planner = PolicyPlanner.from_file(model, expect_kind="ebm", energy_gate=False)
    rng = np.random.default_rng(seed)
    by_tier: dict[str, list[Any]] = {}
    bar = _bar(len(TIERS) * episodes, "uncertainty", progress)
    for tier in TIERS:  # states the expert visits on held-out worlds
        by_tier[tier] = []
        for i in range(episodes):
            expert = make_planner("mppi", robot=cast(LocalNavEnv, env.unwrapped).robot,
                                  seed=seed + i)
            by_tier[tier] += _frames_along(env, expert, tier, seed + i)
            bar.update(1)
    bar.close()
    inside = [f for t in seen_tiers for f in by_tier[t]]  # training-like
    e_tier = {t: _energies(planner, by_tier[t]) for t in TIERS}
    e_in = np.concatenate([e_tier[t] for t in seen_tiers])
    e_unseen = np.concatenate([np.zeros(0)] + [e_tier[t] for t in TIERS if t not in seen_tiers])
    e_noisy = _energies(planner, [(_noisy(f, rng), prev) for f, prev in inside])
    home: list[Any] = []
    spec = planner.spec
    bar = _bar(max(episodes // 2, 1), "unseen world", progress)
    # the furnished home (never in training): random free starts and goals there
    from nav_policy.sim.world import load_world

    world = load_world(home_world)
    home_env = gym.make(LOCAL_NAV_ID)
    expert = make_planner("mppi", robot=cast(LocalNavEnv, home_env.unwrapped).robot, seed=seed)
    for i in range(max(episodes // 2, 1)):
        home += _frames_along_world(home_env, expert, world, seed + i)
        bar.update(1)
    bar.close()
    home_env.close()
    e_home = _energies(planner, home) if home else np.zeros(0)
    low, high = spec.bounds()
    rand = rng.uniform(low, high, size=(len(inside), spec.size)).astype(np.float32)
    e_rand = np.asarray(planner.runtime.run(rand)[1], dtype=np.float64)
    env.close()

    def stats(e: np.ndarray) -> dict[str, float]:
        return {"n": len(e), "mean": float(e.mean()), "p50": float(np.percentile(e, 50)),
                "p90": float(np.percentile(e, 90)),
                "above_energy_high": float(np.mean(e > planner.energy_high))}

    out = {"energy_high": planner.energy_high, "seen_tiers": list(seen_tiers),
           "training_like": stats(e_in), "lidar_noise_0.15_dropout_0.25": stats(e_noisy),
           "unseen_home_world": stats(e_home) if len(e_home) else None,
           "random_observations": stats(e_rand),
           "by_tier": {t: stats(e) for t, e in e_tier.items()},
           "auroc": {"noise": auroc(e_in, e_noisy),
                     "home": auroc(e_in, e_home) if len(e_home) else None,
                     "random": auroc(e_in, e_rand)}}
    if len(e_unseen):
        out["unseen_tiers"] = stats(e_unseen)
        out["auroc"]["unseen_tiers"] = auroc(e_in, e_unseen)
    return out


def _frames_along_world(env: gym.Env, expert: Any, world: Any, seed: int) -> list[Any]:
    """An expert episode in a fixed world between a random free start and goal."""
    from dataclasses import replace

    from nav_policy.sim.grid import GridMap

    rng = np.random.default_rng(seed)
    base = cast(LocalNavEnv, env.unwrapped)
    grid = GridMap.from_world(world)
    clear = base.robot.radius + 0.15
    hx, hy = world.half
    for _ in range(100):
        s = rng.uniform([-hx + 0.5, -hy + 0.5], [hx - 0.5, hy - 0.5])
        g = rng.uniform([-hx + 0.5, -hy + 0.5], [hx - 0.5, hy - 0.5])
        if np.hypot(*(g - s)) < 3.0 or min(grid.clearance_at(s[0], s[1]),
                                            grid.clearance_at(g[0], g[1])) < clear:
            continue
        w = replace(world, start=(float(s[0]), float(s[1]), float(rng.uniform(-np.pi, np.pi))),
                    goal=(float(g[0]), float(g[1])), shortest_path=None)
        try:
            env.reset(seed=seed, options={"world": w})
        except WorldError:  # goal unreachable from that start: draw again
            continue
        return _drive(env, expert, 5)
    return []


def near_collision_start(env: gym.Env, tier: str, seed: int, near: float) -> bool:
    """Reset, turn to the nearest obstacle and drive at it (slowing down) until within `near` m
    of it beyond the robot radius, then brake to a standstill: the robot faces an obstacle it
    almost touches. False if the world gives no such state without touching anything."""
    env.reset(seed=seed, options={"tier": tier, "world_seed": seed})
    base = cast(LocalNavEnv, env.unwrapped)
    for _ in range(200):
        f = base.sensors()
        r = np.asarray(f.ranges, dtype=np.float64)
        r = np.where(np.isfinite(r), r, np.inf)
        k = int(np.argmin(r))
        gap = r[k] - base.robot.radius
        if gap <= near:
            for _ in range(10):  # brake
                if abs(base.sensors().velocity[0]) < 1e-3:
                    return True
                _, _, term, trunc, _ = env.step(encode_action(0.0, 0.0, base.action_spec))
                if term or trunc:
                    return False
            return False
        ang = f.angle_min + k * f.angle_increment
        ang = math.atan2(math.sin(ang), math.cos(ang))
        v = float(np.clip(0.5 * (gap - near), 0.03, 0.3)) if abs(ang) < 0.2 else 0.0
        w = float(np.clip(3.0 * ang, -2.0, 2.0))
        _, _, term, trunc, _ = env.step(encode_action(v, w, base.action_spec))
        if term or trunc:
            return False
    return False


def recovery_study(model: Path, rl_model: Path | None, episodes: int, seed: int, near: float,
                   progress: bool, classical: tuple[str, ...] = ("mppi",)) -> dict[str, Any]:
    from nav_policy.planners import make_planner

    env = gym.make(LOCAL_NAV_ID)
    base = cast(LocalNavEnv, env.unwrapped)
    names: dict[str, Path | None] = {"ebm": model, **({"rl": rl_model} if rl_model else {}),
                                     **dict.fromkeys(classical)}
    out: dict[str, Any] = {}
    bar = _bar(len(names) * len(TIERS) * episodes, "recovery", progress)
    for name, path in names.items():
        per: dict[str, Any] = {}
        for tier in TIERS:
            ok = n = coll = 0
            for i in range(episodes):
                bar.update(1)
                if not near_collision_start(env, tier, seed + i, near):
                    continue
                planner = PolicyPlanner.from_file(path, expect_kind=name) if path else \
                    make_planner(name, robot=base.robot, seed=seed + i)
                done, info = False, {}
                while not done:
                    v, w = planner.compute(base.sensors())
                    _, _, term, trunc, info = env.step(encode_action(v, w, base.action_spec))
                    done = term or trunc
                n += 1
                ok += int(info.get("is_success", False))
                coll += int(info.get("collision", False))
            per[tier] = {"episodes": n, "recovered": ok / n if n else None,
                         "collision": coll / n if n else None}
        out[name] = per
    bar.close()
    env.close()
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ks = sorted(result["steps"], key=int)
    for tier in TIERS:
        axes[0].plot([int(k) for k in ks], [result["steps"][k][tier]["success_rate"] for k in ks],
                     marker="o", label=tier)
    axes[0].set_xscale("log", base=2)
    axes[0].set_xticks([1, 2, 4, 8], ["1", "2", "4", "8"])
    axes[0].set_xlabel("inference steps K")
    axes[0].set_ylabel("success rate")
    axes[0].set_ylim(0, 1.05)
    axes[0].set_title("ebm: success vs gradient steps")
    axes[0].legend()
    u = result["uncertainty"]
    groups = [("training-like", u["training_like"]), ("lidar noise", u[
        "lidar_noise_0.15_dropout_0.25"]), ("unseen home", u["unseen_home_world"]),
        ("random obs", u["random_observations"])]
    groups = [(n, g) for n, g in groups if g]
    axes[1].bar(range(len(groups)), [g["p50"] for _, g in groups], color="#4c72b0",
                label="median energy")
    axes[1].scatter(range(len(groups)), [g["p90"] for _, g in groups], color="#dd8452",
                    zorder=3, label="p90")
    axes[1].axhline(u["energy_high"], color="k", ls="--", lw=1, label="energy_high")
    axes[1].set_xticks(range(len(groups)), [n for n, _ in groups])
    axes[1].set_ylabel("energy E(o, a) (model units)")
    axes[1].set_title("energy by input distribution")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _numbers(text: str) -> tuple[float | None, ...]:
    """'0.5,file,-1' -> (0.5, None, -1.0); () if any item is neither a number nor 'file'."""
    try:
        return tuple(None if x == "file" else float(x) for x in text.split(",") if x)
    except ValueError:
        return ()


def main(argv: list[str] | None = None) -> int:
    from nav_policy.paths import model_path, sim_path

    ap = argparse.ArgumentParser(prog="python experiments/ebm_study.py",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=model_path("local_ebm.onnx"))
    ap.add_argument("--rl-model", type=Path, default=model_path("local_rl.onnx"))
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--near", type=float, default=0.2, help="recovery start clearance (m)")
    ap.add_argument("--steps-model", type=Path, help="file for the steps curve (default "
                    "--model); the curve covers K in 1, 2, 4, 8 up to the iterations it holds, "
                    "so pass an export with --max-steps 8 for the full curve")
    ap.add_argument("--parts", default="steps,gate,handover,precollision,uncertainty,recovery")
    ap.add_argument("--gate-factors", default="0.5",
                    help="gate: speed caps to compare with the gate off (x v_max where the "
                    "energy is high; 0 = only turn in place)")
    ap.add_argument("--gate-thresholds", default="file",
                    help="gate: energies above which the cap applies, comma-separated; 'file' = "
                    "the model's ebm.energy_high")
    ap.add_argument("--seen-tiers", default=",".join(TIERS),
                    help="tiers the model was trained on (uncertainty: the others are scored "
                    "as unseen)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    factors = _numbers(args.gate_factors)
    if not factors or not all(f is not None and 0.0 <= f <= 1.0 for f in factors):
        ap.error("--gate-factors: comma-separated speed factors in [0, 1]")
    thresholds = _numbers(args.gate_thresholds)
    if not thresholds or not all(x is None or math.isfinite(x) for x in thresholds):
        ap.error("--gate-thresholds: comma-separated energies or 'file'")
    seen = tuple(t for t in args.seen_tiers.split(",") if t)
    if not seen or set(seen) - set(TIERS):
        ap.error(f"--seen-tiers: a comma-separated subset of {', '.join(TIERS)}")
    prog = not args.no_progress
    parts = set(args.parts.split(","))
    cmd = ["python experiments/ebm_study.py", *(argv if argv is not None else sys.argv[1:])]
    result: dict[str, Any] = {"model": str(args.model), "episodes": args.episodes,
                              "seed": args.seed, "command": " ".join(cmd)}
    if "steps" in parts:
        result["steps_model"] = str(args.steps_model or args.model)
        result["steps"] = steps_curve(args.steps_model or args.model, args.episodes, args.seed,
                                      prog)
    if "gate" in parts:
        result["gate"] = gate_study(args.model, args.episodes, args.seed, prog,
                                    cast(tuple[float, ...], factors), thresholds)
    if "handover" in parts:
        result["handover"] = handover_study(args.model, args.episodes, args.seed, prog)
    if "gate" in parts:
        result["collisions_vs_ungated"] = collisions_vs_ungated(result)
    if "precollision" in parts:
        result["precollision"] = precollision_study(args.model, args.episodes, args.seed, prog)
    if "uncertainty" in parts:
        result["uncertainty"] = uncertainty_study(args.model, max(args.episodes // 4, 1),
                                                  args.seed, prog, sim_path("worlds/home.yaml"),
                                                  seen)
    if "recovery" in parts:
        rl = args.rl_model if args.rl_model.is_file() else None
        result["recovery"] = recovery_study(args.model, rl, args.episodes, args.seed, args.near,
                                            prog)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    if args.plot and "steps" in result and "uncertainty" in result:
        plot(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
