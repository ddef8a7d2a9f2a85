"""Robot profiles (config/robots/*.yaml): strict loading, the env and its simulated lidar
following the profile, the rectangle footprint in the simulator's collision check and in the
safety layer, the classical planners and the bench on a profile."""

from __future__ import annotations

import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from nav_policy.codecs import ObsSpec, SensorFrame, scan_points
from nav_policy.errors import ConfigError
from nav_policy.planners.base import Limits
from nav_policy.planners.base import scan_points as planner_points
from nav_policy.planners.safety import SafetyConfig, SafetyLayer, ScanGeometry
from nav_policy.sim.robot import Footprint, load_robot_spec, profile_names
from nav_policy.sim.simulator import Simulator
from nav_policy.sim.world import Cylinder, World

PROFILES = ("diffbot", "diffbot_rplidar_a2", "diffbot_tim571", "jackal", "turtlebot3_burger")


def test_shipped_profiles_and_the_native_one() -> None:
    assert set(PROFILES) <= set(profile_names())
    assert load_robot_spec("diffbot") == load_robot_spec()  # config/robot.yaml + the URDF
    tb3, jackal = load_robot_spec("turtlebot3_burger"), load_robot_spec("jackal")
    assert (tb3.lidar.beams, tb3.lidar.range_min, tb3.lidar.range_max) == (360, 0.12, 3.5)
    assert jackal.footprint == Footprint.rectangle(0.46, 0.42)
    assert (jackal.lidar.fov_deg, jackal.lidar.beams, jackal.lidar.range_max) == (270.0, 720, 30.0)
    assert jackal.lidar.mount_x > 0  # forward of centre
    assert jackal.radius == pytest.approx(math.hypot(0.23, 0.21))
    tim = load_robot_spec("diffbot_tim571").lidar
    assert (tim.fov_deg, tim.beams) == (270.0, 811)


@pytest.mark.parametrize("text, message", [
    ("robot: {v_max: 0.5, w_max: 2, acc_v: 1, acc_w: 1, wheel_radius: 0.04, "
     "wheel_separation: 0.3, vmax: 1}\nfootprint: {shape: circle, radius: 0.2}",
     r"robot: unknown key .vmax."),
    ("robot: {v_max: 0.5, w_max: 2, acc_v: 1, acc_w: 1, wheel_radius: 0.04, "
     "wheel_separation: 0.3}\nfootprint: {shape: circle, radius: 0.2}\nlidar: {beam: 360}",
     r"lidar: unknown key .beam."),
    ("robot: {v_max: 0.5, w_max: 2, acc_v: 1, acc_w: 1, wheel_radius: 0.04, "
     "wheel_separation: 0.3}\nfootprint: {shape: square, radius: 0.2}",
     r"footprint shape 'square'"),
    ("robot: {v_max: 0.5, w_max: 2, acc_v: 1, acc_w: 1, wheel_radius: 0.04, "
     "wheel_separation: 0.3}\nfootprint: {shape: rectangle, length: 0.4, radius: 0.2}",
     r"rectangle footprint needs length > 0 and width > 0"),
    ("robot: {v_max: 0.5, w_max: 2, acc_v: 1, acc_w: 1, wheel_radius: 0.04, "
     "wheel_separation: 0.3}\nfootprint: {shape: circle, radius: 0.2}\nsensors: {}",
     r"unknown key .sensors."),
    ("robot: {urdf: robots/diffbot.urdf, v_max: 0.5, w_max: 2, acc_v: 1, acc_w: 1}\n"
     "footprint: {shape: circle, radius: 0.3}", r"differs from the URDF's base radius 0.2"),
    ("robot: {v_max: 0.5, w_max: 2, acc_v: 1, acc_w: 1}\n"
     "footprint: {shape: circle, radius: 0.2}", r"needs wheel_radius, wheel_separation"),
    ("robot: {v_max: 0.5, w_max: 2, acc_v: 1, acc_w: 1, wheel_radius: 0.04, "
     "wheel_separation: 0.3}\nfootprint: {shape: circle, radius: 0.2}\n"
     "lidar: {fov_deg: 400}", r"0 < fov_deg <= 360"),
])
def test_profile_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_robot_spec(path)


def test_unknown_profile_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown robot profile 'husky'.*jackal"):
        load_robot_spec("husky")


@pytest.mark.parametrize("profile", PROFILES)
def test_env_lidar_follows_the_profile(profile: str) -> None:
    env = gym.make("nav_policy/LocalNav-v0", robot=profile, tier="easy")
    try:
        obs, _ = env.reset(seed=2)
        base = env.unwrapped
        lid = load_robot_spec(profile).lidar
        frame = base.sensors()
        assert len(frame.ranges) == lid.beams and frame.range_max == lid.range_max
        assert frame.mount == lid.mount
        span = frame.angle_increment * (lid.beams if lid.fov_deg == 360 else lid.beams - 1)
        assert math.degrees(span) == pytest.approx(lid.fov_deg)
        assert base.obs_spec.version == ("1" if profile == "diffbot" else "2")
        assert obs.shape == base.observation_space.shape
        # the env's clearance is the footprint's distance to the scan's robot-frame points
        pts = scan_points(frame, ObsSpec(version="2", range_max=min(3.5, lid.range_max)))
        d = base.robot.footprint.distance(np.stack([pts.x, pts.y], axis=1))
        assert base.min_clearance() == pytest.approx(float(d.min()), abs=1e-5)
    finally:
        env.close()


def test_env_accepts_a_profile_path_and_history(tmp_path: Path) -> None:
    from nav_policy.paths import config_path

    env = gym.make("nav_policy/LocalNav-v0", robot=str(config_path("robots") / "jackal.yaml"),
                   history=3, tier="easy")
    try:
        obs, _ = env.reset(seed=1)
        assert obs.shape == (60 * 5 + 7,)
        obs, *_ = env.step(np.array([0.0, 0.5], np.float32))
        assert env.observation_space.contains(obs)
    finally:
        env.close()


# ---- footprint in the simulator's collision check ------------------------------------------
@pytest.mark.parametrize("obstacle, radius, hit", [
    ((0.27, 0.0), 0.05, True),  # 0.22 m ahead: inside the 0.23 m front half-length
    ((0.0, 0.27), 0.05, False),  # 0.22 m left: outside the 0.21 m half-width
    ((0.24, 0.22), 0.02, True),  # over the corner (0.23, 0.21)
    ((0.30, 0.30), 0.02, False),  # beyond the corner
])
def test_rectangle_footprint_collides_as_a_rectangle(obstacle: tuple[float, float],
                                                    radius: float, hit: bool) -> None:
    robot = load_robot_spec("jackal")
    world = World(name="probe", size=(6.0, 6.0), obstacles=(Cylinder(obstacle, radius),),
                  start=(0.0, 0.0, 0.0), goal=(2.0, 0.0))
    sim = Simulator(robot)
    try:
        sim.load_world(world)
        sim.reset()
        assert sim.collided is hit
    finally:
        sim.close()


# ---- safety layer and planners ---------------------------------------------------------------
def _layer(footprint: Footprint | None) -> SafetyLayer:
    return SafetyLayer(SafetyConfig(radius=0.2, footprint=footprint, acc_lim_x=100.0,
                                    acc_lim_theta=100.0, max_vel_x=2.0, max_vel_theta=4.0))


def test_safety_layer_rectangle_ahead_beside_and_turning() -> None:
    rect = Footprint.rectangle(0.46, 0.42)
    beside = np.array([[0.0, 0.25]])  # 4 cm beside the rectangle's side
    out = _layer(rect).filter(0.5, 0.0, beside, 0.1)
    assert out.state == "ok" and out.v == 0.5
    ahead = np.array([[0.73, 0.0]])  # front edge 0.23 + margin 0.02: 0.48 m of travel
    out = _layer(rect).filter(1.0, 0.0, ahead, 0.1)
    assert out.state == "slow" and out.v == pytest.approx(0.5, abs=0.06)
    disc = _layer(Footprint.circle(0.2)).filter(1.0, 0.0, ahead, 0.1)
    assert disc.v > out.v  # the disc's front is 3 cm closer to the centre
    corner = np.array([[0.26, 0.20]])  # outside the body, inside the corners' sweep
    turn = _layer(rect).filter(0.0, 2.0, corner, 0.1)
    assert turn.state in ("slow", "stop") and abs(turn.w) < 2.0
    assert _layer(Footprint.circle(0.2)).filter(0.0, 2.0, corner, 0.1).w == 2.0
    touching = np.array([[0.24, 0.0]])
    assert _layer(rect).filter(0.5, 0.0, touching, 0.1).state == "stop"


def test_safety_zones_use_the_rectangle_extents() -> None:
    cfg = SafetyConfig(radius=0.2, footprint=Footprint.rectangle(0.46, 0.42),
                       collision_model="zones", acc_lim_x=100.0, max_vel_x=2.0)
    layer = SafetyLayer(cfg)
    assert layer.filter(0.5, 0.0, np.array([[0.30, 0.0]]), 0.1).state == "stop"  # 0.23 + 0.10
    assert layer.filter(0.5, 0.0, np.array([[0.45, 0.0]]), 0.1).state == "slow"  # 0.23 + 0.25
    assert layer.filter(0.5, 0.0, np.array([[0.45, 0.27]]), 0.1).state == "ok"  # 0.21 + 0.05


def test_scan_points_move_from_the_mount_everywhere() -> None:
    """The safety layer, the classical planners and the codec put a return at the same
    robot-frame point for a lidar mounted 0.12 m forward and turned by 90 degrees."""
    r = np.full(8, np.inf)
    r[4] = 1.0  # lidar-frame bearing 0
    mount = (0.12, 0.0, math.pi / 2)
    frame = SensorFrame(ranges=r, angle_min=-math.pi, angle_increment=math.pi / 4,
                        range_min=0.1, range_max=10.0, pose=(0.0, 0.0, 0.0),
                        velocity=(0.0, 0.0), goal=(1.0, 0.0), mount=mount)
    want = [[0.12, 1.0]]
    np.testing.assert_allclose(ScanGeometry().points(r, -math.pi, math.pi / 4, 0.1, 10.0, mount),
                               want, atol=1e-12)
    np.testing.assert_allclose(planner_points(frame), want, atol=1e-12)
    pts = scan_points(frame, ObsSpec(version="2"))
    np.testing.assert_allclose(np.stack([pts.x, pts.y], axis=1), want, atol=1e-12)


def test_classical_planners_read_the_profile_footprint() -> None:
    from nav_policy.planners import make_planner

    jackal = load_robot_spec("jackal")
    assert Limits.from_robot(jackal).radius == pytest.approx(jackal.footprint.circumradius)
    assert Limits.from_robot(load_robot_spec()).radius == 0.2
    env = gym.make("nav_policy/LocalNav-v0", robot=jackal, tier="easy")
    try:
        env.reset(seed=4)
        for name in ("dwa", "mppi"):
            planner = make_planner(name, robot=jackal, seed=0)
            v, w = planner.compute(env.unwrapped.sensors())
            assert np.isfinite([v, w]).all() and 0.0 <= v <= jackal.v_max
    finally:
        env.close()


def test_bench_runs_an_episode_on_a_profile() -> None:
    from nav_policy.bench.runner import BenchConfig, PlannerSpec, make_tasks, run_tasks

    cfg = BenchConfig(planners=(PlannerSpec("rl"),), tiers=("easy",), episodes=1, seed=0,
                      robot="diffbot_rplidar_a2", safety_layer="approach")
    (task,) = make_tasks(cfg)
    assert task.robot == "diffbot_rplidar_a2"
    (res,) = run_tasks([task], workers=1, progress=False)
    assert res.metrics["steps"] > 0 and "success" in res.metrics
