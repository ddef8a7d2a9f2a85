"""The crowd tier: the social force model's equations (Helbing & Molnar 1995), the generated
worlds, and pedestrians stepped live by the simulator (reacting to the robot or not)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nav_policy.sim.crowd import (
    Crowd,
    Routes,
    SocialForceParams,
    driving_forces,
    pair_forces,
    view_weight,
    wall_forces,
)
from nav_policy.sim.generate import generate_world
from nav_policy.sim.world import Box, World

P = SocialForceParams()
OPEN = World(name="open", size=(20.0, 20.0), obstacles=(), start=(-9.0, -9.0, 0.0),
             goal=(9.0, 9.0))


def _potential(r: np.ndarray, s: np.ndarray) -> float:
    """V0 exp(-b / sigma) with 2b = sqrt((|r| + |r - s|)^2 - |s|^2), straight from the paper."""
    b = 0.5 * math.sqrt((np.linalg.norm(r) + np.linalg.norm(r - s)) ** 2 - np.linalg.norm(s) ** 2)
    return P.v0_pair * math.exp(-b / P.sigma)


def test_repulsion_from_a_standing_pedestrian_is_radial_with_the_papers_magnitude() -> None:
    a, b = np.array([[1.0, 2.0]]), np.array([[1.6, 2.8]])  # 1 m apart
    f = pair_forces(a, np.zeros((1, 2)), b, np.zeros((1, 2)), P)[0, 0]
    away = (a[0] - b[0]) / np.linalg.norm(a[0] - b[0])
    assert f / np.linalg.norm(f) == pytest.approx(away)
    assert np.linalg.norm(f) == pytest.approx(P.v0_pair / P.sigma * math.exp(-1.0 / P.sigma))


@pytest.mark.parametrize("vel_b", [(0.8, 0.0), (-0.5, 1.0), (0.0, -1.3)])
def test_repulsion_is_minus_the_gradient_of_the_elliptical_potential(vel_b: tuple) -> None:
    a, b = np.array([0.3, -0.2]), np.array([1.1, 0.4])
    vb = np.array(vel_b)
    f = pair_forces(a[None], np.zeros((1, 2)), b[None], vb[None], P)[0, 0]
    s, h = vb * P.step_time, 1e-6
    grad = [(_potential(a - b + h * e, s) - _potential(a - b - h * e, s)) / (2 * h)
            for e in np.eye(2)]
    assert f == pytest.approx(-np.array(grad), rel=1e-5, abs=1e-9)


def test_field_of_view_weights_what_is_behind_by_c() -> None:
    a = np.zeros((1, 2))
    e = np.array([[1.0, 0.0]])  # walking along +x
    ahead = pair_forces(a, np.zeros((1, 2)), np.array([[1.0, 0.1]]), np.zeros((1, 2)), P)
    behind = pair_forces(a, np.zeros((1, 2)), np.array([[-1.0, 0.1]]), np.zeros((1, 2)), P)
    assert view_weight(e, ahead, P)[0, 0] == 1.0
    assert view_weight(e, behind, P)[0, 0] == P.c_behind


def test_driving_term_relaxes_towards_the_preferred_velocity() -> None:
    e = np.array([[0.0, 1.0], [1.0, 0.0]])
    vel = np.array([[0.2, 0.1], [1.0, 0.0]])
    v0 = np.array([1.2, 1.0])
    acc = driving_forces(e, vel, v0, P)
    assert acc == pytest.approx((v0[:, None] * e - vel) / P.tau)
    assert acc[1] == pytest.approx([0.0, 0.0])  # already at its preferred velocity


def test_lone_pedestrian_accelerates_towards_its_goal_as_the_model_says() -> None:
    # start and goal on routing-cell centres (0.1 m grid from -9.95): e is exactly +x
    crowd = Crowd(start=((0.05, 0.05),), radius=(0.3,), speed=(1.0,), goals=((5.05, 0.05),),
                  plan=((0,),), react=False)
    live = crowd.live(OPEN)
    acc = live.accelerations(None, None)[0]
    # at rest, e = +x: (v0 e - 0) / tau, walls 10 m away contribute ~nothing
    assert acc == pytest.approx([1.0 / P.tau, 0.0], abs=1e-6)
    for _ in range(30):
        live.step(None, None)
    assert live.vel[0] == pytest.approx([1.0, 0.0], abs=0.02)  # relaxed to v0 along e
    assert np.linalg.norm(live.vel, axis=1).max() <= P.v_max_factor * 1.0 + 1e-12


def test_wall_repulsion_pushes_away_with_the_papers_magnitude() -> None:
    world = World(name="wall", size=(10.0, 10.0), obstacles=(Box((0.0, 0.0), (10.0, 0.2)),),
                  start=(0.0, -3.0, 0.0), goal=(0.0, 3.0))
    routes = Routes.build(world, np.array([[0.0, 3.0]]), 0.3)
    d, n = routes.wall(np.array([[0.0, 0.6], [2.0, -0.5]]))
    assert d == pytest.approx([0.5, 0.4], abs=0.06)  # to the wall's face (routing grid 0.1 m)
    assert n[0] == pytest.approx([0.0, 1.0], abs=1e-6) and n[1] == pytest.approx([0.0, -1.0],
                                                                                abs=1e-6)
    f = wall_forces(np.array([0.5]), np.array([[0.0, 1.0]]), P)[0]
    assert f == pytest.approx([0.0, P.u0_wall / P.r_wall * math.exp(-0.5 / P.r_wall)])


def _head_on(react: bool) -> Crowd:
    return Crowd(start=((-2.95, 0.05),), radius=(0.3,), speed=(1.0,), goals=((3.05, 0.05),),
                 plan=((0,),), react=react)


def test_pedestrians_react_to_the_robot_only_when_told() -> None:
    paths = {}
    for react in (False, True):
        live = _head_on(react).live(OPEN)
        for _ in range(50):  # the robot stands at the origin, in the pedestrian's way
            live.step(np.array([0.05, 0.1]), np.zeros(2))
        paths[react] = np.stack(live.history)
    ignore = _head_on(False).nominal_trajectories(OPEN, 5.0)[:, 0]
    assert paths[False][:, 0] == pytest.approx(ignore)  # ignoring it: the robot-free walk
    gap = {k: np.hypot(p[:, 0, 0] - 0.05, p[:, 0, 1] - 0.1).min() for k, p in paths.items()}
    assert gap[False] < 0.1  # walks straight through it
    assert np.abs(paths[False][:, 0, 1] - 0.05).max() < 1e-9
    # reacting: it brakes towards where the driving term (v0 / tau = 2 m/s^2) meets the
    # repulsion (V0 / sigma) exp(-d / sigma), d = sigma ln(3.5) = 0.38 m (arriving at 1 m/s it
    # overshoots a little), then sidesteps (y < 0: the robot is slightly above its line)
    equilibrium = P.sigma * math.log(P.v0_pair / P.sigma * P.tau)
    assert equilibrium - 0.12 < gap[True] < equilibrium + 0.02
    assert paths[True][-1, 0, 1] < -0.2


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_crowd_tier_worlds(seed: int) -> None:
    world, maps = generate_world("crowd", seed)
    crowd = world.meta["crowd"]
    assert 5 <= len(world.moving) <= 25 and len(crowd.start) == len(world.moving)
    assert all(0.25 <= m.radius <= 0.3 for m in world.moving)
    assert all(0.5 <= v <= 1.5 for v in crowd.speed)
    assert world.meta["layout"] in ("rooms", "corridor") and len(world.obstacles) >= 4
    sx, sy, _ = world.start
    for x, y in (world.start[:2], world.goal):  # clear of walls and pedestrians at t = 0
        assert float(world.clearance(np.array(x), np.array(y), t=0.0)) > 0.2
    assert np.isfinite(maps.field[maps.grid.cell(sx, sy)]) and world.shortest_path > 0
    assert 6.0 <= float(np.hypot(world.goal[0] - sx, world.goal[1] - sy)) <= 9.0
    # they walk: every pedestrian has left its start after 20 s, most have reached a goal
    live = crowd.live(world)
    live.advance_to(20.0)
    moved = np.linalg.norm(live.pos - np.asarray(crowd.start), axis=1)
    assert moved.min() > 0.5 and (live.leg > 0).mean() >= 0.5


def test_react_is_a_per_episode_parameter() -> None:
    reacts = {generate_world("crowd", s)[0].meta["crowd"].react for s in range(8)}
    assert reacts == {True, False}


def test_simulator_steps_the_pedestrians_each_tick() -> None:
    from nav_policy.sim.robot import load_robot_spec
    from nav_policy.sim.simulator import Simulator

    seeds = [s for s in range(8) if not generate_world("crowd", s)[0].meta["crowd"].react]
    world, _ = generate_world("crowd", seeds[0])
    sim = Simulator(load_robot_spec())
    try:
        sim.load_world(world)
        sim.reset()
        for _ in range(30):
            sim.step(0.0, 0.0)
        # not reacting: live pedestrians are where the world's timed trajectories say
        live = np.array(sim.moving_positions())
        nominal = np.array([m.position(sim.t) for m in world.moving])
        assert live == pytest.approx(nominal, abs=1e-3)
        walked = sim.executed_world()
        assert walked.moving[0].position(1.5) == pytest.approx(world.moving[0].position(1.5),
                                                               abs=1e-3)
    finally:
        sim.close()
