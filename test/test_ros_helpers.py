"""Pure helpers of nav_policy.ros, without a ROS graph (nav2_simple_commander style):
parameter specs, safety layer, watchdog, control tick scheduling, conversions, fusion."""

from __future__ import annotations

import array
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from nav_policy.errors import ConfigError
from nav_policy.planners.safety import SafetyConfig, SafetyLayer, Watchdog, scan_problem
from nav_policy.ros import params
from nav_policy.ros.control import STOP_REPEATS, LocalController, PolicyScheduler
from nav_policy.ros.convert import (
    OdomData,
    ScanData,
    path_from_msg,
    quaternion_from_yaw,
    scan_from_msg,
    sec_to_stamp,
    stamp_to_sec,
    yaw_from_quaternion,
)
from nav_policy.ros.fusion import (
    CameraModel,
    ComplementaryFilter,
    DepthProjector,
    merge_scans,
    stamp_mismatch,
)

REPO = Path(__file__).resolve().parents[1]
BEAMS = 360
INC = 2 * math.pi / BEAMS


def scan(ranges: np.ndarray | float = np.inf, stamp: float = 0.0) -> ScanData:
    r = np.full(BEAMS, ranges, dtype=np.float32) if np.isscalar(ranges) else \
        np.asarray(ranges, dtype=np.float32)
    return ScanData(r, -math.pi, INC, 0.12, 3.5, stamp)


def obstacle_ahead(distance: float) -> np.ndarray:
    r = np.full(BEAMS, np.inf, dtype=np.float32)
    r[BEAMS // 2 - 3: BEAMS // 2 + 4] = distance  # beam 180 is straight ahead (angle 0)
    return r


# ---- params --------------------------------------------------------------------------------


@pytest.mark.parametrize("node", sorted(params.NODE_PARAMS))
def test_defaults_pass_their_own_checks(node: str) -> None:
    assert params.check_values(node, params.defaults(node)) is None
    for spec in params.NODE_PARAMS[node]:
        assert spec.description


@pytest.mark.parametrize("node,values,needle", [
    ("local_planner_node", {"control_rate": 100.0}, "control_rate=100.0 is out of range"),
    ("local_planner_node", {"control_rate": "fast"}, "must be float"),
    ("local_planner_node", {"planner": "astar"}, "must be one of rl, ebm, dwa, mppi"),
    ("local_planner_node", {"stop_margin": 0.5, "slow_margin": 0.2}, "slow_margin"),
    ("local_planner_node", {"watchdog_timeout": float("nan")}, "finite"),
    ("local_planner_node", {"autostart": 1}, "must be bool"),
    ("local_planner_node", {"speed": 1.0}, "unknown parameter speed"),
    ("sim_bridge_node", {"camera_rate": 30.0, "rate": 20.0}, "camera_rate"),
    ("sim_bridge_node", {"seed": -1}, "out of range"),
    ("sensor_fusion_node", {"depth_min_height": 0.5, "depth_max_height": 0.4}, "depth_max"),
])
def test_bad_values_are_named(node: str, values: dict, needle: str) -> None:
    problem = params.check_values(node, values)
    assert problem is not None and needle in problem


def test_int_is_accepted_for_a_float_parameter() -> None:
    assert params.check_values("local_planner_node", {"control_rate": 20}) is None


def test_shipped_config_matches_the_specs() -> None:
    cfg = params.load_param_file(REPO / "config" / "nav_policy.yaml")
    for node, specs in params.NODE_PARAMS.items():
        assert set(cfg[node]) == {s.name for s in specs}, node
        for s in specs:  # the YAML is where the defaults are read from: keep them equal
            assert cfg[node][s.name] == s.default and type(cfg[node][s.name]) is s.kind, s.name


def test_param_file_errors_name_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("local_planner_node:\n  ros__parameters:\n    control_rate: 80.0\n")
    with pytest.raises(ConfigError, match="p.yaml.*control_rate=80.0"):
        params.load_param_file(bad)
    bad.write_text("/**/local_planner_node:\n  ros__parameters:\n    planner: dwa\n")
    assert params.load_param_file(bad)["local_planner_node"]["planner"] == "dwa"


# ---- safety --------------------------------------------------------------------------------


@pytest.mark.parametrize("ranges,expect", [
    (np.full(BEAMS, np.nan), "invalid"),
    (np.full(BEAMS, -np.inf), "invalid"),
    (np.zeros(0), "empty"),
    (np.full(100, 1.0), "100 beams, expected 360"),
    (np.full(BEAMS, 0.05), "invalid"),  # all below range_min
    (np.full(BEAMS, np.inf), None),  # +inf = no return (REP 117): open space is valid
    (np.r_[np.full(100, np.nan), np.full(260, 2.0)], None),  # 28 % invalid
])
def test_scan_problem(ranges: np.ndarray, expect: str | None) -> None:
    got = scan_problem(ranges, 0.12, BEAMS, 0.5)
    assert (got is None) if expect is None else (got is not None and expect in got)


def points(r: np.ndarray) -> np.ndarray:
    a = -math.pi + INC * np.arange(BEAMS)
    ok = np.isfinite(r)
    return np.stack([r[ok] * np.cos(a[ok]), r[ok] * np.sin(a[ok])], axis=1)


CFG = SafetyConfig(radius=0.2, acc_lim_x=100.0, acc_lim_theta=100.0, collision_model="zones")


def test_obstacle_in_stop_zone_zeroes_forward_velocity_only() -> None:
    layer = SafetyLayer(CFG)
    res = layer.filter(0.4, 0.5, points(obstacle_ahead(0.28)), 0.05)
    assert (res.v, res.w, res.state) == (0.0, 0.5, "stop")


def test_obstacle_in_slow_zone_scales_velocity() -> None:
    res = SafetyLayer(CFG).filter(0.4, 0.0, points(obstacle_ahead(0.4)), 0.05)
    assert res.state == "slow" and res.v == pytest.approx(0.2)


def test_obstacle_behind_or_beside_does_not_stop_forward_motion() -> None:
    r = np.full(BEAMS, np.inf, dtype=np.float32)
    r[0:3] = 0.25  # behind (angle -pi)
    r[90] = 0.3  # right side, outside the band
    res = SafetyLayer(CFG).filter(0.4, 0.0, points(r), 0.05)
    assert (res.v, res.state) == (0.4, "ok")
    rev = SafetyLayer(replace_cfg(min_vel_x=-0.2)).filter(-0.2, 0.0, points(r), 0.05)
    assert (rev.v, rev.state) == (0.0, "stop")


def replace_cfg(**kw: float) -> SafetyConfig:
    return CFG.with_updates(**kw)


APPROACH = CFG.with_updates(collision_model="approach")  # 1.0 s, 0.02 m margin


def gap_walls(half_width: float) -> np.ndarray:
    """Two walls along x in [-0.5, 1.5] m at y = +-half_width (a corridor the robot is in)."""
    x = np.linspace(-0.5, 1.5, 81)
    return np.concatenate([np.stack([x, np.full_like(x, half_width)], 1),
                           np.stack([x, np.full_like(x, -half_width)], 1)])


def test_approach_passes_a_gap_the_zones_stop_in() -> None:
    """A corridor 4 cm wider than the robot on each side: the zones' 0.05 m lateral margin
    stops the robot; the swept footprint (0.02 m margin) never touches the walls going straight,
    but does when the command curves into a wall."""
    walls = gap_walls(0.2 + 0.04)
    assert SafetyLayer(CFG).filter(0.4, 0.0, walls, 0.05).state == "stop"
    res = SafetyLayer(APPROACH).filter(0.4, 0.0, walls, 0.05)
    assert (res.v, res.w, res.state) == (0.4, 0.0, "ok")
    turn = SafetyLayer(APPROACH).filter(0.4, 1.0, walls, 0.05)
    assert turn.state == "slow" and 0.0 < turn.v < 0.4 and turn.w / turn.v == pytest.approx(2.5)


def test_approach_slows_to_keep_its_time_before_collision_and_stops_on_contact() -> None:
    layer = SafetyLayer(APPROACH)
    # wall 0.5 m ahead: contact after 0.5 - 0.22 = 0.28 m, 0.7 s at 0.4 m/s (0.05 s poses)
    assert layer.time_to_collision(0.4, 0.0, points(obstacle_ahead(0.5))) == pytest.approx(0.7)
    res = layer.filter(0.4, 0.0, points(obstacle_ahead(0.5)), 0.05)
    assert res.state == "slow" and res.v == pytest.approx(0.4 * 0.7)
    far = SafetyLayer(APPROACH).filter(0.2, 0.0, points(obstacle_ahead(0.5)), 0.05)
    assert (far.v, far.state) == (0.2, "ok")  # at 0.2 m/s contact is 1.4 s away
    touch = SafetyLayer(APPROACH).filter(0.4, 0.5, points(obstacle_ahead(0.21)), 0.05)
    assert (touch.v, touch.w, touch.state) == (0.0, 0.5, "stop")
    away = SafetyLayer(APPROACH.with_updates(min_vel_x=-0.2)).filter(
        -0.2, 0.0, points(obstacle_ahead(0.21)), 0.05)
    assert (away.v, away.state) == (-0.2, "ok")  # backing off a touching obstacle is allowed
    with pytest.raises(ValueError, match="collision_model"):
        CFG.with_updates(collision_model="bubble")


def test_velocity_and_acceleration_limits() -> None:
    layer = SafetyLayer(SafetyConfig(radius=0.2, max_vel_x=0.3, acc_lim_x=1.0, acc_lim_theta=2.0))
    res = layer.filter(5.0, -9.0, np.zeros((0, 2)), 0.05)
    assert res.v == pytest.approx(0.05) and res.w == pytest.approx(-0.1)
    for _ in range(20):
        res = layer.filter(5.0, -9.0, np.zeros((0, 2)), 0.05)
    assert res.v == pytest.approx(0.3) and res.w == pytest.approx(-2.0)
    assert layer.filter(float("nan"), 0.0, np.zeros((0, 2)), 0.05).v == 0.0


def test_watchdog() -> None:
    dog = Watchdog(0.25)
    assert "no scan" in dog.problem(0.0)
    dog.feed("scan", 1.0)
    dog.feed("odom", 1.1)
    assert dog.problem(1.2) is None
    assert "scan is 0.30 s old" in dog.problem(1.3)


# ---- control tick --------------------------------------------------------------------------


class FakePlanner:
    name = "fake"

    def __init__(self, cmd: tuple[float, float] = (0.4, 0.1)) -> None:
        self.cmd = cmd
        self.calls: list[float] = []
        self.resets = 0
        self.last_info: dict = {}

    def reset(self) -> None:
        self.resets += 1

    def compute(self, frame) -> tuple[float, float]:
        self.calls.append(frame.stamp)
        self.last_frame = frame
        return self.cmd


def controller(policy_period: float | None = 0.1, cmd=(0.4, 0.1)) -> LocalController:
    cfg = SafetyConfig(radius=0.2, expected_beams=BEAMS, acc_lim_x=100.0, acc_lim_theta=100.0)
    return LocalController(FakePlanner(cmd), SafetyLayer(cfg), control_period=0.05,
                           policy_period=policy_period, watchdog_timeout=0.25)


def feed(c: LocalController, t: float, ranges=np.inf, pose=(0.0, 0.0, 0.0)) -> None:
    c.set_scan(scan(ranges, stamp=t), t)
    c.set_odom(OdomData(*pose, 0.0, 0.0, t), t)


def test_policy_runs_at_model_rate_and_is_held_between() -> None:
    c = controller(policy_period=0.1)
    c.set_goal((3.0, 0.0))
    evaluated = []
    for k in range(10):  # 20 Hz ticks for 0.5 s
        t = 0.05 * k
        feed(c, t)
        res = c.tick(t)
        evaluated.append(res.evaluated)
        assert (res.v, res.w) == (0.4, 0.1) and res.publish
    assert evaluated == [True, False] * 5
    assert c.planner.calls == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_classical_planner_runs_every_tick() -> None:
    c = controller(policy_period=None)
    c.set_goal((3.0, 0.0))
    for k in range(4):
        feed(c, 0.05 * k)
        assert c.tick(0.05 * k).evaluated


def test_safety_acts_on_the_tick_between_policy_evaluations() -> None:
    c = controller(policy_period=0.1)
    c.set_goal((3.0, 0.0))
    feed(c, 0.0)
    assert c.tick(0.0).v == 0.4
    feed(c, 0.05, obstacle_ahead(0.21))  # touching the 0.2 m footprint (+ 0.02 m margin)
    res = c.tick(0.05)
    assert not res.evaluated and res.v == 0.0 and res.state == "stop" and res.level == "WARN"


@pytest.mark.parametrize("ranges,state", [(np.nan, "invalid_scan"), (np.full(10, 1.0),
                                                                      "invalid_scan")])
def test_invalid_scan_gives_zero(ranges, state: str) -> None:
    c = controller()
    c.set_goal((3.0, 0.0))
    feed(c, 0.0, ranges)
    res = c.tick(0.0)
    assert (res.v, res.w, res.state, res.publish) == (0.0, 0.0, state, True)
    assert c.planner.calls == []


def test_stale_scan_gives_zero_then_recovers_with_a_fresh_evaluation() -> None:
    c = controller()
    c.set_goal((3.0, 0.0))
    feed(c, 0.0)
    assert c.tick(0.0).v == 0.4
    c.set_odom(OdomData(0.0, 0.0, 0.0, 0.0, 0.0, 0.3), 0.3)
    res = c.tick(0.3)
    assert (res.v, res.state, res.level) == (0.0, "stale", "WARN") and "scan" in res.reason
    feed(c, 0.35)
    res = c.tick(0.35)
    assert res.evaluated and res.v == 0.4


def test_goal_reached_stops_then_goes_quiet_until_a_new_goal() -> None:
    c = controller()
    c.set_goal((0.1, 0.0))
    feed(c, 0.0)
    results = [c.tick(0.05 * k) for k in range(6)]
    assert all(r.v == 0.0 and r.state == "goal_reached" for r in results)
    assert [r.publish for r in results] == [True] * STOP_REPEATS + [False] * (6 - STOP_REPEATS)
    resets = c.planner.resets
    c.set_goal((3.0, 0.0))
    assert c.planner.resets == resets + 1
    feed(c, 0.4)
    assert c.tick(0.4).v == 0.4


def test_plan_sets_goal_and_carrot() -> None:
    c = controller(policy_period=None)
    c.set_path(np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0]]))
    feed(c, 0.0)
    c.tick(0.0)
    assert c.goal == (2.0, 2.0)
    assert c.planner.last_frame.goal == pytest.approx((1.5, 0.0))  # 1.5 m lookahead
    assert c.planner.last_frame.path.shape == (3, 2)
    c.set_path(np.zeros((0, 2)))
    assert c.goal is None and c.tick(0.05).state == "idle"


def test_scheduler_tolerates_jitter_and_restarts_after_a_stall() -> None:
    s = PolicyScheduler(0.1, 0.05)
    assert s.due(0.0) and not s.due(0.05) and s.due(0.098) and not s.due(0.15)
    assert s.due(1.0) and not s.due(1.05) and s.due(1.1)


# ---- conversions ---------------------------------------------------------------------------


@pytest.mark.parametrize("yaw", [0.0, 1.0, -2.5, math.pi - 1e-6])
def test_quaternion_roundtrip(yaw: float) -> None:
    assert yaw_from_quaternion(*quaternion_from_yaw(yaw)) == pytest.approx(yaw)


def test_stamp_roundtrip() -> None:
    sec, ns = sec_to_stamp(12.345678901)
    assert (sec, ns) == (12, 345678901)
    assert stamp_to_sec(SimpleNamespace(sec=sec, nanosec=ns)) == pytest.approx(12.345678901)


def test_scan_and_path_from_messages() -> None:
    msg = SimpleNamespace(ranges=array.array("f", [1.0, float("inf"), float("nan")]),
                          angle_min=-1.0, angle_increment=0.5, range_min=0.1, range_max=3.0,
                          header=SimpleNamespace(stamp=SimpleNamespace(sec=2, nanosec=5),
                                                 frame_id="base_scan"))
    s = scan_from_msg(msg)
    assert s.ranges.dtype == np.float32 and s.ranges[0] == 1.0 and np.isnan(s.ranges[2])
    assert s.stamp == pytest.approx(2.000000005) and s.frame_id == "base_scan"
    pose = SimpleNamespace(pose=SimpleNamespace(position=SimpleNamespace(x=1.0, y=2.0)))
    assert path_from_msg(SimpleNamespace(poses=[pose, pose])).shape == (2, 2)
    assert path_from_msg(SimpleNamespace(poses=[])).shape == (0, 2)


# ---- fusion --------------------------------------------------------------------------------


CAM = CameraModel.from_fov(64, 48, 70.0)


def test_wall_in_depth_becomes_virtual_returns_ahead() -> None:
    proj = DepthProjector(CAM, (0.15, 0.0, 0.12), 0.03, 0.6)
    depth = np.full((48, 64), 1.0, dtype=np.float32)  # a wall 1 m in front of the camera
    v = proj.virtual_scan(depth, -math.pi, INC, BEAMS, 0.12, 3.5)
    assert v[180] == pytest.approx(1.15, abs=1e-3)  # camera 0.15 m ahead of the lidar
    seen = np.flatnonzero(np.isfinite(v))
    assert seen.min() >= 180 - 35 and seen.max() <= 180 + 35  # within the camera's FOV


def test_floor_nan_inf_and_too_high_pixels_are_ignored() -> None:
    proj = DepthProjector(CAM, (0.15, 0.0, 0.12), 0.03, 0.6)
    depth = np.full((48, 64), np.nan, dtype=np.float32)
    depth[:10] = np.inf
    depth[-1] = 0.25  # bottom row: floor in front of the robot (height ~0)
    depth[0, :] = 0.0  # invalid zero depth
    assert not np.isfinite(proj.virtual_scan(depth, -math.pi, INC, BEAMS, 0.12, 3.5)).any()
    low = np.full((48, 64), np.nan, dtype=np.float32)
    low[24:29] = 0.8  # something low ahead: 4-11 cm high, under the lidar plane
    v = proj.virtual_scan(low, -math.pi, INC, BEAMS, 0.12, 3.5)
    assert np.isfinite(v[180]) and v[180] < 1.0
    with pytest.raises(ValueError, match="camera_info says 64x48"):
        proj.points(np.zeros((10, 10)))


def test_merge_takes_nearer_valid_return() -> None:
    lidar = np.array([1.0, np.inf, np.nan, 2.0, 0.05], dtype=np.float32)
    virt = np.array([0.5, 0.8, 0.9, np.inf, 0.3], dtype=np.float32)
    out = merge_scans(lidar, virt, 0.12)
    np.testing.assert_allclose(out, [0.5, 0.8, 0.9, 2.0, 0.3])


def test_stamp_mismatch_means_lidar_or_wheel_odometry_only() -> None:
    assert stamp_mismatch("depth image", None, 5.0, 0.15) == "no depth image yet"
    assert stamp_mismatch("depth image", 4.9, 5.0, 0.15) is None
    assert "0.300 s away" in stamp_mismatch("depth image", 4.7, 5.0, 0.15)
    assert stamp_mismatch("imu", float("nan"), 5.0, 0.15) is not None


def test_complementary_filter() -> None:
    f = ComplementaryFilter(alpha=0.98)
    # straight drive, IMU agrees: fused = odometry
    for k in range(5):
        x, y, yaw, _v, _w = f.update(OdomData(0.1 * k, 0.0, 0.0, 1.0, 0.0, 0.1 * k), 0.0)
    assert (x, y, yaw) == pytest.approx((0.4, 0.0, 0.0))
    # wheel odometry claims a 0.1 rad heading jump (slip) the gyro did not see: mostly ignored
    x, y, yaw, _v, _w = f.update(OdomData(0.5, 0.0, 0.1, 1.0, 0.0, 0.5), 0.0)
    assert yaw == pytest.approx(0.002)
    # no IMU: follows wheel odometry increments
    g = ComplementaryFilter(alpha=0.98)
    g.update(OdomData(0.0, 0.0, 0.0, 0.0, 0.3, 0.0), None)
    assert g.update(OdomData(0.0, 0.0, 0.03, 0.0, 0.3, 0.1), None)[2] == pytest.approx(0.03)


def test_pure_helpers_and_the_cli_do_not_import_rclpy() -> None:
    import subprocess
    import sys

    code = ("import sys, nav_policy.cli, nav_policy.cli_commands, argparse\n"
            "from nav_policy.ros import params, convert, control, fusion, cli\n"
            "from nav_policy.planners import safety\n"
            "p = argparse.ArgumentParser(); nav_policy.cli_commands.add_all(p.add_subparsers())\n"
            "print('rclpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
