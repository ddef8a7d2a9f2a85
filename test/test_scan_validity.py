"""One scan-validity rule (nav_policy.codecs.scan) for every planner, the node and the benchmark:
the same frame with 70 % NaN beams stops the learned planners and DWA/MPPI alike, and a frame
with 30 % NaN beams is driven on by all of them."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import nav_policy  # noqa: F401
from nav_policy.codecs.scan import MAX_INVALID_FRACTION, scan_problem
from nav_policy.planners import make_planner
from nav_policy.planners.safety import scan_problem as node_scan_problem

PLANNERS = ("rl", "ebm", "dwa", "mppi")


@pytest.fixture(scope="module")
def frame():
    env = gym.make("nav_policy/LocalNav-v0", tier="easy")
    env.reset(seed=3, options={"tier": "easy", "world_seed": 3})
    f = env.unwrapped.sensors()
    env.close()
    return f


def corrupted(frame, fraction: float):
    r = np.asarray(frame.ranges, dtype=np.float32).copy()
    idx = np.random.default_rng(0).permutation(r.size)[:int(round(fraction * r.size))]
    r[idx] = np.nan
    return dataclasses.replace(frame, ranges=r)


@pytest.mark.parametrize("name", PLANNERS)
def test_70_percent_nan_stops_every_planner(frame, name: str) -> None:
    bad = corrupted(frame, 0.7)
    assert scan_problem(bad.ranges, bad.range_min) is not None
    assert node_scan_problem is scan_problem  # the node checks with the same function
    planner = make_planner(name, seed=0)
    planner.reset()
    assert planner.compute(bad) == (0.0, 0.0)
    assert "beams are invalid" in planner.last_info["reason"]


@pytest.mark.parametrize("name", PLANNERS)
def test_30_percent_nan_is_driven_on(frame, name: str) -> None:
    ok = corrupted(frame, 0.3)
    assert scan_problem(ok.ranges, ok.range_min) is None
    planner = make_planner(name, seed=0)
    planner.reset()
    v, w = planner.compute(ok)
    assert "beams are invalid" not in str(planner.last_info.get("reason", ""))
    assert np.isfinite([v, w]).all()


def test_rule_edges() -> None:
    n = 360
    r = np.full(n, 1.0)
    r[: int(MAX_INVALID_FRACTION * n)] = np.nan  # exactly half: still usable
    assert scan_problem(r, 0.12) is None
    r[int(MAX_INVALID_FRACTION * n)] = -np.inf  # one more: stop
    assert "181 of 360" in scan_problem(r, 0.12)
    assert scan_problem(np.full(n, np.inf), 0.12) is None  # an open field is valid
    assert scan_problem(np.full(n, 0.05), 0.12) is not None  # all below range_min
    assert scan_problem(np.zeros(0), 0.12) == "empty scan"
