"""`nav-policy demo` end to end, headless: artefacts, success flag and final error in sim.

Each case is one short instruction in the furnished home (sim/worlds/home.yaml): separate node
processes over DDS, and once with --composed (one process); --deceptive adds the deceptive
planner in both modes. conftest.py gives this pytest process its own ROS_DOMAIN_ID, which the
demo and its nodes inherit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

CASES = [  # separate processes with DWA; one process with the shipped rl policy (DWA in the
    # composed process ticks at ~1 Hz here, an open problem noted in docs/ROS.md)
    ("go past the couch and then go to the kitchen door", ["--planner", "dwa"]),
    ("go to the dining table and turn around", ["--composed", "--planner", "rl"]),
]


def run_demo(out: Path, instruction: str, extra: list[str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "nav_policy.cli", "demo", "--headless",
            "--instruction", instruction, "--out", str(out), "--json", "-", "--timeout", "120",
            *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=170,
                          stdin=subprocess.DEVNULL)


def channels(bag: Path) -> set[str]:
    from mcap.reader import make_reader

    with bag.open("rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None and summary.statistics.message_count > 100
    return {c.topic for c in summary.channels.values()}


@pytest.mark.parametrize("instruction,extra", CASES)
def test_demo_runs_the_instruction(tmp_path: Path, instruction: str, extra: list[str]) -> None:
    proc = run_demo(tmp_path, instruction, extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(proc.stdout)  # --json -: one object, nothing else on stdout
    assert metrics["success"] and metrics["mission_state"] == "succeeded"
    assert metrics["steps_done"] == metrics["steps"] == 2
    assert metrics["final_error_m"] < 0.5 and metrics["collisions"] == 0
    assert metrics["path_length_m"] > 1.0
    assert json.loads((tmp_path / "metrics.json").read_text())["success"] is True
    png = (tmp_path / "trajectory.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert {"/odom", "/scan", "/cmd_vel", "/mission_status",
            "/local_planner_node/diagnostics"} <= channels(tmp_path / "run.mcap")
    assert "mission succeeded" in proc.stderr


def test_demo_rejected_instruction_exits_1(tmp_path: Path) -> None:
    proc = run_demo(tmp_path, "go to the garage", ["--composed"])
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["mission_state"] == "rejected"


def test_demo_bad_world_exits_2(tmp_path: Path) -> None:
    proc = run_demo(tmp_path, "go to the tv", ["--world", str(tmp_path / "missing.yaml")])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("mode", [[], ["--composed"]], ids=["processes", "composed"])
def test_demo_deceptive_hides_the_goal_and_arrives(tmp_path: Path, mode: list[str]) -> None:
    """--deceptive: the dining table is reached by a route that passes the tv decoy (default
    decoys of the home) closer and spends more of its length where the observer cannot tell
    the goals apart than the shortest path between the same ends would."""
    proc = run_demo(tmp_path, "go to the dining table", ["--deceptive", *mode])
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(proc.stdout)
    assert metrics["success"] and metrics["steps_done"] == metrics["steps"] == 1
    assert metrics["planner"] == "dwa"  # the --deceptive default
    assert metrics["final_error_m"] < 0.5 and metrics["collisions"] == 0
    d = metrics["deception"]
    assert d["decoys"] == {"bedroom door": [-3.0, 2.2], "tv": [-1.8, -2.0]}
    assert d["plans"] >= 1 and d["rejections"] == [] and d["budget"] == 1.5
    assert all(r <= 1.5 + 1e-6 for r in d["planned_cost_ratio"]), d["planned_cost_ratio"]
    leg = d["legs"][0]
    assert leg["reached"] and leg["length_m"] > leg["length_m_shortest"]
    tv = list(d["decoys"]).index("tv")
    assert leg["closest_decoy_m"][tv] < leg["closest_decoy_m_shortest"][tv] - 0.3, leg
    assert leg["deceptive_fraction"] > leg["deceptive_fraction_shortest"] + 0.2, leg
    png = (tmp_path / "trajectory.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert {"/odom", "/plan", "/mission_status",
            "/deceptive_planner_node/status"} <= channels(tmp_path / "run.mcap")
    assert "mission succeeded" in proc.stderr and "deception (bedroom door, tv" in proc.stderr


@pytest.mark.parametrize("extra,needle", [
    (["--deceptive", "--decoy", "garage"], "decoy 'garage' is not a landmark"),
    (["--decoy", "tv"], "--decoy needs --deceptive"),
    (["--deceptive", "--budget", "0.5"], "--budget must be >= 1"),
])
def test_demo_bad_deceptive_input_exits_2(tmp_path: Path, extra: list[str], needle: str) -> None:
    proc = run_demo(tmp_path, "go to the tv", extra)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
