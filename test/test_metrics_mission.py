"""`nav-policy metrics --bag` on a recording that holds its mission: the goal and the arrival
tolerance come from the mission executor's status, and a bag that simply ends before the goal
is called that, not a timeout."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nav_policy.bench.bag import BagWriter, read_mission
from nav_policy.cli import main


def _bag(path: Path, stop_x: float, mission: bool = True, tolerance: float | None = 0.3) -> Path:
    """The robot drives along y = 0 from x = 0 towards a step goal at (2, 0) and the recording
    ends with the robot standing at stop_x (a demo whose last step is a turn in place)."""
    with BagWriter(path) as bag:
        if mission:
            ev = {"mission": 1, "state": "running", "step": 0, "steps": 2, "action": "go_to",
                  "target": "door", "goal": [2.0, 0.0], "distance_m": 2.0}
            if tolerance is not None:
                ev["tolerance"] = tolerance
            bag.write("/mission_status", "std_msgs/msg/String", {"data": json.dumps(ev)}, 0.5)
        t, x = 0.0, 0.0
        while t <= 8.0:
            v = 0.25 if x < stop_x else 0.0
            bag.cmd_vel(t, v, 0.0)
            bag.odometry(t, (x, 0.0, 0.0), (v, 0.0))
            bag.scan(t, [1.0, math.inf, 3.0, 3.0], -math.pi, math.pi / 2, 0.12, 3.5)
            x = min(x + v * 0.1, stop_x)
            t = round(t + 0.1, 6)
        if mission:
            done = {"mission": 1, "state": "succeeded", "step": 1, "steps": 2, "action": "turn",
                    "goal": None}
            bag.write("/mission_status", "std_msgs/msg/String", {"data": json.dumps(done)}, 8.0)
    return path


def _metrics(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["metrics", *args, "--json", "-"]) == 0
    return json.loads(capsys.readouterr().out)


def test_goal_and_tolerance_from_the_mission(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    bag = _bag(tmp_path / "run.mcap", stop_x=1.73)  # 0.27 m short, inside the executor's 0.3 m
    assert read_mission(bag) == {"goal": [2.0, 0.0], "tolerance": 0.3, "state": "succeeded"}
    out = _metrics(capsys, "--bag", str(bag))
    assert out["goal"] == [2.0, 0.0] and out["goal_source"] == "mission"
    assert out["goal_tolerance"] == 0.3 and out["goal_tolerance_source"] == "mission"
    assert out["per_episode"][0]["outcome"] == "success" and out["spl"] > 0.9


def test_old_recording_uses_the_executors_default(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bag = _bag(tmp_path / "run.mcap", stop_x=1.73, tolerance=None)
    out = _metrics(capsys, "--bag", str(bag))
    assert out["goal_tolerance"] == 0.3 and out["per_episode"][0]["outcome"] == "success"


def test_a_bag_that_ends_is_not_a_timeout(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    bag = _bag(tmp_path / "run.mcap", stop_x=1.73)
    out = _metrics(capsys, "--bag", str(bag), "--goal", "2,0", "--goal-tolerance", "0.25")
    ep = out["per_episode"][0]
    assert ep["outcome"] == "ended before the goal" and ep["ended"] is True
    assert ep["timeout"] is False and out["timeout_rate"] == 0.0 and out["success_rate"] == 0.0


def test_no_mission_and_no_goal_is_a_clear_error(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bag = _bag(tmp_path / "run.mcap", stop_x=2.0, mission=False)
    assert main(["metrics", "--bag", str(bag)]) == 2
    assert "records no mission" in capsys.readouterr().err
