"""Benchmark metrics against hand-computed trajectories; scenario seeds; report ratios."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nav_policy.bench.metrics import (
    Judgement,
    Track,
    barn_term,
    clearance_along,
    episode_metrics,
    judge_run,
    path_length,
    percentiles_us,
    smoothness,
    spl_term,
    summarize,
    turning_angles,
    velocity_jerk,
)
from nav_policy.bench.report import markdown_table, ratios, reference_planner
from nav_policy.bench.scenarios import episode_seed, parse_tiers, scenarios, split_list
from nav_policy.errors import ConfigError, WorldError
from nav_policy.sim.world import Box, MovingObstacle, World


def _line_track(n: int = 5, dt: float = 1.0, speed: float = 0.5) -> Track:
    """Straight along +x at `speed`, starting at rest: x_k = speed * dt * k."""
    t = dt * np.arange(n)
    x = speed * t
    v = np.full(n, speed)
    v[0] = 0.0
    return Track(t, np.stack([x, np.zeros(n)], axis=1), v)


@pytest.fixture()
def empty_world() -> World:
    """A 4 x 4 m arena with nothing inside: walls at x, y = +-2."""
    return World(name="empty", size=(4.0, 4.0), obstacles=(), start=(0.0, 0.0, 0.0),
                 goal=(1.0, 0.0))


# ---- path traits ------------------------------------------------------------------------------


def test_path_length_of_a_right_angle() -> None:
    assert path_length(np.array([[0, 0], [3, 0], [3, 4]])) == pytest.approx(7.0)
    assert path_length(np.array([[1.0, 1.0]])) == 0.0


@pytest.mark.parametrize(("points", "angles", "total", "sharp"), [
    ([[0, 0], [1, 0], [2, 0]], [0.0], 0.0, 0),
    ([[0, 0], [1, 0], [1, 1], [0, 1]], [90.0, 90.0], 180.0, 0),
    ([[0, 0], [1, 0], [1, 0], [1, 1]], [90.0], 90.0, 0),  # standing still: no heading
    ([[0, 0], [1, 0], [0, 0.1]], [180.0 - math.degrees(math.atan(0.1))],
     180.0 - math.degrees(math.atan(0.1)), 1),
])
def test_turning_angles_and_smoothness(points: list[list[float]], angles: list[float],
                                       total: float, sharp: int) -> None:
    xy = np.asarray(points, dtype=float)
    np.testing.assert_allclose(turning_angles(xy), angles, atol=1e-9)
    got_total, got_sharp = smoothness(xy)
    assert got_total == pytest.approx(total)
    assert got_sharp == sharp


def test_velocity_jerk_sums_absolute_acceleration_changes() -> None:
    # v = 0, 1, 1, 0 at 1 s: a = 1, 0, -1; |delta a| = 1 + 1
    assert velocity_jerk(np.arange(4.0), np.array([0.0, 1.0, 1.0, 0.0])) == pytest.approx(2.0)
    # at 0.5 s the accelerations double: a = 2, 0, -2
    assert velocity_jerk(0.5 * np.arange(4.0), np.array([0, 1, 1, 0.0])) == pytest.approx(4.0)
    assert velocity_jerk(np.arange(2.0), np.array([0.0, 1.0])) == 0.0


# ---- SPL and BARN -----------------------------------------------------------------------------


@pytest.mark.parametrize(("success", "shortest", "driven", "expected"), [
    (True, 4.0, 5.0, 0.8),
    (True, 4.0, 3.5, 1.0),  # arrival inside the tolerance can be shorter than l
    (False, 4.0, 4.0, 0.0),
])
def test_spl_term(success: bool, shortest: float, driven: float, expected: float) -> None:
    assert spl_term(success, shortest, driven) == pytest.approx(expected)


@pytest.mark.parametrize(("time_s", "expected"), [
    (10.0, 8.0 / 16.0),   # faster than 2 t_opt: clipped to 2 t_opt
    (20.0, 8.0 / 20.0),
    (100.0, 8.0 / 64.0),  # slower than 8 t_opt: clipped to 8 t_opt
])
def test_barn_term_clips_time(time_s: float, expected: float) -> None:
    # l = 4 m at v_ref = 0.5 m/s: t_opt = 8 s
    assert barn_term(True, 4.0, time_s, 0.5) == pytest.approx(expected)
    assert barn_term(False, 4.0, time_s, 0.5) == 0.0


def test_percentiles_match_numpy_definition() -> None:
    p50, p99 = percentiles_us(np.arange(1.0, 101.0))
    assert p50 == pytest.approx(50.5)
    assert p99 == pytest.approx(99.01)
    assert percentiles_us([]) == (None, None)


# ---- clearance --------------------------------------------------------------------------------


def test_clearance_along_subtracts_radius_and_places_moving_obstacles(empty_world: World) -> None:
    track = Track([0.0, 1.0], [[0.0, 0.0], [1.5, 0.0]], [0.0, 0.0])
    np.testing.assert_allclose(clearance_along(empty_world, track, 0.2), [1.8, 0.3])
    still = MovingObstacle(radius=0.5, speed=0.0, waypoints=((0.0, 1.0),))
    world = World(name="m", size=(4.0, 4.0), obstacles=(), start=(0, 0, 0), goal=(1, 0),
                  moving=(still,))
    # (0, 0) is 1 m from the obstacle's centre: 0.5 m from its surface
    np.testing.assert_allclose(clearance_along(world, track, 0.2), [0.3, 0.3])
    np.testing.assert_allclose(clearance_along(world, track, 0.2, moving=False), [1.8, 0.3])


# ---- one episode and the summary --------------------------------------------------------------


def test_episode_metrics_of_a_straight_success() -> None:
    track = _line_track(n=5, dt=1.0, speed=0.5)  # 2 m in 4 s
    ep = episode_metrics(track, success=True, collision=False, shortest_path=2.0,
                         clearance=np.array([0.5, 0.4, 0.3, 0.4, 0.5]), v_ref=0.5,
                         compute_us=[10.0, 20.0, 30.0, 40.0])
    assert ep["outcome"] == "success" and not ep["timeout"]
    assert ep["time_s"] == pytest.approx(4.0)
    assert ep["path_length"] == pytest.approx(2.0)
    assert ep["spl"] == pytest.approx(1.0)
    assert ep["barn_score"] == pytest.approx(4.0 / 8.0)  # t_opt 4 s, t clipped to 8 s
    assert ep["min_clearance"] == pytest.approx(0.3)
    assert ep["mean_clearance"] == pytest.approx(0.42)
    assert ep["smoothness_deg"] == 0.0 and ep["sharp_turns"] == 0
    assert ep["velocity_jerk"] == pytest.approx(0.5)  # a = 0.5, 0, 0, 0
    assert ep["steps"] == 4
    assert ep["compute_us_p50"] == pytest.approx(25.0)


def test_collision_is_never_a_success() -> None:
    ep = episode_metrics(_line_track(), success=True, collision=True, shortest_path=2.0,
                         clearance=np.zeros(5), v_ref=0.5)
    assert ep["outcome"] == "collision" and not ep["success"] and ep["spl"] == 0.0


def test_summarize_rates_means_over_successes_and_pooled_compute() -> None:
    common = {"shortest_path": 2.0, "v_ref": 0.5}
    win = episode_metrics(_line_track(5, 1.0, 0.5), success=True, collision=False,
                          clearance=np.array([0.3, 0.6]), **common)
    crash = episode_metrics(_line_track(3, 1.0, 0.5), success=False, collision=True,
                            clearance=np.array([-0.1]), **common)
    slow = episode_metrics(_line_track(9, 1.0, 0.1), success=False, collision=False,
                           clearance=np.array([1.0]), **common)
    s = summarize([win, crash, slow], np.arange(1.0, 101.0), 0.5)
    assert s["n_episodes"] == 3
    assert (s["success_rate"], s["collision_rate"], s["timeout_rate"]) == \
        pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert s["spl"] == pytest.approx(1.0 / 3)
    assert s["barn_score"] == pytest.approx(0.5 / 3)
    assert s["mean_time_s"] == pytest.approx(4.0)  # successes only
    assert s["mean_path_length"] == pytest.approx(2.0)
    assert s["min_clearance"] == pytest.approx(-0.1)
    assert s["mean_clearance"] == pytest.approx((0.45 - 0.1 + 1.0) / 3)
    assert s["compute_us_p50"] == pytest.approx(50.5)
    assert s["barn_v_ref"] == 0.5
    none = summarize([crash], [], 0.5)
    assert none["mean_time_s"] is None and none["compute_us_p99"] is None


# ---- judging a recorded run -------------------------------------------------------------------


def test_judge_run_cuts_at_arrival() -> None:
    track = _line_track(n=6, dt=1.0, speed=0.5)  # x = 0, 0.5, ..., 2.5
    verdict = judge_run(track, goal=(2.0, 0.0), tolerance=0.25)
    assert (verdict.end, verdict.success, verdict.collision) == (5, True, False)


def test_judge_run_collision_first_by_clearance_or_scan() -> None:
    track = _line_track(n=6, dt=1.0, speed=0.5)
    clr = np.array([0.5, 0.3, 0.0, 0.3, 0.5, 0.5])
    assert judge_run(track, (2.0, 0.0), 0.25, clearance=clr) == \
        Judgement(end=3, success=False, collision=True)
    scan = judge_run(track, (2.0, 0.0), 0.25, scan_t=np.array([0.5, 3.2]),
                     scan_min=np.array([1.0, 0.1]), radius=0.2)
    assert (scan.end, scan.collision) == (5, True)  # scan at 3.2 s -> first row at 4 s
    assert judge_run(track, (9.0, 0.0), 0.25).end == 6  # timeout: whole track


# ---- scenarios --------------------------------------------------------------------------------


def test_episode_seeds_are_stable_and_distinct() -> None:
    a = scenarios(["easy", "hard"], 3, seed=7)
    assert a == scenarios(["easy", "hard"], 3, seed=7)
    assert [s.world_seed for s in a] == [episode_seed(7, s.tier, s.index) for s in a]
    assert len({s.world_seed for s in a}) == 6
    assert episode_seed(0, "easy", 0) != episode_seed(1, "easy", 0)
    assert episode_seed(0, "easy", 0) == 1904807970  # pinned: worlds must not drift


def test_tier_lists() -> None:
    assert split_list(["easy,medium", "hard", "easy"]) == ["easy", "medium", "hard"]
    assert parse_tiers(None) == ["easy", "medium", "hard", "dynamic"]  # crowd only by name
    assert parse_tiers(["dynamic,easy"]) == ["dynamic", "easy"]
    with pytest.raises(WorldError, match="unknown tier 'moon'"):
        parse_tiers(["easy,moon"])
    with pytest.raises(ConfigError):
        scenarios(["easy"], 0, 0)


# ---- ratios and tables ------------------------------------------------------------------------


def _summary(success: float, p50: float) -> dict[str, object]:
    return {"n_episodes": 10, "success_rate": success, "collision_rate": 0.0,
            "timeout_rate": 1 - success, "spl": success / 2, "barn_score": success / 4,
            "mean_time_s": 10.0, "mean_path_length": 5.0, "min_clearance": 0.1,
            "smoothness_deg": 90.0, "velocity_jerk": 3.0, "compute_us_p50": p50,
            "compute_us_p99": 2 * p50, "per_tier": {}}


def test_ratios_against_the_classical_reference() -> None:
    summaries = {"rl": _summary(0.9, 100.0), "dwa": _summary(0.7, 400.0),
                 "mppi": _summary(0.8, 2000.0)}
    ref = reference_planner(list(summaries))
    assert ref == "dwa"
    r = ratios(summaries, ref)
    assert r["rl"]["success_diff"] == pytest.approx(0.2)
    assert r["rl"]["compute_ratio_p50"] == pytest.approx(0.25)
    assert r["mppi"]["compute_ratio_p99"] == pytest.approx(5.0)
    assert r["dwa"]["success_diff"] == 0.0
    table = markdown_table(summaries, r, ref)
    assert table.count("\n") == 4 and "+0.20" in table and "Δsuccess vs dwa" in table
    assert reference_planner(["rl", "mppi"]) == "mppi"
    assert reference_planner(["rl", "ebm"]) == "rl"


def test_box_world_clearance_is_negative_inside() -> None:
    world = World(name="b", size=(4.0, 4.0), obstacles=(Box((1.0, 0.0), (0.4, 0.4)),),
                  start=(0, 0, 0), goal=(1.5, 1.5))
    track = Track([0.0, 1.0], [[1.0, 0.0], [0.0, 0.0]], [0.0, 0.0])
    np.testing.assert_allclose(clearance_along(world, track, 0.2), [-0.2, 0.6])
