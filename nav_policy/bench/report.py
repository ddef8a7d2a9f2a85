"""Benchmark reports: JSON payloads, ratio tables, per-episode CSV, markdown and plots.

Plots use matplotlib's Agg backend (no display needed); trajectories are drawn over the world
picture from nav_policy.sim.render.TopDown.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nav_policy.bench.barn import V_REF as BARN_V_REF
from nav_policy.bench.metrics import summarize
from nav_policy.bench.runner import EpisodeResult
from nav_policy.planners import CLASSICAL_PLANNERS, LEARNED_PLANNERS

CLASSICAL_ORDER: tuple[str, ...] = CLASSICAL_PLANNERS
TIER_KEYS: tuple[str, ...] = ("success_rate", "collision_rate", "timeout_rate", "spl",
                              "barn_score", "mean_time_s")
CSV_FIELDS: tuple[str, ...] = (
    "planner", "tier", "index", "world_seed", "world", "outcome", "success", "collision",
    "timeout", "time_s", "path_length", "shortest_path", "spl", "barn_score", "min_clearance",
    "mean_clearance", "smoothness_deg", "sharp_turns", "velocity_jerk", "steps",
    "compute_us_p50", "compute_us_p99",
)
PLANNER_COLORS: tuple[str, ...] = ("tab:blue", "tab:orange", "tab:green", "tab:red",
                                   "tab:purple", "tab:brown")


# ---- numbers ------------------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a success rate (95 % for z = 1.96); (0, 1) with no episodes.
    Unlike p +- z * sqrt(p (1 - p) / n) it stays inside [0, 1] and is not empty at 0 or n."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    den = 1.0 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def sign_test_p(wins: int, losses: int) -> float:
    """Exact two-sided sign test (McNemar's exact test on paired outcomes): the chance of a split
    at least this uneven between the discordant episodes if neither planner were better."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2.0 ** n
    return min(1.0, 2.0 * tail)


def _success_ci(results: Sequence[EpisodeResult]) -> list[float]:
    lo, hi = wilson_interval(sum(bool(r.metrics["success"]) for r in results), len(results))
    return [lo, hi]


def planner_summary(results: Sequence[EpisodeResult], v_ref: float,
                    with_episodes: bool = True) -> dict[str, Any]:
    """Metrics of one planner over its episodes, with a per-tier breakdown (success rates with
    their Wilson 95 % interval, `success_ci95`)."""
    out = summarize([r.metrics for r in results], _pooled(results), v_ref)
    out["success_ci95"] = _success_ci(results)
    tiers: dict[str, list[EpisodeResult]] = {}
    for r in results:
        tiers.setdefault(r.scenario.tier, []).append(r)
    out["per_tier"] = {}
    for tier, group in tiers.items():
        protocol = group[0].scenario.protocol
        s = summarize([r.metrics for r in group], _pooled(group),
                      BARN_V_REF if protocol == "barn" else v_ref)
        out["per_tier"][tier] = {"n_episodes": s["n_episodes"], **{k: s[k] for k in TIER_KEYS},
                                 "success_ci95": _success_ci(group)}
        if protocol == "barn":  # BARN's judging: also the 2022-2023 score (4x clip)
            out["per_tier"][tier].update(
                protocol=protocol, barn_v_ref=s["barn_v_ref"],
                barn_score_4x=float(np.mean([r.metrics["barn_score_4x"] for r in group])))
    if with_episodes:
        out["per_episode"] = [r.row() for r in results]
    return out


def _pooled(results: Sequence[EpisodeResult]) -> np.ndarray:
    arrays = [r.compute_us for r in results if len(r.compute_us)]
    return np.concatenate(arrays) if arrays else np.zeros(0)


def reference_planner(names: Sequence[str]) -> str:
    """The classical reference for ratios: dwa, else mppi, else the first planner named."""
    for name in CLASSICAL_ORDER:
        if name in names:
            return name
    for name in names:
        if name not in LEARNED_PLANNERS:
            return name
    return names[0]


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return float(a / b)


def ratios(summaries: Mapping[str, Mapping[str, Any]], reference: str) -> dict[str, Any]:
    """Per planner: success/SPL/BARN differences and compute ratios vs the reference."""
    ref = summaries[reference]
    out: dict[str, Any] = {}
    for name, s in summaries.items():
        out[name] = {
            "success_diff": s["success_rate"] - ref["success_rate"],
            "spl_diff": s["spl"] - ref["spl"],
            "barn_diff": s["barn_score"] - ref["barn_score"],
            "compute_ratio_p50": _ratio(s["compute_us_p50"], ref["compute_us_p50"]),
            "compute_ratio_p99": _ratio(s["compute_us_p99"], ref["compute_us_p99"]),
        }
    return out


def paired(summaries: Mapping[str, Mapping[str, Any]], reference: str) -> dict[str, Any]:
    """Per planner and tier, success on the same worlds against the reference: `pairs` (worlds
    both ran), `wins` (the planner succeeded, the reference did not), `losses` (the reverse) and
    `p_value` (exact sign test on wins vs losses). Needs the summaries' per-episode rows."""
    def outcomes(name: str) -> dict[tuple[str, int], bool]:
        return {(e["tier"], int(e["index"])): bool(e["success"])
                for e in summaries[name].get("per_episode", [])}

    ref = outcomes(reference)
    out: dict[str, Any] = {}
    for name in summaries:
        if name == reference:
            continue
        mine = outcomes(name)
        by_tier: dict[str, dict[str, Any]] = {}
        for key in [k for k in mine if k in ref]:  # the run's tier order
            t = by_tier.setdefault(key[0], {"pairs": 0, "wins": 0, "losses": 0})
            t["pairs"] += 1
            t["wins"] += int(mine[key] and not ref[key])
            t["losses"] += int(ref[key] and not mine[key])
        for t in by_tier.values():
            t["p_value"] = sign_test_p(t["wins"], t["losses"])
        out[name] = by_tier
    return out


def compare_payload(summaries: dict[str, dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
    ref = reference_planner(list(summaries))
    return {"planners": summaries, "reference": ref, "ratios": ratios(summaries, ref),
            "paired": paired(summaries, ref), **args}


def jsonable(obj: Any) -> Any:
    """Plain JSON types; NaN and infinities become None (JSON has neither)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# ---- text ---------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(summaries: Mapping[str, Mapping[str, Any]],
                   ratio_map: Mapping[str, Mapping[str, Any]] | None = None,
                   reference: str | None = None) -> str:
    """One row per planner: outcomes, SPL, BARN, path traits, compute (and ratios)."""
    head = ["planner", "episodes", "success", "collision", "timeout", "SPL", "BARN",
            "time s", "path m", "min clr m", "smooth deg", "jerk m/s²", "p50 µs", "p99 µs"]
    if ratio_map:
        head += [f"Δsuccess vs {reference}", f"compute ×{reference} (p50)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in summaries.items():
        cells = [name, str(s["n_episodes"]), _fmt(s["success_rate"]), _fmt(s["collision_rate"]),
                 _fmt(s["timeout_rate"]), _fmt(s["spl"]), _fmt(s["barn_score"], 3),
                 _fmt(s["mean_time_s"], 1), _fmt(s["mean_path_length"]),
                 _fmt(s["min_clearance"]), _fmt(s["smoothness_deg"], 0),
                 _fmt(s["velocity_jerk"], 1), _fmt(s["compute_us_p50"], 0),
                 _fmt(s["compute_us_p99"], 0)]
        if ratio_map:
            r = ratio_map[name]
            cells += [f"{r['success_diff']:+.2f}", _fmt(r["compute_ratio_p50"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ci(t: Mapping[str, Any]) -> str:
    ci = t.get("success_ci95")  # JSONs written before the intervals existed lack it
    return f"{ci[0]:.2f}-{ci[1]:.2f}" if ci else "-"


def tier_table(summaries: Mapping[str, Mapping[str, Any]]) -> str:
    """Success (with its 95 % interval) / collision / SPL / BARN per planner and tier."""
    head = ["planner", "tier", "episodes", "success", "95% CI", "collision", "timeout", "SPL",
            "BARN"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in summaries.items():
        for tier, t in s["per_tier"].items():
            lines.append("| " + " | ".join([
                name, tier, str(t["n_episodes"]), _fmt(t["success_rate"]), _ci(t),
                _fmt(t["collision_rate"]), _fmt(t["timeout_rate"]), _fmt(t["spl"]),
                _fmt(t["barn_score"], 3)]) + " |")
    return "\n".join(lines)


def paired_table(paired_map: Mapping[str, Mapping[str, Any]], reference: str) -> str:
    """The paired comparison: on how many of the same worlds each planner beat the reference."""
    head = ["planner", "tier", "worlds", f"succeeded where {reference} failed",
            f"failed where {reference} succeeded", "p (sign test)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, tiers in paired_map.items():
        for tier, t in tiers.items():
            lines.append(f"| {name} | {tier} | {t['pairs']} | {t['wins']} | {t['losses']} | "
                         f"{t['p_value']:.3g} |")
    return "\n".join(lines)


BARN_ANCHORS: tuple[dict[str, Any], ...] = (
    {"who": "BARN Challenge baseline: move_base DWA on a Jackal (0.46 x 0.42 m), max 0.5 m/s",
     "where": "the 50 test worlds (i % 6 == 0), 10 runs each, Gazebo",
     "success": (0.85, 0.88), "score_4x": (0.159, 0.169),
     "note": "published 2022-2023, score with the (4x, 8x) clip (at most 0.25)"},
)


def barn_table(summaries: Mapping[str, Mapping[str, Any]]) -> str:
    """Suites judged by BARN's protocol beside the published anchors, with their conditions."""
    head = ["planner", "suite", "episodes", "success", "95% CI", "collision", "timeout",
            "score (2x clip)", "score (4x clip)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    suites: list[str] = []
    for name, s in summaries.items():
        for tier, t in s["per_tier"].items():
            if t.get("protocol") != "barn":
                continue
            suites += [tier] if tier not in suites else []
            lines.append("| " + " | ".join([
                name, tier, str(t["n_episodes"]), _fmt(t["success_rate"]), _ci(t),
                _fmt(t["collision_rate"]), _fmt(t["timeout_rate"]), _fmt(t["barn_score"], 3),
                _fmt(t["barn_score_4x"], 3)]) + " |")
    if not suites:
        return ""
    for a in BARN_ANCHORS:
        lines.append(f"| published: {a['who']} | {a['where']} | - | {a['success'][0]:.2f}-"
                     f"{a['success'][1]:.2f} | - | - | - | - | {a['score_4x'][0]:.3f}-"
                     f"{a['score_4x'][1]:.3f} |")
    notes = "; ".join(a["note"] for a in BARN_ANCHORS)
    return ("\n".join(lines) + "\n\nBARN protocol (suites " + ", ".join(suites) + "): success "
            "within 1 m of the goal in 100 s of simulated time without contact; score = success x "
            "t_opt / clip(t, 2 t_opt, 8 t_opt), t_opt = reference length (our map) / 2 m/s, t from "
            "when the robot has moved 0.1 m (the 4x column: clip(t, 4 t_opt, 8 t_opt)). Our robot "
            "(radius 0.2 m, max 0.5 m/s), not a Jackal. Published anchors: " + notes + ".")


def report_text(summaries: Mapping[str, Mapping[str, Any]], payload: Mapping[str, Any]) -> str:
    """The tables printed after a run (overall, then per tier)."""
    ref = payload.get("reference")
    ratio_map = payload.get("ratios") if len(summaries) > 1 else None
    pairs = payload.get("paired") if len(summaries) > 1 else None
    pair_text = ("\n\n" + paired_table(pairs, str(ref)) + "\n\nSame worlds, paired: a tier's "
                 "difference is real only where p is small (p < 0.05: the split between the "
                 "two columns would be rarer than 1 in 20 if neither planner were better)."
                 if pairs and any(pairs.values()) else "")
    barn = barn_table(summaries)
    barn_text = "\n\n" + barn if barn else ""
    v_ref = payload.get("barn_v_ref")
    return (markdown_table(summaries, ratio_map, ref) + "\n\n" + tier_table(summaries)
            + pair_text + barn_text + f"\n\nBARN v_ref = {v_ref} m/s"
            + (" (BARN's)" if v_ref == BARN_V_REF else " (robot v_max)")
            + (" for the tiers, 2 m/s for suites under the barn protocol" if barn
               and v_ref != BARN_V_REF else "")
            + f"; simulator backend: {payload.get('backend', 'pybullet')}\n"
            + (f"Every command went through the node's safety layer (--safety-layer, collision "
               f"model {_safety_model(payload['safety_layer'])}).\n"
               if payload.get("safety_layer") else ""))


def _safety_model(value: Any) -> str:
    return "zones" if value is True else str(value)  # JSONs before approach existed hold true


# ---- files --------------------------------------------------------------------------------------


def write_csv(results: Sequence[EpisodeResult], path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(CSV_FIELDS), extrasaction="ignore")
        writer.writeheader()
        for r in results:
            writer.writerow(r.row())


def plot_success(summaries: Mapping[str, Mapping[str, Any]], path: Path) -> None:
    """Grouped bars: success rate per tier, one bar per planner."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tiers = list(dict.fromkeys(t for s in summaries.values() for t in s["per_tier"]))
    names = list(summaries)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(7.0, 2.0 + 1.6 * len(tiers)), 4.4))
    x = np.arange(len(tiers))
    for k, name in enumerate(names):
        rows = [summaries[name]["per_tier"].get(t, {}) for t in tiers]
        rates = [r.get("success_rate", 0.0) for r in rows]
        cis = [r.get("success_ci95") or [rate, rate] for r, rate in zip(rows, rates)]
        err = np.array([[rate - ci[0] for rate, ci in zip(rates, cis)],
                        [ci[1] - rate for rate, ci in zip(rates, cis)]]).clip(min=0)
        bars = ax.bar(x + (k - (len(names) - 1) / 2) * width, rates, width, label=name,
                      color=PLANNER_COLORS[k % len(PLANNER_COLORS)], yerr=err,
                      error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "0.3"})
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, tiers)
    ax.set_ylim(0, 1.3)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xlabel("world tier")
    ax.set_ylabel("success rate (fraction of episodes)")
    n = sorted({int(summaries[nm]["per_tier"][t].get("n_episodes", 0)) for nm in names
                for t in summaries[nm]["per_tier"]})
    per = f"{n[0]} episodes per tier" if len(n) == 1 else "episodes per tier vary"
    ax.set_title(f"Success rate by tier ({per}; whiskers: Wilson 95 % interval)", fontsize=10)
    ax.legend(title="planner", fontsize=8, ncol=len(names), loc="upper center")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_trajectories(episode: Sequence[EpisodeResult], path: Path) -> None:
    """All planners' driven paths on one episode's world (TopDown picture underneath)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nav_policy.sim.render import TopDown

    first = episode[0]
    world = first.world
    view = TopDown(world, 480).moving([m.position(0.0) for m in world.moving])
    view.goal(world.goal)
    hx, hy = world.half
    fig, ax = plt.subplots(figsize=(10.0, 7.0 * world.size[1] / world.size[0] + 0.6))
    ax.imshow(view.img, extent=(-hx, hx, -hy, hy))
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ref = first.reference_path
    ax.plot(ref[:, 0], ref[:, 1], "--", color="tab:green", lw=1.2, label="shortest path (A*)")
    for k, res in enumerate(episode):
        ax.plot(res.poses[:, 0], res.poses[:, 1], color=PLANNER_COLORS[k % len(PLANNER_COLORS)],
                lw=1.6, label=f"{res.planner}: {res.metrics['outcome']}")
    for k, m in enumerate(world.moving):
        pts = np.asarray(m.waypoints)
        ax.plot(pts[:, 0], pts[:, 1], ":", color="tab:orange", lw=1,
                label="moving obstacle: track (disc at t = 0)" if k == 0 else None)
    ax.plot(*world.start[:2], "o", color="black", ms=5, label="start")
    ax.plot(*world.goal[:2], "+", color="#1eaa3c", ms=10, mew=2, label="goal (0.25 m)")
    failed = [r.planner for r in episode if not r.metrics["success"]]
    ax.set_title(f"episode {first.scenario.key} ({world.name}): "
                 + (f"failed: {', '.join(failed)}" if failed else "all succeeded"), fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def trajectory_episodes(results: Sequence[EpisodeResult], per_tier: int
                        ) -> dict[str, list[EpisodeResult]]:
    """The episodes to draw, `per_tier` per tier: those where some planner failed first (in
    episode order), then the others; each with every planner's run of it."""
    by_key: dict[str, list[EpisodeResult]] = {}
    for r in results:
        by_key.setdefault(r.scenario.key, []).append(r)
    chosen: dict[str, list[EpisodeResult]] = {}
    tiers = dict.fromkeys(r.scenario.tier for r in results)
    for tier in tiers:
        keys = sorted((k for k, rs in by_key.items() if rs[0].scenario.tier == tier),
                      key=lambda k: (all(r.metrics["success"] for r in by_key[k]),
                                     by_key[k][0].scenario.index))
        for k in keys[:per_tier]:
            chosen[k] = by_key[k]
    return chosen


def write_report(out_dir: Path, grouped: Mapping[str, Sequence[EpisodeResult]],
                 summaries: Mapping[str, Mapping[str, Any]], payload: Mapping[str, Any],
                 plots: bool = True, trajectories_per_tier: int = 3) -> list[Path]:
    """episodes.csv, summary.md, results.json, success_by_tier.png, trajectories/*.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    everything = [r for results in grouped.values() for r in results]
    written = [out_dir / "episodes.csv", out_dir / "summary.md", out_dir / "results.json"]
    write_csv(everything, written[0])
    written[1].write_text(f"# Benchmark\n\n`{payload.get('command', '')}`\n\n"
                          + report_text(summaries, payload))
    written[2].write_text(json.dumps(jsonable(payload), indent=2, allow_nan=False) + "\n")
    if not plots:
        return written
    written.append(out_dir / "success_by_tier.png")
    plot_success(summaries, written[-1])
    by_episode = trajectory_episodes(everything, trajectories_per_tier)
    (out_dir / "trajectories").mkdir(exist_ok=True)
    for key, episode in by_episode.items():
        written.append(out_dir / "trajectories" / f"{key.replace('/', '_')}.png")
        plot_trajectories(episode, written[-1])
    return written
