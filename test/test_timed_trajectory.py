"""Timed trajectories of moving obstacles: YAML form, position(t), simulator, SDF actors."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from nav_policy.bench.sdf import actor_waypoints, world_sdf
from nav_policy.errors import WorldError
from nav_policy.sim.world import MovingObstacle, load_world, world_from_dict

BASE = {"name": "timed", "size": [8.0, 8.0], "start": [-3.0, -3.0, 0.0], "goal": [3.0, 3.0]}
KEYS = [[1.0, 0.0, 0.0], [3.0, 2.0, 0.0], [4.0, 2.0, 1.0]]


def _world(**moving: object) -> object:
    return world_from_dict({**BASE, "moving": [{"radius": 0.3, **moving}]}, "timed.yaml")


@pytest.mark.parametrize(("t", "expected"), [
    (0.0, (0.0, 0.0)),   # before the first key: held there
    (1.0, (0.0, 0.0)),
    (2.0, (1.0, 0.0)),   # halfway between keys 0 and 1
    (3.5, (2.0, 0.5)),
    (4.0, (2.0, 1.0)),
    (9.0, (2.0, 1.0)),   # after the last key, no loop: held there
])
def test_position_is_piecewise_linear_in_time(t: float, expected: tuple[float, float]) -> None:
    m = _world(trajectory=KEYS).moving[0]
    assert m.position(t) == pytest.approx(expected)


@pytest.mark.parametrize(("t", "expected"), [
    (5.0, (1.0, 0.0)),   # period 3 s from the first key: 5 s is 2 s, halfway to key 1
    (6.0, (2.0, 0.0)),   # 2 s into the second period: key 1
    (7.0, (0.0, 0.0)),   # the third period starts at the first key
    (9.5, (2.0, 0.5)),   # 1 + 8.5 mod 3 = 3.5 s
    (0.5, (0.0, 0.0)),
])
def test_loop_repeats_from_the_first_key(t: float, expected: tuple[float, float]) -> None:
    m = _world(trajectory=KEYS, loop=True).moving[0]
    assert m.position(t) == pytest.approx(expected)


def test_yaml_round_trip_keeps_both_forms(tmp_path: Path) -> None:
    world = world_from_dict({**BASE, "moving": [
        {"radius": 0.25, "speed": 0.5, "waypoints": [[0, -2], [0, 2]]},
        {"radius": 0.3, "trajectory": KEYS, "loop": True}]})
    path = tmp_path / "w.yaml"
    world.save(path)
    again = load_world(path)
    assert again.moving == world.moving
    assert yaml.safe_load(path.read_text())["moving"][1]["trajectory"] == KEYS
    ping = again.moving[0]
    assert ping.position(8.0) == pytest.approx((0.0, 2.0))  # ping-pong unchanged: 4 m out
    assert ping.position(16.0) == pytest.approx((0.0, -2.0))  # and 4 m back


@pytest.mark.parametrize(("moving", "message"), [
    ({"trajectory": [[0, 0, 0], [0, 1, 1]]}, "increase strictly"),
    ({"trajectory": [[2, 0, 0], [1, 1, 1]]}, "increase strictly"),
    ({"trajectory": [[0, 0, 0], [1, float("nan"), 1]]}, "finite"),
    ({"trajectory": [[0, 0, 0], [float("inf"), 1, 1]]}, "finite"),
    ({"trajectory": [[0, 0], [1, 1]]}, "list of 3 numbers"),
    ({"trajectory": []}, "non-empty list"),
    ({"trajectory": [[0, 0, 0]], "loop": "yes"}, "'loop' must be true or false"),
    ({"trajectory": [[0, 0, 0]], "waypoints": [[0, 0]]}, "not both"),
])
def test_bad_trajectory_is_a_world_error(moving: dict, message: str) -> None:
    with pytest.raises(WorldError, match=message) as err:
        _world(**moving)
    assert "timed.yaml: moving[0]" in str(err.value)


def test_simulator_moves_the_obstacle_on_its_trajectory() -> None:
    from nav_policy.sim.robot import load_robot_spec
    from nav_policy.sim.simulator import Simulator

    # the robot waits at the origin; the obstacle arrives there at t = 2 s and hits it
    world = world_from_dict({**BASE, "start": [0.0, 0.0, 0.0], "moving": [
        {"radius": 0.3, "trajectory": [[0.0, 3.0, 0.0], [2.0, 0.0, 0.0]]}]})
    sim = Simulator(load_robot_spec())
    try:
        sim.load_world(world)
        sim.reset()
        hits = [sim.step(0.0, 0.0) for _ in range(25)]
        assert sim.moving_positions()[0] == pytest.approx((0.0, 0.0))
        first = hits.index(True)
        # contact once the gap (3 - t * 1.5) closes below radius + robot radius (0.5 m)
        assert 14 <= first <= 18 and not any(hits[:14])
    finally:
        sim.close()


def test_sdf_actor_follows_the_keys() -> None:
    world = _world(trajectory=KEYS, loop=True)
    actor = ET.fromstring(world_sdf(world).split("\n", 1)[1]).find("world/actor")
    assert actor.findtext("script/loop") == "true"
    assert float(actor.findtext("script/delay_start")) == pytest.approx(1.0)
    wps = actor.findall("script/trajectory/waypoint")
    got = [[float(w.findtext("time")), *map(float, w.findtext("pose").split()[:2])] for w in wps]
    np.testing.assert_allclose(got, [[0, 0, 0], [2, 2, 0], [3, 2, 1]])
    once = MovingObstacle.timed(0.3, KEYS, loop=False)
    assert actor_waypoints(once)[0] == (0.0, 0.0, 0.0)
    assert ET.fromstring(world_sdf(_world(trajectory=KEYS)).split("\n", 1)[1]).findtext(
        "world/actor/script/loop") == "false"
