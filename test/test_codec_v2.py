"""Codec v2 and v1 on foreign lidars: resampling by angle, field-of-view mask, mount pose,
history re-expressed in the current frame, scans of every robot profile from the simulator."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from nav_policy.codecs import (
    ObservationEncoder,
    ObsSpec,
    SensorFrame,
    encode_observation,
    pool_scan,
    resample_scan,
)
from nav_policy.errors import CodecError
from nav_policy.sim.robot import Footprint, load_robot_spec, profile_names
from nav_policy.sim.simulator import Simulator
from nav_policy.sim.world import Cylinder, MovingObstacle, World

V2 = ObsSpec(version="2", sectors=60, range_min=0.05, range_max=3.5, min_fov_deg=90.0,
             footprint=Footprint.circle(0.2))
SECTOR = 2 * math.pi / 60


def _frame(ranges: np.ndarray, angle_min: float, inc: float, range_min: float = 0.1,
           range_max: float = 30.0, mount: tuple[float, float, float] = (0.0, 0.0, 0.0),
           pose: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> SensorFrame:
    return SensorFrame(ranges=np.asarray(ranges, dtype=np.float32), angle_min=angle_min,
                       angle_increment=inc, range_min=range_min, range_max=range_max, pose=pose,
                       velocity=(0.0, 0.0), goal=(2.0, 0.0), mount=mount)


def _sector(bearing: float, sectors: int = 60) -> int:
    return int(math.floor((bearing + math.pi) / (2 * math.pi / sectors))) % sectors


def _sim_frame(profile: str, obstacle: tuple[float, float], radius: float = 0.15,
               moving: tuple[MovingObstacle, ...] = ()) -> tuple[SensorFrame, object]:
    robot = load_robot_spec(profile)
    world = World(name="probe", size=(16.0, 16.0), obstacles=(Cylinder(obstacle, radius),),
                  start=(0.0, 0.0, 0.0), goal=(5.0, 0.0), moving=moving)
    sim = Simulator(robot, lidar=replace(robot.lidar, noise_std=0.0))  # the geometry only
    try:
        sim.load_world(world)
        sim.reset()
        lid = sim.lidar
        ranges = sim.scan()
    finally:
        sim.close()
    return SensorFrame(ranges=ranges, angle_min=lid.angle_min,
                       angle_increment=lid.angle_increment, range_min=lid.range_min,
                       range_max=lid.range_max, pose=(0.0, 0.0, 0.0), velocity=(0.0, 0.0),
                       goal=(5.0, 0.0), mount=lid.mount), robot


# ---- resampling by angle ---------------------------------------------------------------------
def test_resample_equals_v1_pooling_on_the_native_geometry() -> None:
    rng = np.random.default_rng(3)
    spec = ObsSpec()
    for _ in range(20):
        r = rng.uniform(0.12, 3.5, 360)
        r[rng.random(360) < 0.1] = np.inf
        f = _frame(r, -math.pi, 2 * math.pi / 360, 0.12, 3.5)
        np.testing.assert_array_equal(resample_scan(f, spec), pool_scan(f.ranges, spec))


@pytest.mark.parametrize("beams, angle_min", [(720, -math.pi), (800, 0.0), (1440, -math.pi / 2),
                                              (97, 1.0)])
def test_resample_any_beam_count_and_start(beams: int, angle_min: float) -> None:
    """One return at bearing 0.7 rad (robot frame), 1.0 m: it lands in its sector, whatever the
    count and the first beam's angle."""
    inc = 2 * math.pi / beams
    ang = angle_min + inc * np.arange(beams)
    r = np.full(beams, np.inf)
    k = int(np.argmin(np.abs(np.angle(np.exp(1j * (ang - 0.7))))))
    r[k] = 1.0
    out = resample_scan(_frame(r, angle_min, inc), ObsSpec())
    hit = np.flatnonzero(out < 3.5)
    assert hit.tolist() == [_sector(float(np.angle(np.exp(1j * ang[k]))))]
    assert out[hit[0]] == pytest.approx(1.0, abs=1e-6)


def test_v1_clips_a_longer_range_and_refuses_a_shorter_one() -> None:
    r = np.full(720, 20.0)
    out = resample_scan(_frame(r, -math.pi, 2 * math.pi / 720, 0.1, 30.0), ObsSpec())
    np.testing.assert_array_equal(out, 3.5)
    with pytest.raises(CodecError, match=r"range_max 2.0 m is shorter than the model's 3.5"):
        resample_scan(_frame(np.ones(720), -math.pi, 2 * math.pi / 720, 0.1, 2.0), ObsSpec())


def test_v1_refuses_a_partial_field_of_view_naming_it() -> None:
    inc = math.radians(270) / 719
    f = _frame(np.ones(720), -math.radians(135), inc)
    with pytest.raises(CodecError, match=r"covers 270.4 degrees .* 360-degree scan \(fov_deg"):
        encode_observation(f, np.zeros(2), ObsSpec())


# ---- field of view ---------------------------------------------------------------------------
def test_fov_mask_marks_unseen_sectors() -> None:
    inc = math.radians(270) / 719
    f = _frame(np.full(720, np.inf), -math.radians(135), inc)
    obs = encode_observation(f, np.zeros(2), V2)
    ranges, seen = obs[:60], obs[60:120]
    centres = -math.pi + (np.arange(60) + 0.5) * SECTOR
    expect = np.abs(centres) <= math.radians(135) + inc / 2
    np.testing.assert_array_equal(seen.astype(bool), expect)
    assert int(seen.sum()) == 46  # 270.4 of 360 degrees in 6-degree sectors
    np.testing.assert_array_equal(ranges[expect], np.float32(V2.range_max))  # seen, no return: free
    np.testing.assert_array_equal(ranges[~expect], np.float32(V2.range_min))  # unseen: as if blocked


def test_v2_refuses_a_narrower_fov_than_trained_and_a_shorter_range() -> None:
    inc = math.radians(60) / 99
    with pytest.raises(CodecError, match=r"covers 60.6 degrees; the model accepts at least 90"):
        encode_observation(_frame(np.ones(100), -math.radians(30), inc), np.zeros(2), V2)
    with pytest.raises(CodecError, match=r"range_max 3.0 m is shorter"):
        encode_observation(_frame(np.ones(360), -math.pi, 2 * math.pi / 360, 0.1, 3.0),
                           np.zeros(2), V2)


# ---- mount pose ------------------------------------------------------------------------------
def test_mount_offset_moves_points_into_the_robot_frame() -> None:
    """A lidar 0.3 m forward sees a point 1 m to its left: the robot sees it at
    atan2(1, 0.3), 1.044 m away."""
    beams = 360
    inc = 2 * math.pi / beams
    r = np.full(beams, np.inf)
    r[270] = 1.0  # -pi + 270 deg = +90 deg in the lidar frame
    out = encode_observation(_frame(r, -math.pi, inc, mount=(0.3, 0.0, 0.0)), np.zeros(2), V2)
    hit = np.flatnonzero(out[:60] < 3.5)
    assert hit.tolist() == [_sector(math.atan2(1.0, 0.3))]
    assert out[hit[0]] == pytest.approx(math.hypot(1.0, 0.3), abs=1e-5)


def test_mount_yaw_turns_the_scan() -> None:
    beams = 800
    inc = 2 * math.pi / beams
    r = np.full(beams, np.inf)
    r[400] = 1.5  # lidar-frame bearing 0; mounted backwards: robot-frame bearing pi
    out = encode_observation(_frame(r, -math.pi, inc, mount=(0.0, 0.0, math.pi)), np.zeros(2),
                             V2)
    assert np.flatnonzero(out[:60] < 3.5).tolist() == [_sector(math.pi)]


@pytest.mark.parametrize("profile", profile_names())
@pytest.mark.parametrize("bearing", [0.0, 1.2, -2.0, 3.0])
def test_every_profile_places_a_known_obstacle_in_its_sector(profile: str, bearing: float
                                                              ) -> None:
    """The simulator's scan of each profile (its beams, fov, range and mount): a cylinder of
    0.15 m at 1.6 m and `bearing` from the robot centre reads 1.45 m in its sector, or the
    sector is unseen where the profile's lidar does not cover it."""
    centre = (1.6 * math.cos(bearing), 1.6 * math.sin(bearing))
    frame, robot = _sim_frame(profile, centre)
    obs = encode_observation(frame, np.zeros(2), V2)
    k = _sector(bearing)
    lid = robot.lidar
    half = math.radians(lid.fov_deg) / 2
    visible = lid.fov_deg >= 360 or abs(bearing) < half - 0.3
    if not visible:
        assert obs[60 + k] == 0.0 and obs[k] == np.float32(V2.range_min)
        return
    assert obs[60 + k] == 1.0
    assert obs[k] == pytest.approx(1.45, abs=0.03)
    far = np.flatnonzero((obs[:60] < 3.4) & (obs[60:120] == 1.0))
    assert set(far.tolist()) <= {k - 1, k, k + 1, (k + 1) % 60, (k - 1) % 60}


@pytest.mark.parametrize("profile", profile_names())
def test_every_profile_scan_encodes_within_bounds(profile: str) -> None:
    frame, robot = _sim_frame(profile, (1.0, 1.0))
    obs = encode_observation(frame, np.zeros(2), V2)
    low, high = V2.bounds()
    assert obs.shape == (V2.size,) and np.all(obs >= low) and np.all(obs <= high)


# ---- history ---------------------------------------------------------------------------------
def test_history_reexpresses_past_scans_in_the_current_frame() -> None:
    """The robot drives 0.5 m forward past a static point: in the current frame, the past scan's
    point lands where the current one is (static), while a point that moved does not."""
    spec = ObsSpec(version="2", history=2, min_fov_deg=360.0)
    enc = ObservationEncoder(spec)
    inc = 2 * math.pi / 360

    def scan(points: list[tuple[float, float]], pose: tuple[float, float, float]) -> SensorFrame:
        r = np.full(360, np.inf)
        for px, py in points:  # world points -> robot-frame range per beam
            c, s = math.cos(pose[2]), math.sin(pose[2])
            dx, dy = px - pose[0], py - pose[1]
            bx, by = c * dx + s * dy, -s * dx + c * dy
            r[int(round((math.atan2(by, bx) + math.pi) / inc)) % 360] = math.hypot(bx, by)
        return _frame(r, -math.pi, inc, 0.1, 30.0, pose=pose)

    static, mover = (2.0, 1.0), [(1.0, -1.5), (1.5, -1.5)]
    o0 = enc.encode(scan([static, mover[0]], (0.0, 0.0, 0.0)), np.zeros(2))
    np.testing.assert_array_equal(o0[120:180], o0[:60])  # no past yet: repeats the first scan
    pose = (0.5, 0.0, 0.3)
    o1 = enc.encode(scan([static, mover[1]], pose), np.zeros(2))
    now, past = o1[:60], o1[120:180]
    c, s = math.cos(pose[2]), math.sin(pose[2])

    def sector_of(p: tuple[float, float]) -> int:
        dx, dy = p[0] - pose[0], p[1] - pose[1]
        return _sector(math.atan2(-s * dx + c * dy, c * dx + s * dy))

    ks, km0, km1 = sector_of(static), sector_of(mover[0]), sector_of(mover[1])
    assert km0 != km1
    assert past[ks] == pytest.approx(now[ks], abs=0.02)  # static: same place
    assert past[km0] < 3.0 and now[km0] == spec.range_max  # mover: was there, is not
    assert now[km1] < 3.0 and past[km1] == spec.range_max
    np.testing.assert_array_equal(o1[180:240], o1[120:180])  # block 2: the first scan again
    enc.reset()
    o2 = enc.encode(scan([static], pose), np.zeros(2))
    np.testing.assert_array_equal(o2[120:180], o2[:60])


def test_history_needs_the_encoder_and_spec_json_round_trips() -> None:
    spec = ObsSpec(version="2", history=3, footprint=Footprint.rectangle(0.46, 0.42),
                   min_fov_deg=270.0)
    assert spec.size == 60 * 5 + 7
    assert ObsSpec.from_json(spec.to_json()) == spec
    with pytest.raises(CodecError, match="ObservationEncoder"):
        encode_observation(_frame(np.ones(360), -math.pi, 2 * math.pi / 360), np.zeros(2), spec)
    v1 = ObsSpec()
    assert set(__import__("json").loads(v1.to_json())) == {
        "beams", "sectors", "range_min", "range_max", "goal_max", "v_max", "w_max",
        "max_invalid_fraction"}  # v1 files keep exactly their fields
    with pytest.raises(CodecError, match="v2 fields"):
        ObsSpec(history=2)
    with pytest.raises(CodecError, match="codec version"):
        ObsSpec(version="3")
