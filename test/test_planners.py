"""Classical planners (nav_policy.planners): helpers, safety on bad frames, limits, a real
PyBullet rollout past a box, MPPI determinism and the factory's errors."""

from __future__ import annotations

import itertools
import json
import math

import gymnasium as gym
import numpy as np
import pytest

import nav_policy  # noqa: F401 - registers the env ids
from nav_policy.codecs import SensorFrame, encode_action
from nav_policy.envs.registration import LOCAL_NAV_ID
from nav_policy.errors import ConfigError
from nav_policy.planners import PLANNERS, LocalPlanner, make_planner
from nav_policy.planners.base import (
    Clearance,
    Limits,
    frame_problem,
    goal_field,
    goal_in_robot_frame,
    lookahead_point,
    path_window,
    polyline_distance,
    scan_points,
    to_robot_frame,
    wrap_angle,
)
from nav_policy.planners.dwa import arc_rollout
from nav_policy.planners.global_path import global_path
from nav_policy.planners.mppi import constrain, rollout
from nav_policy.sim.robot import load_robot_spec
from nav_policy.sim.world import Box, World

CLASSICAL = ("dwa", "mppi")


@pytest.fixture(scope="module")
def robot():
    return load_robot_spec()


def make_frame(ranges: np.ndarray | None = None, pose: tuple[float, float, float] = (0.0, 0.0, 0.0),
               velocity: tuple[float, float] = (0.0, 0.0), goal: tuple[float, float] = (3.0, 0.0),
               path: np.ndarray | None = None) -> SensorFrame:
    """A 360-beam frame (angle_min -pi, 1 deg steps), free space unless `ranges` is given."""
    if ranges is None:
        ranges = np.full(360, np.inf, dtype=np.float32)
    return SensorFrame(ranges=np.asarray(ranges, dtype=np.float32), angle_min=-math.pi,
                       angle_increment=2 * math.pi / 360, range_min=0.12, range_max=3.5,
                       pose=pose, velocity=velocity, goal=goal, path=path)


# ---- helpers -------------------------------------------------------------------------------


def test_scan_points_keeps_only_returns_in_range():
    frame = SensorFrame(
        ranges=np.array([1.0, np.nan, np.inf, -np.inf, 0.05, 2.0, 5.0, 0.12], dtype=np.float32),
        angle_min=0.0, angle_increment=math.pi / 2, range_min=0.12, range_max=3.5,
        pose=(0.0, 0.0, 0.0), velocity=(0.0, 0.0), goal=(1.0, 0.0))
    pts = scan_points(frame)
    # beams 0 (0 rad, 1 m), 5 (5pi/2 = pi/2, 2 m) and 7 (7pi/2 = -pi/2, 0.12 m)
    np.testing.assert_allclose(pts, [[1.0, 0.0], [0.0, 2.0], [0.0, -0.12]], atol=1e-6)


@pytest.mark.parametrize("ranges, pose, expected", [
    (np.full(360, np.nan), (0.0, 0.0, 0.0), "360 of 360 beams are invalid"),
    (np.full(360, -np.inf), (0.0, 0.0, 0.0), "360 of 360 beams are invalid"),
    (np.full(360, 0.05), (0.0, 0.0, 0.0), "360 of 360 beams are invalid"),
    (np.full(360, np.inf), (np.nan, 0.0, 0.0), "non-finite pose"),
    (np.array([]), (0.0, 0.0, 0.0), "empty"),
])
def test_frame_problem_names_the_reason(ranges, pose, expected):
    assert expected in frame_problem(make_frame(ranges=ranges, pose=pose))


def test_frame_problem_accepts_open_space_and_bad_path_is_refused():
    assert frame_problem(make_frame()) is None  # all +inf = nothing within range, usable
    bad = make_frame(path=np.array([[0.0, 0.0], [np.nan, 1.0]]))
    assert "path" in frame_problem(bad)


@pytest.mark.parametrize("pose, goal, expected", [
    ((0.0, 0.0, 0.0), (2.0, 1.0), (2.0, 1.0)),
    ((1.0, 1.0, math.pi / 2), (1.0, 3.0), (2.0, 0.0)),
    ((0.0, 0.0, math.pi), (1.0, 0.0), (-1.0, 0.0)),
    ((1.0, 0.0, -math.pi / 2), (2.0, 0.0), (0.0, 1.0)),
])
def test_goal_in_robot_frame(pose, goal, expected):
    assert goal_in_robot_frame(pose, goal) == pytest.approx(expected, abs=1e-9)


def test_to_robot_frame_many_points():
    pts = to_robot_frame((1.0, 2.0, math.pi / 2), np.array([[1.0, 3.0], [0.0, 2.0]]))
    np.testing.assert_allclose(pts, [[1.0, 0.0], [0.0, 1.0]], atol=1e-9)


PATH = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0]])


@pytest.mark.parametrize("position, distance, expected", [
    ((0.5, 0.3), 2.0, (2.0, 0.5)),  # projects to (0.5, 0), 1.5 m to the corner, 0.5 m up
    ((0.5, -0.3), 0.5, (1.0, 0.0)),
    ((2.5, 1.0), 0.5, (2.0, 1.5)),  # projects onto the second segment
    ((0.0, 0.0), 10.0, (2.0, 2.0)),  # clipped at the end
    ((-1.0, 0.0), 0.0, (0.0, 0.0)),  # before the start projects onto it
])
def test_lookahead_point(position, distance, expected):
    assert tuple(lookahead_point(PATH, np.array(position), distance)) == pytest.approx(expected)


def test_path_window_and_single_point_path():
    np.testing.assert_allclose(path_window(PATH, np.array([1.0, 0.0]), 1.5),
                               [[1.0, 0.0], [2.0, 0.0], [2.0, 0.5]])
    one = np.array([[1.0, 1.0]])
    assert tuple(lookahead_point(one, np.array([0.0, 0.0]), 2.0)) == (1.0, 1.0)


def test_polyline_distance():
    d = polyline_distance(np.array([[1.0, 1.0], [3.0, 1.0], [-1.0, 0.0]]), PATH)
    np.testing.assert_allclose(d, [1.0, 1.0, 1.0])
    assert polyline_distance(np.array([3.0, 4.0]), np.array([[0.0, 0.0]])) == pytest.approx(5.0)


def test_wrap_angle():
    assert wrap_angle(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    np.testing.assert_allclose(wrap_angle(np.array([0.0, 2 * math.pi + 0.1, -math.pi - 0.1])),
                               [0.0, 0.1, math.pi - 0.1])


def test_clearance_is_exact_and_capped():
    c = Clearance(np.array([[1.0, 0.0], [0.0, 3.0]]), horizon=1.5)
    np.testing.assert_allclose(c(np.array([[0.0, 0.0], [1.0, 0.5], [-5.0, -5.0]])),
                               [1.0, 0.5, 1.5])
    assert Clearance(np.zeros((0, 2)), horizon=2.0)(np.zeros((3, 2))).tolist() == [2.0] * 3


def test_goal_field_goes_around_a_wall():
    free = goal_field(Clearance(np.zeros((0, 2)), 1.5), np.array([2.0, 0.0]), inflation=0.2,
                      half_size=3.0, resolution=0.1)
    assert float(free(np.zeros(2))) == pytest.approx(2.0, abs=0.15)
    wall = np.stack([np.full(41, 1.0), np.linspace(-1.0, 1.0, 41)], axis=1)  # x = 1, |y| <= 1
    blocked = goal_field(Clearance(wall, 1.5), np.array([2.0, 0.0]), inflation=0.2,
                         half_size=3.0, resolution=0.1)
    around = 2 * math.hypot(1.0, 1.2)  # over the wall's inflated end
    assert float(blocked(np.zeros(2))) == pytest.approx(around, rel=0.1)
    off_grid = goal_field(Clearance(np.zeros((0, 2)), 1.5), np.array([8.0, 0.0]), inflation=0.2,
                          half_size=3.0, resolution=0.1)
    assert float(off_grid(np.zeros(2))) == pytest.approx(8.0, abs=0.15)


def test_arc_rollout_matches_hand_computed_arcs():
    poses = arc_rollout(np.array([1.0, 1.0]), np.array([0.0, math.pi / 2]), np.array([1.0, 2.0]))
    np.testing.assert_allclose(poses[0], [[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]], atol=1e-12)
    r = 2 / math.pi  # v / w
    np.testing.assert_allclose(poses[1], [[r, r, math.pi / 2], [0.0, 2 * r, math.pi]], atol=1e-12)


def test_mppi_constrain_and_rollout():
    limits = Limits(v_min=0.0, v_max=0.5, w_max=2.0, acc_v=2.5, acc_w=3.2, radius=0.2)
    u = np.array([[[1.0, -5.0], [1.0, -5.0], [-1.0, 0.0]]])
    out = constrain(u, 0.0, 0.0, limits, dt=0.1)
    np.testing.assert_allclose(out[0], [[0.25, -0.32], [0.5, -0.64], [0.25, -0.32]])
    poses = rollout(np.full((1, 4, 2), [0.5, 0.0]), dt=0.5)
    np.testing.assert_allclose(poses[0, :, 0], [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(poses[0, :, 1:], 0.0)


def test_limits_clamp(robot):
    lim = Limits.from_robot(robot)
    assert lim.clamp(9.0, -9.0) == (robot.v_max, -robot.w_max)
    assert lim.clamp(-1.0, 0.5) == (0.0, 0.5)


# ---- planners ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=CLASSICAL)
def planner(request, robot):
    return make_planner(request.param, robot=robot, seed=3)


def test_planner_follows_the_protocol(planner):
    assert isinstance(planner, LocalPlanner)
    assert planner.name in PLANNERS


@pytest.mark.parametrize("kwargs", [
    {"ranges": np.full(360, np.nan)},
    {"pose": (0.0, np.inf, 0.0)},
    {"velocity": (np.nan, 0.0)},
    {"goal": (np.nan, 1.0)},
])
def test_planner_stops_on_unusable_frame(planner, kwargs):
    planner.reset()
    assert planner.compute(make_frame(**{"velocity": (0.4, 0.5), **kwargs})) == (0.0, 0.0)
    assert planner.last_info["reason"]


def test_planner_stops_at_the_goal(planner):
    planner.reset()
    assert planner.compute(make_frame(goal=(0.1, 0.05))) == (0.0, 0.0)
    assert planner.last_info["reason"] == "goal reached"


def test_planner_commands_stay_within_limits(planner, robot):
    rng = np.random.default_rng(7)
    planner.reset()
    for _ in range(12):
        ranges = rng.uniform(0.15, 4.0, 360).astype(np.float32)
        ranges[rng.random(360) < 0.2] = np.inf
        ranges[rng.random(360) < 0.1] = np.nan
        frame = make_frame(ranges=ranges,
                           pose=(*rng.uniform(-3, 3, 2), rng.uniform(-math.pi, math.pi)),
                           velocity=(rng.uniform(0, robot.v_max), rng.uniform(-robot.w_max,
                                                                               robot.w_max)),
                           goal=tuple(rng.uniform(-4, 4, 2)))
        v, w = planner.compute(frame)
        assert isinstance(v, float) and isinstance(w, float)
        assert 0.0 <= v <= robot.v_max and -robot.w_max <= w <= robot.w_max
        assert planner.last_info["compute_s"] >= 0


def test_planner_uses_a_path_when_given(planner):
    planner.reset()
    path = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]])
    v, _ = planner.compute(make_frame(path=path, goal=(1.0, 2.0)))
    assert 0.0 <= v and "reason" not in planner.last_info


BOX_WORLD = World(name="one_box", size=(6.0, 4.0),
                  obstacles=(Box(center=(0.0, 0.0), size=(0.6, 1.0)),),
                  start=(-2.0, 0.0, 0.0), goal=(2.0, 0.0))


@pytest.mark.parametrize("name", CLASSICAL)
def test_planner_drives_around_a_box_in_pybullet(name, robot):
    env = gym.make(LOCAL_NAV_ID, world=BOX_WORLD)
    try:
        env.reset(seed=0)
        base = env.unwrapped
        planner = make_planner(name, robot=robot, seed=0)
        info: dict = {}
        for _ in range(250):
            v, w = planner.compute(base.sensors())
            _, _, terminated, truncated, info = env.step(encode_action(v, w, base.action_spec))
            assert not info["collision"]
            if terminated or truncated:
                break
        assert info["is_success"], f"{name} ended {info['distance_to_goal']:.2f} m from the goal"
    finally:
        env.close()


def test_mppi_is_deterministic_given_the_seed(robot):
    frames = [make_frame(ranges=np.where(np.arange(360) % 90 < 20, 1.2, np.inf),
                         velocity=(0.1 * k, 0.0), goal=(3.0, 1.0)) for k in range(3)]

    def commands(seed: int) -> list[tuple[float, float]]:
        planner = make_planner("mppi", robot=robot, seed=seed, batch_size=200)
        return [planner.compute(f) for f in frames]

    assert commands(5) == commands(5)
    assert commands(5) != commands(6)
    planner = make_planner("mppi", robot=robot, seed=5, batch_size=200)
    first = [planner.compute(f) for f in frames]
    planner.reset()
    assert [planner.compute(f) for f in frames] == first


def test_make_planner_errors():
    with pytest.raises(ConfigError, match="rl, ebm, dwa, mppi"):
        make_planner("teb")
    with pytest.raises(ConfigError, match="unknown dwa parameter"):
        make_planner("dwa", not_a_weight=1.0)
    with pytest.raises(ConfigError, match="w_goal"):
        make_planner("mppi", w_goal=-1.0)
    assert PLANNERS == ("rl", "ebm", "dwa", "mppi")


def test_make_planner_overrides_config(robot):
    planner = make_planner("dwa", robot=robot, vx_samples=5, vtheta_samples=4)
    v, _ = planner.window(0.0, 0.0)
    assert len(v) == 5 * 5  # 4 w samples + w = 0


def test_global_path_joins_start_and_goal(robot):
    path = global_path(BOX_WORLD, robot.radius)
    np.testing.assert_allclose(path[0], BOX_WORLD.start[:2])
    np.testing.assert_allclose(path[-1], BOX_WORLD.goal)
    dense = np.concatenate([np.linspace(a, b, 20) for a, b in itertools.pairwise(path)])
    assert BOX_WORLD.clearance(dense[:, 0], dense[:, 1]).min() > robot.radius


def test_evaluate_script_runs_one_episode(tmp_path):
    from nav_policy.planners.evaluate import main

    out = tmp_path / "eval.json"
    assert main(["--planner", "dwa", "--tier", "easy", "--episodes", "1", "--seed", "0",
                 "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["episodes"] == 1
    assert summary["success_rate"] + summary["collision_rate"] + summary["timeout_rate"] == 1.0


@pytest.mark.parametrize("name", CLASSICAL)
def test_config_file_sets_every_parameter(name):
    from dataclasses import fields

    from nav_policy.planners import load_planner_config
    from nav_policy.planners.dwa import DWAConfig
    from nav_policy.planners.mppi import MPPIConfig

    config_cls = {"dwa": DWAConfig, "mppi": MPPIConfig}[name]
    assert set(load_planner_config(name)) == {f.name for f in fields(config_cls)}
