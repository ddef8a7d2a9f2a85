"""Navigation metrics: pure functions of a driven trajectory (no PyBullet, no ROS).

The benchmark runner (simulated episodes) and `nav-policy metrics` (a recorded MCAP bag) both
build a `Track` and call `episode_metrics`, then `summarize`; the numbers are therefore
computed by one code path. Formulas (docs: docs/DESIGN.md, "Numbers"):

- outcome: success (goal reached within tolerance, no collision before), collision, timeout
  (neither). Rates are fractions of episodes.
- SPL = mean_i S_i * l_i / max(p_i, l_i), l_i the shortest collision-free path length (grid A*
  on the world inflated by the robot radius), p_i the driven length.
- BARN score_i = S_i * t_opt / clip(t_i, 2 t_opt, 8 t_opt), t_opt = l_i / v_ref.
- clearance: distance from the driven positions to the nearest obstacle minus the robot
  radius (negative = overlap); min over all steps and episodes, mean of the per-episode means.
- smoothness = sum of turning angles of the driven polyline (deg); sharp turns = turning
  angles above 90 deg; velocity jerk = integrated |delta a| = sum_k |a_k - a_{k-1}| (m/s^2),
  a_k = (v_k - v_{k-1}) / (t_k - t_{k-1}). Mean time, path length, smoothness, sharp turns and
  jerk are averaged over successful episodes only (None when there is none).
- compute: planner time per control step (only `planner.compute`), p50 and p99 in microseconds,
  pooled over all steps of all episodes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nav_policy.sim.world import World

SHARP_TURN_DEG = 90.0
MIN_SEGMENT_M = 1e-3  # segments shorter than this carry no heading (robot standing still)


@dataclass
class Track:
    """A driven run, one row per control step or odometry message.

    t: stamps in seconds (any origin); xy: (N, 2) positions; v: (N,) forward speed (m/s).
    """

    t: np.ndarray
    xy: np.ndarray
    v: np.ndarray

    def __post_init__(self) -> None:
        self.t = np.asarray(self.t, dtype=np.float64).reshape(-1)
        self.xy = np.asarray(self.xy, dtype=np.float64).reshape(-1, 2)
        self.v = np.asarray(self.v, dtype=np.float64).reshape(-1)
        if not len(self.t) == len(self.xy) == len(self.v):
            raise ValueError("Track: t, xy and v must have the same length")

    def __len__(self) -> int:
        return len(self.t)

    def head(self, n: int) -> Track:
        """The first n rows."""
        return Track(self.t[:n], self.xy[:n], self.v[:n])

    @property
    def duration(self) -> float:
        return float(self.t[-1] - self.t[0]) if len(self.t) else 0.0


# ---- path traits ----------------------------------------------------------------------------


def path_length(xy: np.ndarray) -> float:
    """Length of the polyline through the points (m)."""
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 2:
        return 0.0
    return float(np.hypot(*np.diff(pts, axis=0).T).sum())


def turning_angles(xy: np.ndarray, min_segment: float = MIN_SEGMENT_M) -> np.ndarray:
    """Absolute heading changes (deg) between consecutive segments of the driven polyline.

    Segments shorter than `min_segment` (standing or turning in place) are skipped, so a turn
    on the spot shows as one angle between the segments before and after it.
    """
    d = np.diff(np.asarray(xy, dtype=np.float64).reshape(-1, 2), axis=0)
    d = d[np.hypot(d[:, 0], d[:, 1]) >= min_segment]
    if len(d) < 2:
        return np.zeros(0)
    heading = np.arctan2(d[:, 1], d[:, 0])
    turn = (np.diff(heading) + math.pi) % (2 * math.pi) - math.pi
    return np.degrees(np.abs(turn))


def smoothness(xy: np.ndarray) -> tuple[float, int]:
    """(sum of turning angles in deg, number of sharp turns > 90 deg)."""
    ang = turning_angles(xy)
    return float(ang.sum()), int((ang > SHARP_TURN_DEG).sum())


def velocity_jerk(t: np.ndarray, v: np.ndarray) -> float:
    """Integrated |delta a| (m/s^2): sum of |a_k - a_{k-1}| with a_k = dv_k / dt_k."""
    t = np.asarray(t, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if len(t) < 3:
        return 0.0
    dt = np.diff(t)
    ok = dt > 0
    acc = np.diff(v)[ok] / dt[ok]
    return float(np.abs(np.diff(acc)).sum()) if len(acc) >= 2 else 0.0


def clearance_along(world: World, track: Track, radius: float,
                    moving: bool = True) -> np.ndarray:
    """World.clearance at each driven position minus the robot radius (m).

    With `moving`, moving obstacles are placed at the track's time since its first stamp.
    """
    if len(track) == 0:
        return np.zeros(0)
    if not moving or not world.moving:
        return world.clearance(track.xy[:, 0], track.xy[:, 1]) - radius
    rel = track.t - track.t[0]
    return np.array([float(world.clearance(x, y, float(s))) for (x, y), s in zip(track.xy, rel)]) \
        - radius


# ---- per-episode scores ---------------------------------------------------------------------


def spl_term(success: bool, shortest: float, driven: float) -> float:
    """S * l / max(p, l) (1 for a success with l = p = 0)."""
    if not success:
        return 0.0
    den = max(driven, shortest)
    return 1.0 if den <= 0 else float(shortest / den)


def barn_term(success: bool, shortest: float, time_s: float, v_ref: float,
              clip_low: float = 2.0) -> float:
    """S * t_opt / clip(t, 2 t_opt, 8 t_opt), t_opt = l / v_ref (clip_low 4: the BARN
    Challenge's 2022-2023 scoring, at most 0.25)."""
    if not success:
        return 0.0
    t_opt = shortest / v_ref
    if t_opt <= 0:
        return 0.0  # undefined for a zero-length task: scored 0
    return float(t_opt / min(max(time_s, clip_low * t_opt), 8 * t_opt))


def percentiles_us(samples: np.ndarray | Sequence[float]) -> tuple[float | None, float | None]:
    """(p50, p99) of compute times in microseconds; (None, None) without samples."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size == 0:
        return None, None
    p50, p99 = np.percentile(arr, [50, 99])
    return float(p50), float(p99)


def outcome_name(success: bool, collision: bool) -> str:
    return "success" if success else ("collision" if collision else "timeout")


def episode_metrics(track: Track, *, success: bool, collision: bool, shortest_path: float,
                    clearance: np.ndarray, v_ref: float,
                    compute_us: np.ndarray | Sequence[float] = ()) -> dict[str, Any]:
    """Scores of one run; `clearance` per row of `track` (see clearance_along)."""
    success = bool(success) and not bool(collision)
    driven = path_length(track.xy)
    time_s = track.duration
    smooth, sharp = smoothness(track.xy)
    clr = np.asarray(clearance, dtype=np.float64)
    p50, p99 = percentiles_us(compute_us)
    return {
        "outcome": outcome_name(success, collision),
        "success": success,
        "collision": bool(collision),
        "timeout": not success and not collision,
        "time_s": time_s,
        "path_length": driven,
        "shortest_path": float(shortest_path),
        "spl": spl_term(success, shortest_path, driven),
        "barn_score": barn_term(success, shortest_path, time_s, v_ref),
        "min_clearance": float(clr.min()) if clr.size else None,
        "mean_clearance": float(clr.mean()) if clr.size else None,
        "smoothness_deg": smooth,
        "sharp_turns": sharp,
        "velocity_jerk": velocity_jerk(track.t, track.v),
        "steps": max(len(track) - 1, 0),
        "compute_us_p50": p50,
        "compute_us_p99": p99,
    }


# ---- aggregation ----------------------------------------------------------------------------


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def summarize(episodes: Sequence[dict[str, Any]], compute_us: np.ndarray | Sequence[float],
              v_ref: float) -> dict[str, Any]:
    """Aggregate per-episode dicts (from episode_metrics) into the benchmark metrics."""
    n = len(episodes)
    if n == 0:
        raise ValueError("summarize() needs at least one episode")
    wins = [e for e in episodes if e["success"]]
    mins = [e["min_clearance"] for e in episodes if e["min_clearance"] is not None]
    means = [e["mean_clearance"] for e in episodes if e["mean_clearance"] is not None]
    p50, p99 = percentiles_us(compute_us)
    return {
        "n_episodes": n,
        "success_rate": len(wins) / n,
        "collision_rate": sum(bool(e["collision"]) for e in episodes) / n,
        "timeout_rate": sum(bool(e["timeout"]) for e in episodes) / n,
        "spl": float(np.mean([e["spl"] for e in episodes])),
        "barn_score": float(np.mean([e["barn_score"] for e in episodes])),
        "barn_v_ref": float(v_ref),
        "mean_time_s": _mean([e["time_s"] for e in wins]),
        "mean_path_length": _mean([e["path_length"] for e in wins]),
        "min_clearance": float(min(mins)) if mins else None,
        "mean_clearance": _mean(means),
        "smoothness_deg": _mean([e["smoothness_deg"] for e in wins]),
        "sharp_turns": _mean([float(e["sharp_turns"]) for e in wins]),
        "velocity_jerk": _mean([e["velocity_jerk"] for e in wins]),
        "compute_us_p50": p50,
        "compute_us_p99": p99,
    }


# ---- judging a recorded run -----------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    """Where a recorded run ends and how: rows [0, end) of the track belong to the episode."""

    end: int
    success: bool
    collision: bool


def judge_run(track: Track, goal: tuple[float, float], tolerance: float,
              clearance: np.ndarray | None = None,
              scan_t: np.ndarray | None = None, scan_min: np.ndarray | None = None,
              radius: float = 0.0) -> Judgement:
    """Outcome of a recorded run, cut at its first arrival or first collision.

    Arrival: the position within `tolerance` of `goal`. Collision: `clearance` (per track row)
    <= 0, or a scan (stamps `scan_t`, closest valid return `scan_min`) closer than `radius`,
    mapped to the first track row at or after the scan's stamp. Whichever comes first ends the
    run; without either the run is a timeout over all rows.
    """
    n = len(track)
    dist = np.hypot(track.xy[:, 0] - goal[0], track.xy[:, 1] - goal[1])
    hit_goal = np.flatnonzero(dist <= tolerance)
    arrive = int(hit_goal[0]) if hit_goal.size else n
    crash = n
    if clearance is not None and len(clearance):
        bad = np.flatnonzero(np.asarray(clearance) <= 0.0)
        crash = int(bad[0]) if bad.size else n
    if scan_t is not None and scan_min is not None and len(scan_t):
        close = np.flatnonzero(np.asarray(scan_min) < radius)
        if close.size:
            row = int(np.searchsorted(track.t, float(np.asarray(scan_t)[close[0]]), side="left"))
            crash = min(crash, min(row, n - 1))
    if crash < n and crash <= arrive:
        return Judgement(end=crash + 1, success=False, collision=True)
    if arrive < n:
        return Judgement(end=arrive + 1, success=True, collision=False)
    return Judgement(end=n, success=False, collision=False)
