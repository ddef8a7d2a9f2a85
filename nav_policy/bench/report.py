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

from nav_policy.bench.metrics import summarize
from nav_policy.bench.runner import LEARNED_PLANNERS, EpisodeResult

CLASSICAL_ORDER: tuple[str, ...] = ("dwa", "mppi")
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


def planner_summary(results: Sequence[EpisodeResult], v_ref: float,
                    with_episodes: bool = True) -> dict[str, Any]:
    """Metrics of one planner over its episodes, with a per-tier breakdown."""
    out = summarize([r.metrics for r in results], _pooled(results), v_ref)
    tiers: dict[str, list[EpisodeResult]] = {}
    for r in results:
        tiers.setdefault(r.scenario.tier, []).append(r)
    out["per_tier"] = {}
    for tier, group in tiers.items():
        s = summarize([r.metrics for r in group], _pooled(group), v_ref)
        out["per_tier"][tier] = {"n_episodes": s["n_episodes"], **{k: s[k] for k in TIER_KEYS}}
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


def compare_payload(summaries: dict[str, dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
    ref = reference_planner(list(summaries))
    return {"planners": summaries, "reference": ref, "ratios": ratios(summaries, ref), **args}


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


def tier_table(summaries: Mapping[str, Mapping[str, Any]]) -> str:
    """Success / collision / SPL / BARN per planner and tier."""
    head = ["planner", "tier", "episodes", "success", "collision", "timeout", "SPL", "BARN"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in summaries.items():
        for tier, t in s["per_tier"].items():
            lines.append("| " + " | ".join([
                name, tier, str(t["n_episodes"]), _fmt(t["success_rate"]),
                _fmt(t["collision_rate"]), _fmt(t["timeout_rate"]), _fmt(t["spl"]),
                _fmt(t["barn_score"], 3)]) + " |")
    return "\n".join(lines)


def report_text(summaries: Mapping[str, Mapping[str, Any]], payload: Mapping[str, Any]) -> str:
    """The tables printed after a run (overall, then per tier)."""
    ref = payload.get("reference")
    ratio_map = payload.get("ratios") if len(summaries) > 1 else None
    return (markdown_table(summaries, ratio_map, ref) + "\n\n" + tier_table(summaries)
            + f"\n\nBARN v_ref = {payload.get('barn_v_ref')} m/s (robot v_max)\n"
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
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(tiers), 3.2))
    x = np.arange(len(tiers))
    for k, name in enumerate(names):
        rates = [summaries[name]["per_tier"].get(t, {}).get("success_rate", 0.0) for t in tiers]
        bars = ax.bar(x + (k - (len(names) - 1) / 2) * width, rates, width, label=name,
                      color=PLANNER_COLORS[k % len(PLANNER_COLORS)])
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, tiers)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("success rate")
    ax.set_title("success by tier")
    ax.legend(fontsize=8)
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
    fig, ax = plt.subplots(figsize=(5.2, 5.2 * world.size[1] / world.size[0] + 0.4))
    ax.imshow(view.img, extent=(-hx, hx, -hy, hy))
    ref = first.reference_path
    ax.plot(ref[:, 0], ref[:, 1], "--", color="tab:green", lw=1.2, label="shortest path (A*)")
    for k, res in enumerate(episode):
        ax.plot(res.poses[:, 0], res.poses[:, 1], color=PLANNER_COLORS[k % len(PLANNER_COLORS)],
                lw=1.6, label=f"{res.planner}: {res.metrics['outcome']}")
    for m in world.moving:
        pts = np.asarray(m.waypoints)
        ax.plot(pts[:, 0], pts[:, 1], ":", color="tab:orange", lw=1)
    ax.plot(*world.start[:2], "o", color="black", ms=5, label="start")
    ax.set_title(f"{first.scenario.key} ({world.name})", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
    by_episode: dict[str, list[EpisodeResult]] = {}
    for r in everything:
        if r.scenario.index < trajectories_per_tier:
            by_episode.setdefault(r.scenario.key, []).append(r)
    (out_dir / "trajectories").mkdir(exist_ok=True)
    for key, episode in by_episode.items():
        written.append(out_dir / "trajectories" / f"{key.replace('/', '_')}.png")
        plot_trajectories(episode, written[-1])
    return written
