"""30-second soak of local_planner_node at 50 Hz over DDS (issue 10); the 10-minute version is
the benchmark `python -m nav_policy.ros.soak` (docs/RELIABILITY.md).

Asserted: the node stays up, answers, every command is finite and within the velocity
limits, and its resident memory does not grow beyond a generous bound after the first window
(warm-up). No wall-clock latency is asserted (the machine is shared); the figures are printed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

from test_ros_nodes import policy_onnx  # noqa: E402

from nav_policy.ros.soak import MAX_V, MAX_W, soak  # noqa: E402

RSS_GROWTH_BOUND_MIB = 32.0  # over ~20 s after warm-up; a leak per tick at 50 Hz shows far more


def test_soak_30s_no_memory_growth_and_commands_within_limits(tmp_path: Path) -> None:
    model = policy_onnx(tmp_path / "forward.onnx", v=0.3, w=0.1)  # constant policy: the node's
    result = soak("rl", str(model), seconds=30.0, window=10.0)  # own machinery is soaked
    s = result["summary"]
    print(json.dumps(s))
    assert s["windows"] == 3
    assert s["commands"] > 100, s
    assert s["within_limits"], s
    for w in result["samples"]:
        assert w["commands"] > 0 and w["answered"] > 0, w
        assert w["max_abs_v"] <= MAX_V + 1e-6 and w["max_abs_w"] <= MAX_W + 1e-6, w
        assert math.isfinite(w["rss_mib"]), w
    assert s["rss_growth_mib"] <= RSS_GROWTH_BOUND_MIB, s
