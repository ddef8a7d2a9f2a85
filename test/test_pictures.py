"""Every PNG the project writes exists with a size a person can read (title, legend and axes are
drawn by matplotlib around the picture), and the benchmark draws failed episodes first."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


def dims(path: Path) -> tuple[int, int]:
    img = cv2.imread(str(path))
    assert img is not None, f"{path} is not a readable PNG"
    assert img.std() > 5, f"{path} is blank"
    return img.shape[1], img.shape[0]  # width, height


@pytest.fixture(scope="module")
def bench_results() -> dict:
    from nav_policy.bench.runner import BenchConfig, PlannerSpec, run_benchmark

    cfg = BenchConfig(planners=(PlannerSpec("dwa"),), tiers=("easy",), episodes=3, seed=0,
                      workers=1)
    return run_benchmark(cfg, progress=False)


def test_bench_pictures(tmp_path: Path, bench_results: dict) -> None:
    from nav_policy.bench.report import planner_summary, write_report

    summaries = {k: planner_summary(v, 0.5) for k, v in bench_results.items()}
    written = write_report(tmp_path, bench_results, summaries, {"command": "test",
                                                                "barn_v_ref": 0.5})
    pngs = [p for p in written if p.suffix == ".png"]
    assert tmp_path / "success_by_tier.png" in pngs and len(pngs) == 4
    w, h = dims(tmp_path / "success_by_tier.png")
    assert w >= 640 and h >= 400, (w, h)  # was 330 px wide with its title cut
    for p in pngs[1:]:
        w, h = dims(p)
        assert w >= 700 and h >= 600, (p, w, h)


def test_failures_are_drawn_first(bench_results: dict) -> None:
    from nav_policy.bench.report import trajectory_episodes

    results = [r for rs in bench_results.values() for r in rs]
    last = max(results, key=lambda r: r.scenario.index)
    last.metrics = {**last.metrics, "success": False}  # as if the last episode had failed
    chosen = trajectory_episodes(results, 1)
    assert list(chosen) == [last.scenario.key]
    assert len(trajectory_episodes(results, 3)) == 3


def test_demo_episode_picture(tmp_path: Path) -> None:
    from nav_policy.demo import _episode_picture, run_episode

    result = run_episode("dwa", "easy", 0)
    _episode_picture(result, tmp_path / "episode.png")
    w, h = dims(tmp_path / "episode.png")
    assert w >= 900 and h >= 700, (w, h)


def test_demo_trajectory_picture(tmp_path: Path) -> None:
    from nav_policy.demo import Record, picture
    from nav_policy.paths import config_path, sim_path

    rec = Record()
    for k in range(30):  # a short straight drive from the hallway towards the couch
        rec.poses.append((0.1 * k, 0.0, -3.0 + 0.1 * k, np.pi / 2))
        rec.speeds.append(0.3)
    rec.scans.append((0.0, [1.0] * 360, -np.pi, 2 * np.pi / 360))
    rec.status.append({"state": "running", "step": 0, "goal": [0.0, -1.0]})
    picture(rec, sim_path("worlds/home.yaml"), config_path("landmarks_demo.yaml"),
            tmp_path / "trajectory.png", 0.5, 0.2, title="'go to the couch'\nplanner dwa")
    w, h = dims(tmp_path / "trajectory.png")
    assert w >= 1000 and h >= 800, (w, h)


def test_study_plots(tmp_path: Path) -> None:
    """The research scripts' PNGs (ebm study, deception benchmark) from results shaped as
    theirs: readable sizes."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    from ebm_study import TIERS, plot  # the study script lives in experiments/

    from nav_policy.deception.bench import plot_runtime, plot_tunability

    steps = {k: {t: {"success_rate": 0.5 + 0.1 * i} for i, t in enumerate(TIERS)}
             for k in ("1", "2", "4", "8")}
    group = {"p50": 1.0, "p90": 2.0}
    plot({"steps": steps, "uncertainty": {"training_like": group, "energy_high": 1.5,
                                          "lidar_noise_0.15_dropout_0.25": group,
                                          "unseen_home_world": group,
                                          "random_observations": group}},
         tmp_path / "ebm.png")
    plot_tunability({"grid": {"budgets": [1.0, 1.5, 2.0], "rl_completion": [0.1, 0.4, 0.6],
                              "pi_d2_completion": [0.1, 0.3, 0.5]}}, tmp_path / "tune.png",
                    "deception vs budget")
    row = {key: 1.0 for key in ("rl_decision_ms", "retarget_rl_ms", "per_goal_dijkstra_ms",
                                "pi_d2_ms", "pi_d4_ms", "shortest_ms")}
    plot_runtime([{"kind": "grid", "nodes": n, **row} for n in (64, 256)], tmp_path / "rt.png")
    for name in ("ebm.png", "tune.png", "rt.png"):
        w, h = dims(tmp_path / name)
        assert w >= 600 and h >= 400, (name, w, h)
