"""World model, YAML files, the tier generator and its feasibility guarantees."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from nav_policy.errors import WorldError
from nav_policy.paths import sim_path
from nav_policy.sim.generate import TIERS, WorldMaps, analyse_world, gap, generate_world
from nav_policy.sim.grid import path_length
from nav_policy.sim.robot import RobotSpec
from nav_policy.sim.world import Box, World, load_world

SEEDS = (0, 1, 2, 3)
GRID_RES = 0.05  # generate_world's default resolution
EXAMPLE_WORLDS = sorted(sim_path("worlds").glob("*.yaml"))


def _densify(points: np.ndarray, step: float = 0.02) -> np.ndarray:
    out = [points[:1]]
    for a, b in zip(points[:-1], points[1:]):
        n = max(1, int(math.ceil(np.hypot(*(b - a)) / step)))
        out.append(a + np.linspace(0, 1, n + 1)[1:, None] * (b - a))
    return np.concatenate(out)


def _assert_feasible(world: World, maps: WorldMaps, radius: float) -> None:
    sx, sy, _ = world.start
    gx, gy = world.goal
    for name, (x, y) in (("start", (sx, sy)), ("goal", (gx, gy))):
        clear = float(world.clearance(np.array(x), np.array(y), t=0.0))
        assert clear > radius, f"{name} clearance {clear:.3f} <= robot radius"
    si, sj = maps.grid.cell(sx, sy)
    assert np.isfinite(maps.field[si, sj]), "goal unreachable from start (geodesic is inf)"
    straight = math.hypot(gx - sx, gy - sy)
    assert maps.length > straight - GRID_RES, "shortest path shorter than the straight line"
    assert maps.path[0] == pytest.approx([sx, sy])
    assert np.hypot(*(maps.path[-1] - np.array([gx, gy]))) <= GRID_RES
    # the reference path keeps the robot clear of every static obstacle (up to the grid cell)
    dense = _densify(maps.path)
    assert world.clearance(dense[:, 0], dense[:, 1]).min() > radius - GRID_RES


# ---- generator ----------------------------------------------------------------------------
@pytest.mark.parametrize("tier, seed", list(itertools.product(TIERS, SEEDS)))
def test_generated_world_is_feasible(tier: str, seed: int, robot: RobotSpec) -> None:
    world, maps = generate_world(tier, seed, robot.radius)
    assert world.tier == tier and world.seed == seed
    _assert_feasible(world, maps, robot.radius)
    assert world.shortest_path == pytest.approx(maps.length, abs=1e-4)
    lo, hi = TIERS[tier].goal_distance
    assert lo <= math.hypot(world.goal[0] - world.start[0], world.goal[1] - world.start[1]) <= hi
    n_moving = len(world.moving)
    assert n_moving == TIERS[tier].n_moving if tier != "crowd" else 5 <= n_moving <= 25


@pytest.mark.parametrize("seed", SEEDS)
def test_hard_tier_gaps_fit_the_robot(seed: int, robot: RobotSpec) -> None:
    min_gap = 1.5 * 2 * robot.radius
    world, _ = generate_world("hard", seed, robot.radius)
    assert len(world.obstacles) >= 20  # really cluttered
    for a, b in itertools.combinations(world.obstacles, 2):
        assert gap(a, b) >= min_gap - 1e-9, f"{a} and {b} are {gap(a, b):.3f} m apart"
    for ob in world.obstacles:
        for wall in world.walls():
            assert gap(ob, wall) >= min_gap - 1e-9, f"{ob} is {gap(ob, wall):.3f} m from a wall"


@pytest.mark.parametrize("tier", TIERS)
def test_generation_is_reproducible(tier: str) -> None:
    a, _ = generate_world(tier, 7)
    b, _ = generate_world(tier, 7)
    c, _ = generate_world(tier, 8)
    assert a == b
    assert a != c


def test_dynamic_obstacles_keep_start_and_goal_clear(robot: RobotSpec) -> None:
    world, _ = generate_world("dynamic", 5, robot.radius)
    ts = np.arange(0.0, 60.0, 0.1)
    for x, y in (world.start[:2], world.goal):
        clear = [float(world.clearance(np.array(x), np.array(y), t=t)) for t in ts]
        assert min(clear) > robot.radius


def test_unknown_tier_is_a_clear_error() -> None:
    with pytest.raises(WorldError, match=r"unknown tier 'nope'.*easy"):
        generate_world("nope", 0)


# ---- geometry -----------------------------------------------------------------------------
@pytest.mark.parametrize("x, y, expected", [(0.0, 0.0, 0.0), (1.0, 0.0, 0.5), (0.0, 2.0, 1.75),
                                            (1.5, 1.25, math.hypot(1.0, 1.0))])
def test_box_distance(x: float, y: float, expected: float) -> None:
    box = Box(center=(0.0, 0.0), size=(1.0, 0.5))
    assert float(box.distance(np.array(x), np.array(y))) == pytest.approx(expected)


def test_moving_obstacle_ping_pong(tiny_world: World) -> None:
    m = tiny_world.moving[0]  # 3 m leg at 0.3 m/s: 10 s out, 10 s back
    assert m.position(0.0) == pytest.approx((1.5, -1.5))
    assert m.position(5.0) == pytest.approx((1.5, 0.0))
    assert m.position(10.0) == pytest.approx((1.5, 1.5))
    assert m.position(15.0) == pytest.approx((1.5, 0.0))
    assert m.position(20.0) == pytest.approx((1.5, -1.5))


# ---- YAML -------------------------------------------------------------------------------
def test_yaml_round_trip_hand_built(tiny_world: World, tmp_yaml: Path) -> None:
    tiny_world.save(tmp_yaml)
    assert load_world(tmp_yaml) == tiny_world


@pytest.mark.parametrize("tier", ["hard", "dynamic"])
def test_yaml_round_trip_generated(tier: str, tmp_yaml: Path) -> None:
    world, _ = generate_world(tier, 3)
    world.save(tmp_yaml)
    assert load_world(tmp_yaml) == world


@pytest.mark.parametrize("path", EXAMPLE_WORLDS, ids=lambda p: p.stem)
def test_example_world_files(path: Path, robot: RobotSpec) -> None:
    world = load_world(path)
    assert world.name == path.stem
    _assert_feasible(world, analyse_world(world, robot.radius), robot.radius)


def test_example_worlds_exist() -> None:
    assert len(EXAMPLE_WORLDS) >= 2


BASE = "size: [6, 4]\nstart: [-2, 0, 0]\ngoal: [2, 0]\n"


@pytest.mark.parametrize("text, message", [
    ("size: [6, 4\nstart: [0, 0]", r"not valid YAML"),
    ("- just\n- a list\n", r"expected a mapping"),
    ("start: [-2, 0]\ngoal: [2, 0]\n", r"'size' must be a list of 2 numbers"),
    (BASE + "obstacles:\n  - {type: triangle, center: [0, 0]}\n",
     r"obstacles\[0\]: unknown obstacle type 'triangle'"),
    (BASE + "obstacles:\n  - {type: cylinder, center: [0, 0], radius: -1}\n",
     r"obstacles\[0\]: 'radius' must be positive"),
    (BASE + "obstacles:\n  - {type: box, center: [0, 0]}\n", r"obstacles\[0\]: 'size'"),
    ("size: [6, 4]\nstart: [5, 0, 0]\ngoal: [2, 0]\n", r"start \[5.0, 0.0\] lies outside the arena"),
    ("size: [6, 4]\nstart: [0, 0, 0]\ngoal: [2, -9]\n", r"goal \[2.0, -9.0\] lies outside the arena"),
    (BASE + "moving:\n  - {radius: 0.2, speed: 0.3}\n", r"moving\[0\]: 'waypoints'"),
], ids=["bad-yaml", "not-a-mapping", "no-size", "unknown-type", "negative-radius", "box-no-size",
        "start-outside", "goal-outside", "moving-no-waypoints"])
def test_bad_world_file(text: str, message: str, tmp_yaml: Path) -> None:
    tmp_yaml.write_text(text)
    with pytest.raises(WorldError, match=message) as info:
        load_world(tmp_yaml)
    assert str(tmp_yaml) in str(info.value)  # the message names the file
    assert "\n" not in str(info.value)  # one line, as the CLI prints it


def test_missing_world_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(WorldError, match=r"cannot read world file .*nope\.yaml"):
        load_world(missing)


def test_start_inside_obstacle(tmp_yaml: Path, robot: RobotSpec) -> None:
    tmp_yaml.write_text(BASE + "obstacles:\n  - {type: box, center: [-2, 0], size: [0.5, 0.5]}\n")
    world = load_world(tmp_yaml)  # well-formed; the problem is geometric
    with pytest.raises(WorldError, match=r"world 'world': start \[-2.0, 0.0\] is inside an obstacle"):
        analyse_world(world, robot.radius)


def test_goal_unreachable(tmp_yaml: Path, robot: RobotSpec) -> None:
    wall = "  - {type: box, center: [0, 0], size: [0.2, 4.0]}\n"  # splits the arena in two
    tmp_yaml.write_text(BASE + "obstacles:\n" + wall)
    with pytest.raises(WorldError, match=r"no collision-free path from start"):
        analyse_world(load_world(tmp_yaml), robot.radius)


def test_path_length() -> None:
    assert path_length(np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 5.0]])) == pytest.approx(6.0)
    assert path_length(np.zeros((1, 2))) == 0.0
