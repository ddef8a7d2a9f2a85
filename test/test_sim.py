"""Simulator: lidar against analytic ranges, collisions in both motion modes, odometry basics."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from nav_policy.errors import ConfigError
from nav_policy.sim.robot import RobotSpec
from nav_policy.sim.simulator import MOTION_MODES, Simulator
from nav_policy.sim.world import Box, Cylinder, MovingObstacle, Obstacle, World

# metres, noise-free lidar against exact geometry; Bullet's ray test on its (convex) cylinder is
# a little less exact than on boxes at grazing incidence
BOX_TOL, CYLINDER_TOL = 1e-3, 5e-3


@pytest.fixture(params=MOTION_MODES)
def sim(request: pytest.FixtureRequest, robot: RobotSpec) -> Iterator[Simulator]:
    s = Simulator(robot, motion_mode=request.param)
    yield s
    s.close()


def _world(*obstacles: Obstacle, moving: tuple[MovingObstacle, ...] = (),
           size: tuple[float, float] = (10.0, 10.0),
           start: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> World:
    return World(name="test", size=size, obstacles=obstacles, moving=moving, start=start,
                 goal=(size[0] / 2 - 0.5, size[1] / 2 - 0.5))


# ---- analytic ray casting ------------------------------------------------------------------
def _ray_box(ox: float, oy: float, dx: float, dy: float, box: Box) -> float:
    """Distance along a unit ray to an oriented box (slab method), inf if missed."""
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    px, py = ox - box.center[0], oy - box.center[1]
    lo, ld = (c * px + s * py, -s * px + c * py), (c * dx + s * dy, -s * dx + c * dy)
    t0, t1 = -math.inf, math.inf
    for o, d, h in zip(lo, ld, (box.size[0] / 2, box.size[1] / 2)):
        if abs(d) < 1e-12:
            if abs(o) > h:
                return math.inf
            continue
        a, b = sorted(((-h - o) / d, (h - o) / d))
        t0, t1 = max(t0, a), min(t1, b)
    return t0 if 0.0 <= t0 <= t1 else math.inf


def _ray_cylinder(ox: float, oy: float, dx: float, dy: float, cyl: Cylinder) -> float:
    px, py = ox - cyl.center[0], oy - cyl.center[1]
    b = px * dx + py * dy
    disc = b * b - (px * px + py * py - cyl.radius**2)
    if disc < 0:
        return math.inf
    t = -b - math.sqrt(disc)
    return t if t >= 0 else math.inf


def _analytic_scan(world: World, pose: tuple[float, float, float], angles: np.ndarray,
                   range_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact ranges (inf beyond range_max) and, per beam, the tolerance for what it hits."""
    x, y, yaw = pose
    ranges, tol = np.full(len(angles), np.inf), np.full(len(angles), BOX_TOL)
    for k, a in enumerate(angles):
        dx, dy = math.cos(yaw + a), math.sin(yaw + a)
        for ob in world.all_static():
            if isinstance(ob, Box):
                d, t = _ray_box(x, y, dx, dy, ob), BOX_TOL
            else:
                d, t = _ray_cylinder(x, y, dx, dy, ob), CYLINDER_TOL
            if d < ranges[k]:
                ranges[k], tol[k] = d, t
    ranges[ranges > range_max] = np.inf
    return ranges, tol


# ---- lidar ---------------------------------------------------------------------------------
LIDAR_SCENE = (Box(center=(2.0, 0.0), size=(0.4, 2.0)), Cylinder(center=(0.0, -2.0), radius=0.3),
               Box(center=(-1.5, 1.5), size=(0.5, 0.8), yaw=0.6))


@pytest.mark.parametrize("pose", [(0.0, 0.0, 0.0), (0.3, -0.4, 0.7), (-0.5, 0.2, -2.5)])
def test_lidar_matches_analytic_ranges(sim: Simulator, pose: tuple[float, float, float]) -> None:
    world = _world(*LIDAR_SCENE)
    sim.load_world(world)
    sim.reset(pose)
    ranges = sim.scan()
    expected, tol = _analytic_scan(world, pose, sim.beam_angles, sim.lidar.range_max)
    assert ranges.dtype == np.float32 and ranges.shape == (sim.lidar.beams,)
    np.testing.assert_array_equal(np.isinf(ranges), np.isinf(expected))
    hit = np.isfinite(expected)
    assert hit.sum() > 40  # the scene is really in view
    err = np.abs(ranges[hit] - expected[hit])
    assert np.all(err <= tol[hit]), f"max error {err.max():.4f} m at beam {np.argmax(err)}"


@pytest.mark.parametrize("angle_deg, expected", [(0.0, 1.8), (-90.0, 1.7), (90.0, math.inf),
                                                 (180.0, math.inf)])
def test_lidar_single_beams(sim: Simulator, angle_deg: float, expected: float) -> None:
    sim.load_world(_world(*LIDAR_SCENE[:2]))
    sim.reset((0.0, 0.0, 0.0))
    ranges = sim.scan()
    k = int(np.argmin(np.abs(np.rad2deg(sim.beam_angles) - angle_deg) % 360.0))
    if math.isinf(expected):
        assert math.isinf(ranges[k])
    else:
        assert ranges[k] == pytest.approx(expected, abs=BOX_TOL)


def test_lidar_all_inf_when_nothing_in_range(sim: Simulator) -> None:
    sim.load_world(_world(size=(12.0, 12.0)))  # walls 6 m away, range_max 3.5 m
    sim.reset((0.0, 0.0, 0.3))
    assert np.all(np.isposinf(sim.scan()))


# ---- collisions ----------------------------------------------------------------------------
def _drive(sim: Simulator, v: float, w: float, steps: int) -> int | None:
    """Steps until the first collision (1-based), or None."""
    for k in range(1, steps + 1):
        if sim.step(v, w):
            return k
    return None


def test_collision_driving_into_box(sim: Simulator) -> None:
    # box face at x = 0.9; the robot (radius 0.2) touches it when its centre reaches x = 0.7
    sim.load_world(_world(Box(center=(1.0, 0.0), size=(0.2, 2.0)), size=(6.0, 6.0)))
    sim.reset((0.0, 0.0, 0.0))
    assert not sim.collided
    k = _drive(sim, sim.robot.v_max, 0.0, 60)
    assert k is not None and sim.collided
    assert sim.pose[0] == pytest.approx(0.7, abs=0.06)


def test_collision_with_moving_obstacle(sim: Simulator) -> None:
    # A cylinder (r 0.25) sweeps down through the idle robot, 3 cm per control step. Contact
    # starts when its centre is 0.45 m away: it must be reported within that same step.
    mover = MovingObstacle(radius=0.25, speed=0.3, waypoints=((0.0, 3.01), (0.0, -3.0)))
    sim.load_world(_world(moving=(mover,), size=(8.0, 8.0)))
    sim.reset((0.0, 0.0, 0.0))
    assert _drive(sim, 0.0, 0.0, 120) is not None
    (mx, my), = sim.moving_positions()
    assert 0.45 - 0.03 < math.hypot(mx, my) <= 0.45 + 1e-3


@pytest.mark.parametrize("yaw", [0.0, math.pi / 2])
def test_no_false_collision_passing_close(sim: Simulator, yaw: float) -> None:
    # drive 5 m past a 2 m box whose face is 5 cm from the robot's side
    c, s = math.cos(yaw), math.sin(yaw)
    off = sim.robot.radius + 0.05 + 0.25
    box = Box(center=(-s * off, c * off), size=(2.0, 0.5), yaw=yaw)
    start = (-2.5 * c, -2.5 * s, yaw)
    sim.load_world(_world(box, size=(8.0, 8.0), start=start))
    sim.reset(start)
    assert _drive(sim, sim.robot.v_max, 0.0, 100) is None
    assert math.hypot(sim.pose[0] - start[0], sim.pose[1] - start[1]) > 4.0  # really went past


def test_reset_clears_collision(sim: Simulator) -> None:
    sim.load_world(_world(Box(center=(0.3, 0.0), size=(0.4, 0.4))))
    sim.reset((0.0, 0.0, 0.0))
    assert sim.collided  # starts overlapping
    sim.reset((-2.0, 0.0, 0.0))
    assert not sim.collided and sim.t == 0.0 and sim.v == 0.0


# ---- motion ---------------------------------------------------------------------------------
def test_straight_drive_keeps_heading(sim: Simulator) -> None:
    sim.load_world(_world())
    sim.reset((-2.0, 0.0, 0.0))
    _drive(sim, 0.5, 0.0, 40)  # 4 s at 0.5 m/s, 0.2 s of it accelerating
    assert sim.pose[0] == pytest.approx(-0.025, abs=0.05)
    assert abs(sim.pose[1]) < 0.01 and abs(sim.pose[2]) < 0.01
    odom = sim.odometry()
    assert (odom.x, odom.y) == pytest.approx((sim.pose[0], sim.pose[1]))
    assert odom.v == pytest.approx(0.5, abs=0.03)


def test_acceleration_limit(sim: Simulator) -> None:
    sim.load_world(_world())
    sim.reset((0.0, 0.0, 0.0))
    sim.step(sim.robot.v_max, 0.0)
    assert sim.v <= sim.robot.acc_v * sim.dt + 0.02


def test_non_finite_command_does_not_move(sim: Simulator) -> None:
    sim.load_world(_world())
    sim.reset((0.0, 0.0, 0.0))
    sim.step(math.nan, math.inf)
    assert abs(sim.pose[0]) < 1e-3 and abs(sim.pose[1]) < 1e-3


def test_bad_configuration(robot: RobotSpec) -> None:
    with pytest.raises(ConfigError, match="motion_mode"):
        Simulator(robot, motion_mode="teleport")
    with pytest.raises(ConfigError, match="multiple"):
        Simulator(robot, motion_mode="physics", control_hz=7.0, physics_hz=240.0)
