"""Mission geometry and the executor state machine, without ROS (hand-computed points)."""

from __future__ import annotations

import math

import pytest

from nav_policy.instruct.execution import ExecConfig, MissionRunner
from nav_policy.instruct.landmarks import Landmark, LandmarkMap
from nav_policy.instruct.mission import (
    GeometryConfig,
    MissionGeometry,
    Pose2D,
    StepUnreachable,
    turn_heading,
)
from nav_policy.instruct.schema import Plan, Step
from nav_policy.sim.world import Box, Cylinder, World

LMS = LandmarkMap((
    Landmark("box", "object", (2.0, 0.0)),
    Landmark("door", "door", (2.0, 0.0), ("gate",)),
    Landmark("room", "area", (0.0, 0.0)),
    Landmark("far", "object", (4.0, -2.0)),
))


def geo() -> MissionGeometry:
    return MissionGeometry(LMS, None, GeometryConfig())


def close(p: tuple[float, float], q: tuple[float, float], tol: float = 1e-6) -> bool:
    return math.dist(p, q) <= tol


# ---- pure geometry (no map) ----------------------------------------------------------------


def test_go_to_object_stops_at_standoff_facing_the_robot() -> None:
    t = geo().target(Step(action="go_to", target="box"), Pose2D(0.0, 0.0))
    assert t.kind == "drive" and close(t.goal, (1.4, 0.0))


@pytest.mark.parametrize("name,expected", [("door", (2.0, 0.0)), ("room", (0.0, 0.0))])
def test_go_to_door_or_area_is_the_landmark_itself(name: str, expected: tuple) -> None:
    assert close(geo().target(Step(action="go_to", target=name), Pose2D(-3, 1)).goal, expected)


def test_go_past_abreast_then_beyond_on_the_left() -> None:
    t = geo().target(Step(action="go_past", target="box"), Pose2D(0.0, 0.0))
    assert close(t.waypoints[0], (2.0, 0.6)) and close(t.waypoints[1], (3.0, 0.6))


def test_go_past_takes_the_side_of_the_next_target() -> None:
    t = geo().target(Step(action="go_past", target="box"), Pose2D(0.0, 0.0), hint=(4.0, -2.0))
    assert close(t.waypoints[0], (2.0, -0.6)) and close(t.waypoints[1], (3.0, -0.6))


def test_go_through_before_and_after_along_the_travel_direction() -> None:
    t = geo().target(Step(action="go_through", target="door"), Pose2D(0.0, 0.0))
    assert close(t.waypoints[0], (1.3, 0.0)) and close(t.waypoints[1], (2.7, 0.0))
    at_door = geo().target(Step(action="go_through", target="door"), Pose2D(1.8, 0.0))
    assert len(at_door.waypoints) == 1 and close(at_door.goal, (2.7, 0.0))


def test_go_into_is_the_centroid() -> None:
    assert close(geo().target(Step(action="go_into", target="room"), Pose2D(5, 5)).goal, (0, 0))


def test_exit_toward_the_next_step_or_skip_when_outside() -> None:
    g = geo()
    t = g.target(Step(action="exit", target="room"), Pose2D(0.5, 0.0), hint=(5.0, 0.0))
    assert close(t.goal, (2.0, 0.0))  # area_radius 1.5 + exit_margin 0.5
    assert g.target(Step(action="exit", target="room"), Pose2D(4.0, 0.0)).kind == "skip"


@pytest.mark.parametrize("direction,angle,expected", [
    ("left", None, math.pi / 2), ("right", 45.0, -math.pi / 4), ("around", None, math.pi),
    ("left", 270.0, -math.pi / 2)])
def test_turn_heading(direction: str, angle: float | None, expected: float) -> None:
    assert math.isclose(abs(turn_heading(0.0, direction, angle)), abs(expected), abs_tol=1e-9)
    assert math.isclose(turn_heading(0.0, direction, angle), expected, abs_tol=1e-9) or \
        math.isclose(abs(expected), math.pi)


@pytest.mark.parametrize("direction,expected", [("forward", (1.0, 3.0)), ("backward", (1.0, -1.0))])
def test_move_is_relative_to_the_heading(direction: str, expected: tuple) -> None:
    step = Step(action="move", direction=direction, distance_m=2.0)
    assert close(geo().target(step, Pose2D(1.0, 1.0, math.pi / 2)).goal, expected, 1e-3)


def test_wait_and_stop() -> None:
    assert geo().target(Step(action="wait", duration_s=2.5), Pose2D(0, 0)).duration_s == 2.5
    assert geo().target(Step(action="stop"), Pose2D(0, 0)).kind == "stop"


# ---- with a map --------------------------------------------------------------------------------


def door_world() -> World:
    """8 x 6 m, a wall at x = 0 with a 0.9 m doorway at y in [-0.45, 0.45], a cylinder."""
    return World("door", (8.0, 6.0), (
        Box((0.0, 1.725), (0.15, 2.55)), Box((0.0, -1.725), (0.15, 2.55)),
        Cylinder((-2.0, -1.5), 0.3)), (-3.0, 0.5, 0.0), (3.0, 0.0))


MAP_LMS = LandmarkMap((
    Landmark("doorway", "door", (0.0, 0.0)),
    Landmark("pot", "object", (-2.0, -1.5)),
    Landmark("west", "area", (-2.0, 0.0)),
    Landmark("east", "area", (2.0, 0.0)),
))


@pytest.fixture(scope="module")
def mapped() -> MissionGeometry:
    return MissionGeometry.from_world(MAP_LMS, door_world())


def test_door_normal_from_the_wall(mapped: MissionGeometry) -> None:
    t = mapped.target(Step(action="go_through", target="doorway"), Pose2D(-3.0, 0.5))
    assert close(t.waypoints[0], (-0.7, 0.0), 0.02) and close(t.waypoints[1], (0.7, 0.0), 0.02)
    back = mapped.target(Step(action="go_through", target="doorway"), Pose2D(3.0, -2.0))
    assert close(back.waypoints[0], (0.7, 0.0), 0.02) and close(back.waypoints[1], (-0.7, 0.0), 0.02)


def test_go_to_object_approach_point_in_free_space(mapped: MissionGeometry) -> None:
    t = mapped.target(Step(action="go_to", target="pot"), Pose2D(-2.0, 1.5))
    # cylinder radius 0.3 + robot 0.2 + margin 0.15: first free point 0.65 m up from its centre
    assert close(t.goal, (-2.0, -1.5 + 0.65), 0.051)
    assert mapped.free.clearance(t.goal) >= 0.35 - 1e-9


def test_exit_a_room_closed_by_its_door_goes_through_it(mapped: MissionGeometry) -> None:
    t = mapped.target(Step(action="exit", target="west"), Pose2D(-2.0, 0.0), hint=(2.0, 0.0))
    assert t.goal[0] > 0.4  # outside the west room, beyond the doorway
    assert mapped.target(Step(action="exit", target="west"), Pose2D(2.0, 0.0)).kind == "skip"


def test_unreachable_moves_are_reported(mapped: MissionGeometry) -> None:
    with pytest.raises(StepUnreachable, match="not in free space"):
        mapped.target(Step(action="move", direction="forward", distance_m=1.5),
                      Pose2D(-1.5, 2.0, 0.0))  # into the wall


def test_path_goes_through_the_doorway(mapped: MissionGeometry) -> None:
    path = mapped.free.path((-3.0, 2.0), (3.0, 2.0))
    assert path is not None and min(abs(y) for x, y in path if abs(x) < 0.3) < 0.45


# ---- the executor state machine ---------------------------------------------------------------


def plan(*steps: dict) -> Plan:
    return Plan.model_validate({"steps": list(steps)})


def test_runner_publishes_goals_in_order_and_succeeds() -> None:
    r = MissionRunner(plan({"action": "go_to", "target": "box"},
                           {"action": "go_past", "target": "far"}), geo(), plan_paths=False)
    out = r.tick(Pose2D(0, 0), 0.0)
    assert [e["state"] for e in out.events] == ["accepted", "running"]
    goals = [out.goal]
    for k in range(1, 10):
        out = r.tick(Pose2D(*goals[-1]), float(k))
        if out.goal is not None:
            goals.append(out.goal)
        if r.done:
            break
    assert r.state == "succeeded" and out.cancel
    assert close(goals[0], (1.4, 0.0)) and len(goals) == 3  # box, then abreast + beyond far


def test_runner_stall_stops_and_reports_unreachable() -> None:
    r = MissionRunner(plan({"action": "go_to", "target": "box"}), geo(),
                      ExecConfig(stall_timeout_s=5.0))
    r.tick(Pose2D(0, 0), 0.0)
    out = r.tick(Pose2D(0, 0), 6.0)
    assert r.state == "failed" and out.cancel and "unreachable" in out.events[-1]["reason"]


def test_runner_step_timeout() -> None:
    r = MissionRunner(plan({"action": "go_to", "target": "far"}), geo(),
                      ExecConfig(step_timeout_s=3.0, stall_timeout_s=100.0))
    r.tick(Pose2D(0, 0), 0.0)
    r.tick(Pose2D(1.0, -0.5), 2.0)
    out = r.tick(Pose2D(1.0, -0.5), 3.5)
    assert r.state == "failed" and out.events[-1]["reason"].startswith("timeout")


def test_runner_turn_wait_and_stop() -> None:
    r = MissionRunner(plan({"action": "turn", "direction": "left"},
                           {"action": "wait", "duration_s": 2.0}, {"action": "stop"}), geo())
    out = r.tick(Pose2D(0, 0, 0.0), 0.0)
    assert out.cancel and out.cmd is not None and out.cmd[1] > 0  # counter-clockwise
    out = r.tick(Pose2D(0, 0, math.pi / 2), 1.0)  # turned: the wait starts
    assert r.index == 1 and not r.done
    r.tick(Pose2D(0, 0, math.pi / 2), 2.5)
    r.tick(Pose2D(0, 0, math.pi / 2), 3.1)
    assert r.state == "succeeded"


def test_runner_unreachable_step_fails_at_start() -> None:
    r = MissionRunner(plan({"action": "go_to", "target": "doorway"}), geo())
    out = r.tick(Pose2D(0, 0), 0.0)
    assert r.state == "failed" and "unreachable" in out.events[-1]["reason"]


def test_runner_recovers_by_rotating_toward_the_point_then_resends_it() -> None:
    r = MissionRunner(plan({"action": "go_to", "target": "box"}), geo(),
                      ExecConfig(recovery_after_s=2.0, stall_timeout_s=50.0))
    r.tick(Pose2D(0, 0, math.pi), 0.0)  # facing away from the box, stuck
    out = r.tick(Pose2D(0, 0, math.pi), 2.5)
    assert out.cancel and out.events[-1]["state"] == "recovering"
    out = r.tick(Pose2D(0, 0, math.pi), 2.6)
    assert out.cmd == (-0.15, 0.0)  # backs off first (no map: free behind)
    out = r.tick(Pose2D(0.3, 0, math.pi), 2.8)
    assert out.cmd is not None and out.cmd[0] == 0.0 and out.cmd[1] != 0.0
    out = r.tick(Pose2D(0.3, 0, 0.0), 3.0)  # now facing it: the goal goes out again
    assert out.goal is not None and close(out.goal, (1.4, 0.0))
