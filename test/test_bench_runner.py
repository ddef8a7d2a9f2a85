"""Benchmark runner on real PyBullet episodes: determinism, backends, JSON contract, errors.

The harness is exercised with small goal-seeking planners defined here (so it does not depend
on the planners under test); the command-line runs that need nav_policy.planners use DWA.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nav_policy.bench.cli import bench_payload
from nav_policy.bench.report import report_text, sign_test_p, wilson_interval
from nav_policy.bench.runner import (
    BenchConfig,
    EpisodeResult,
    PlannerSpec,
    make_tasks,
    run_benchmark,
    run_tasks,
)
from nav_policy.cli import main
from nav_policy.codecs import SensorFrame
from nav_policy.errors import ConfigError
from nav_policy.sim.robot import RobotSpec

REPO = Path(__file__).resolve().parents[1]

PATHS_SEEN: list[bool] = []


class GoalSeeker:
    """Turn towards the goal, drive when roughly facing it (no obstacle avoidance)."""

    def __init__(self, name: str = "seek", speed: float = 0.4) -> None:
        self.name = name
        self.speed = speed
        self.last_info: dict[str, Any] = {}

    def reset(self) -> None:
        self.last_info = {}

    def compute(self, frame: SensorFrame) -> tuple[float, float]:
        PATHS_SEEN.append(frame.path is not None)
        x, y, yaw = frame.pose
        gx, gy = frame.goal
        err = (math.atan2(gy - y, gx - x) - yaw + math.pi) % (2 * math.pi) - math.pi
        v = self.speed if abs(err) < 0.5 else 0.05
        return v, max(-2.0, min(2.0, 2.0 * err))


def seek_factory(spec: PlannerSpec, robot: RobotSpec, seed: int) -> GoalSeeker:
    """Planner factory for the harness: 'seek' at 0.4 m/s, 'creep' at 0.2 m/s."""
    return GoalSeeker(spec.name, 0.2 if spec.name == "creep" else 0.4)


def _config(**kw: Any) -> BenchConfig:
    base: dict[str, Any] = {"planners": (PlannerSpec("seek"),), "tiers": ("easy",),
                            "episodes": 2, "seed": 3}
    return BenchConfig(**{**base, **kw})


def _rows(results: list[EpisodeResult]) -> list[dict[str, Any]]:
    """Per-episode records without the timing-dependent compute columns."""
    return [{k: v for k, v in r.row().items() if not k.startswith("compute_us")}
            for r in results]


@pytest.fixture(scope="module")
def inline_results() -> list[EpisodeResult]:
    return run_tasks(make_tasks(_config(), seek_factory), workers=1, progress=False)


def test_episodes_are_reproducible(inline_results: list[EpisodeResult]) -> None:
    again = run_tasks(make_tasks(_config(), seek_factory), workers=1, progress=False)
    assert _rows(again) == _rows(inline_results)
    first = inline_results[0]
    assert first.world.tier == "easy" and first.world.shortest_path is not None
    assert len(first.poses) == first.metrics["steps"] + 1 == len(first.compute_us) + 1
    assert np.all(first.compute_us > 0)
    np.testing.assert_allclose(first.poses[0], first.world.start)


def test_process_pool_matches_inline(inline_results: list[EpisodeResult]) -> None:
    pooled = run_tasks(make_tasks(_config(), seek_factory), workers=2, progress=False)
    assert _rows(pooled) == _rows(inline_results)


def broken_factory(spec: PlannerSpec, robot: RobotSpec, seed: int) -> GoalSeeker:
    raise ConfigError(f"planner {spec.name!r} cannot be built here")


def test_worker_errors_reach_the_caller() -> None:
    tasks = make_tasks(_config(), broken_factory)
    with pytest.raises(ConfigError, match="cannot be built here"):
        run_tasks(tasks, workers=2, progress=False)


def test_ray_matches_process_pool(inline_results: list[EpisodeResult]) -> None:
    ray = pytest.importorskip("ray")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_tasks(make_tasks(_config(), seek_factory), ray="auto", progress=False)
    finally:
        ray.shutdown()
    assert _rows(remote) == _rows(inline_results)


def test_compare_gives_every_planner_the_same_episodes(tmp_path: Path) -> None:
    cfg = _config(planners=(PlannerSpec("seek"), PlannerSpec("creep")), episodes=1,
                  tiers=("easy", "dynamic"))
    grouped = run_benchmark(cfg, factory=seek_factory, progress=False)
    seeds = {name: [r.scenario.world_seed for r in res] for name, res in grouped.items()}
    assert seeds["seek"] == seeds["creep"] and len(seeds["seek"]) == 2
    payload, summaries = bench_payload(cfg, grouped, tmp_path, "cmd", compare=True)
    assert set(payload["planners"]) == {"seek", "creep"}
    assert payload["reference"] == "seek"  # no classical planner: the first one named
    assert payload["ratios"]["seek"]["success_diff"] == 0.0
    creep = payload["planners"]["creep"]
    assert set(creep["per_tier"]) == {"easy", "dynamic"}
    assert payload["tiers"] == ["easy", "dynamic"] and payload["barn_v_ref"] == 0.5
    # the paired comparison counts, world by world, against the reference's own outcomes
    seek = {(e["tier"], e["index"]): e["success"] for e in payload["planners"]["seek"]["per_episode"]}
    for e in creep["per_episode"]:
        cell = payload["paired"]["creep"][e["tier"]]
        assert cell["pairs"] == 1
        assert cell["wins"] == int(e["success"] and not seek[(e["tier"], e["index"])])
        assert cell["losses"] == int(seek[(e["tier"], e["index"])] and not e["success"])
    assert "seek" not in payload["paired"]
    lo, hi = creep["per_tier"]["easy"]["success_ci95"]
    assert 0.0 <= lo <= creep["per_tier"]["easy"]["success_rate"] <= hi <= 1.0
    text = report_text(summaries, payload)
    assert "succeeded where seek failed" in text and "95% CI" in text
    json.dumps(payload, allow_nan=False)


def test_success_intervals_and_sign_test() -> None:
    # scipy (a dependency) is an independent implementation of both
    from scipy.stats import binomtest
    for k, n in [(0, 20), (15, 20), (19, 20), (81, 100)]:
        ref = binomtest(k, n).proportion_ci(method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ref.low, ref.high), abs=1e-4)
        for wins, losses in [(k % 7, n % 5), (3, 0), (6, 7)]:
            expect = binomtest(wins, wins + losses).pvalue if wins + losses else 1.0
            assert sign_test_p(wins, losses) == pytest.approx(expect, rel=1e-9)
    assert wilson_interval(20, 20)[1] == 1.0 and wilson_interval(20, 20)[0] < 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    # one episode in 20 moves the rate 5 points; the interval at 19/20 spans 25
    lo, hi = wilson_interval(19, 20)
    assert hi - lo > 0.2
    # exact sign test: 10 wins to 0 is p = 2 / 2^10; 6 to 7 is no evidence at all
    assert sign_test_p(10, 0) == pytest.approx(2 / 1024)
    assert sign_test_p(6, 7) == 1.0 and sign_test_p(0, 0) == 1.0
    assert sign_test_p(3, 0) == pytest.approx(0.25)


def test_world_file_scenarios(tmp_path: Path) -> None:
    corridor = Path(__file__).resolve().parents[1] / "sim" / "worlds" / "corridor.yaml"
    if not corridor.is_file():
        pytest.skip("sim/worlds/corridor.yaml is not in this checkout")
    cfg = _config(tiers=(), worlds=(str(corridor),), episodes=1)
    (result,) = run_benchmark(cfg, factory=seek_factory, progress=False)["seek"]
    assert result.scenario.tier == "corridor" and result.scenario.world_file == str(corridor)
    assert result.metrics["shortest_path"] == pytest.approx(8.0, abs=0.1)  # 8 m apart
    np.testing.assert_allclose(result.poses[0], [-4.0, 0.0, 0.0])


def test_infeasible_world_file_exits_2(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    walled = tmp_path / "walled.yaml"
    walled.write_text("name: walled\nsize: [6.0, 4.0]\nstart: [-2.0, 0.0, 0.0]\n"
                      "goal: [2.0, 0.0]\nobstacles:\n"
                      "  - {type: box, center: [0.0, 0.0], size: [0.2, 4.0]}\n")
    err = _one_line_error(capsys, ["bench", "--planner", "dwa", "--world", str(walled),
                                   "--episodes", "1", "--out", str(tmp_path / "r")])
    assert "no collision-free path" in err


def test_global_path_reaches_the_planner() -> None:
    PATHS_SEEN.clear()
    run_tasks(make_tasks(_config(episodes=1, global_path=True), seek_factory), progress=False)
    assert PATHS_SEEN and all(PATHS_SEEN)


# ---- command line -------------------------------------------------------------------------------


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(("argv", "needle"), [
    (["bench", "--planner", "astar", "--episodes", "1"], "unknown planner 'astar'"),
    (["bench", "--planner", "dwa", "--tier", "easy,moon"], "unknown tier 'moon'"),
    (["bench", "--compare", "dwa,nope"], "unknown planner 'nope'"),
    (["bench", "--planner", "dwa", "--episodes", "0"], "--episodes must be at least 1"),
    (["bench", "--planner", "dwa", "--workers", "2", "--ray", "local"], "not both"),
    (["bench"], "give --planner NAME or --compare"),
    (["bench", "--planner", "rl", "--model", "/nonexistent/policy.onnx"], "does not exist"),
    (["bench", "--planner", "dwa", "--model", "x.onnx"], "say which planner"),
])
def test_bench_bad_input_exits_2(capsys: pytest.CaptureFixture[str], argv: list[str],
                                 needle: str) -> None:
    assert needle in _one_line_error(capsys, argv)


def test_untrained_learned_planner_is_named(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    """Without its model file the bench names the planner and how to train it (the shipped
    file's name is pointed elsewhere: both learned models ship)."""
    from nav_policy.planners import learned as planner_mod

    monkeypatch.setitem(planner_mod.DEFAULT_MODELS, "ebm", "not_trained_ebm.onnx")
    err = _one_line_error(capsys, ["bench", "--planner", "ebm", "--tier", "easy", "--episodes",
                                   "1", "--out", str(tmp_path)])
    assert err.startswith("nav-policy bench: planner 'ebm' is not trained yet")


def test_bench_json_stdout_and_report_files(tmp_path: Path) -> None:
    """A fresh process (PyBullet prints its banner there): stdout is exactly one JSON object."""
    pytest.importorskip("nav_policy.planners.dwa")
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "nav_policy.cli", "bench", "--planner", "dwa", "--tier", "easy",
         "--episodes", "1", "--seed", "0", "--workers", "1", "--json", "-", "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    payload = json.loads(proc.stdout)
    for key in ("success_rate", "collision_rate", "timeout_rate", "spl", "barn_score",
                "compute_us_p50", "compute_us_p99", "barn_v_ref", "mean_time_s",
                "min_clearance", "smoothness_deg", "sharp_turns", "velocity_jerk"):
        assert key in payload
    assert payload["planner"] == "dwa" and payload["episodes"] == 1 and payload["seed"] == 0
    assert payload["per_episode"][0]["world_seed"] == 1904807970
    assert "pybullet build time" in proc.stderr  # the banner went to stderr
    for name in ("episodes.csv", "summary.md", "results.json", "success_by_tier.png",
                 "trajectories/easy_000.png"):
        assert (out / name).is_file(), name
    assert (out / "episodes.csv").read_text().splitlines()[0].startswith("planner,tier,index")


def test_traced_collisions_and_the_served_safety_layer() -> None:
    """A goal seeker without obstacle avoidance crashes in hard worlds: its trace shows the
    approach (clearance falling to the impact step, at its speed); behind the node's safety
    layer (--safety-layer) the same planner in the same worlds does not crash."""
    from nav_policy.bench.collisions import approach, kind, summarize

    cfg = BenchConfig(planners=(PlannerSpec("seek"),), tiers=("hard",), episodes=6, seed=0)
    tasks = make_tasks(cfg, seek_factory)
    plain = run_tasks([replace(t, trace=True) for t in tasks], progress=False)
    crashes = [r for r in plain if r.metrics["collision"]]
    assert crashes, "the goal seeker should hit something in 6 hard worlds"
    for r in crashes:
        assert r.trace is not None and r.trace.shape == (len(r.compute_us), 4)
        a = approach(r.trace, 10)
        assert a["clearance_before"] > a["clearance_at_impact_step"] and a["closing_m_per_step"] > 0
        assert a["clearance_at_impact_step"] < 0.1 and kind(a["bearing_deg"]) in (
            "head-on", "oblique", "side/behind")
    rows = [{"outcome": "collision" if r.metrics["collision"] else "success" if
             r.metrics["success"] else "timeout", "min_clearance": float(r.trace[:, 2].min()),
             **({"approach": approach(r.trace, 10)} if r.metrics["collision"] else {})}
            for r in plain]
    s = summarize(rows, 0.5)
    assert s["collisions"] == len(crashes) and math.isclose(sum(s["kinds"].values()), 1.0)
    served = run_tasks([replace(t, safety_layer="zones") for t in tasks], progress=False)
    assert sum(r.metrics["collision"] for r in served) < len(crashes)


def test_collisions_command_runs_and_refuses_bad_arguments(tmp_path: Path) -> None:
    from nav_policy.bench.collisions import main as collisions_main

    out = tmp_path / "c.json"
    assert collisions_main(["--planner", "dwa", "--tier", "easy", "--episodes", "1",
                            "--no-progress", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["summary"]["easy"]["episodes"] == 1 and r["planner"] == "dwa"
    assert collisions_main(["--planner", "teleport", "--no-progress"]) == 2
    assert collisions_main(["--planner", "dwa", "--last", "1", "--no-progress"]) == 2
