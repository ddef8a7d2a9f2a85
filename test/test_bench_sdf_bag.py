"""export-sdf (SDF 1.9 worlds checked with xml.etree) and metrics on MCAP bags written here."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from nav_policy.bench.bag import BagWriter, message_definition, read_bag
from nav_policy.bench.scenarios import scenarios
from nav_policy.bench.sdf import actor_waypoints
from nav_policy.cli import main
from nav_policy.sim.world import Box, MovingObstacle, load_world

RADIUS = 0.2  # config/robot.yaml's robot


def _floats(text: str | None) -> list[float]:
    return [float(v) for v in (text or "").split()]


# ---- export-sdf ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sdf")
    assert main(["export-sdf", "--tier", "easy,dynamic", "--seed", "0", "--count", "2",
                 "--out", str(out)]) == 0
    return out


def test_export_writes_one_sdf_and_yaml_per_benchmark_world(exported: Path) -> None:
    index = json.loads((exported / "worlds.json").read_text())
    scs = scenarios(["easy", "dynamic"], 2, 0)
    assert [(w["tier"], w["index"], w["world_seed"]) for w in index["worlds"]] == \
        [(s.tier, s.index, s.world_seed) for s in scs]
    for entry in index["worlds"]:
        assert (exported / entry["file"]).is_file() and (exported / entry["world_file"]).is_file()


@pytest.mark.parametrize("name", ["easy_000", "easy_001", "dynamic_000", "dynamic_001"])
def test_sdf_models_match_the_generated_world(exported: Path, name: str) -> None:
    tier, index = name.split("_")
    sc = scenarios([tier], int(index) + 1, 0)[-1]
    world, _ = sc.world(RADIUS)
    root = ET.parse(exported / f"{name}.sdf").getroot()
    assert root.tag == "sdf" and root.get("version") == "1.9"
    world_el = root.find("world")
    assert world_el is not None and world_el.get("name") == world.name
    models = {m.get("name"): m for m in world_el.findall("model")}
    expected = {"ground_plane", "wall_north", "wall_south", "wall_east", "wall_west"}
    expected |= {f"{'box' if isinstance(ob, Box) else 'cylinder'}_{i}"
                 for i, ob in enumerate(world.obstacles)}
    assert set(models) == expected and len(models) == len(world.obstacles) + 5
    for i, ob in enumerate(world.obstacles):
        kind = "box" if isinstance(ob, Box) else "cylinder"
        model = models[f"{kind}_{i}"]
        assert model.findtext("static") == "true"
        pose = _floats(model.findtext("pose"))
        yaw = ob.yaw if isinstance(ob, Box) else 0.0
        np.testing.assert_allclose(pose, [*ob.center, ob.height / 2, 0, 0, yaw], atol=1e-4)
        geom = model.find("link/collision/geometry")
        assert geom is not None
        if isinstance(ob, Box):
            np.testing.assert_allclose(_floats(geom.findtext("box/size")),
                                       [*ob.size, ob.height], atol=1e-4)
        else:
            assert float(geom.findtext("cylinder/radius") or 0) == pytest.approx(ob.radius,
                                                                                abs=1e-5)
    north = _floats(models["wall_north"].findtext("pose"))
    assert north[1] == pytest.approx(world.size[1] / 2 + 0.05)
    actors = world_el.findall("actor")
    assert [a.get("name") for a in actors] == [f"moving_{i}" for i in range(len(world.moving))]
    assert (len(actors) > 0) == (tier == "dynamic")
    for actor, m in zip(actors, world.moving):
        assert actor.findtext("script/loop") == "true"
        wps = actor.findall("script/trajectory/waypoint")
        times = [float(w.findtext("time") or 0) for w in wps]
        assert times == sorted(times) and times[0] == 0.0
        span = 2 * math.dist(*m.waypoints) / m.speed  # there and back at the obstacle's speed
        assert times[-1] == pytest.approx(span, rel=1e-4)
        first = _floats(wps[0].findtext("pose"))
        np.testing.assert_allclose(first[:2], m.waypoints[0], atol=1e-4)


def test_sidecar_is_the_world_file(exported: Path) -> None:
    world = load_world(exported / "easy_000.yaml")
    generated, _ = scenarios(["easy"], 1, 0)[0].world(RADIUS)
    assert world.start == pytest.approx(generated.start)
    assert world.goal == pytest.approx(generated.goal)
    assert world.shortest_path == pytest.approx(generated.shortest_path)


def test_actor_waypoints_ping_pong() -> None:
    m = MovingObstacle(radius=0.2, speed=0.5, waypoints=((0.0, 0.0), (1.0, 0.0), (1.0, 2.0)))
    assert actor_waypoints(m) == [(0.0, 0.0, 0.0), (2.0, 1.0, 0.0), (6.0, 1.0, 2.0),
                                  (10.0, 1.0, 0.0), (12.0, 0.0, 0.0)]


# ---- MCAP bags ----------------------------------------------------------------------------------

# Hand-made run: 1 s standing at the origin (cmd_vel 0), then from t = 1 s, 20 odometry steps of
# 0.5 s: 10 to (1, 0.5) and 10 to (2, 0). Step length sqrt(0.1^2 + 0.05^2), speed 0.2236 m/s.
STEP = math.hypot(0.1, 0.05)
SPEED = STEP / 0.5


def _route() -> list[tuple[float, float, float, float]]:
    """(t, x, y, v) rows of the hand-made run."""
    rows = [(0.0, 0.0, 0.0, 0.0), (0.5, 0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)]
    for k in range(1, 21):
        x = 0.1 * k
        y = 0.05 * k if k <= 10 else 0.5 - 0.05 * (k - 10)
        rows.append((1.0 + 0.5 * k, x, y, SPEED))
    return rows


def _write_bag(path: Path, scan_min: float = 1.0, close_at: float | None = None,
               odom: bool = True) -> Path:
    with BagWriter(path) as bag:
        for t, x, y, v in _route():
            bag.cmd_vel(t, SPEED if t >= 1.0 else 0.0, 0.0)
            if odom:
                bag.odometry(t, (x, y, 0.0), (v, 0.0))
            near = close_at is not None and t >= close_at
            bag.scan(t, [0.15 if near else scan_min, math.inf, float("nan"), 3.0],
                     -math.pi, math.pi / 2, 0.12, 3.5)
    return path


def _metrics(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["metrics", *args, "--json", "-"]) == 0
    return json.loads(capsys.readouterr().out)


def test_message_definition_concatenates_dependencies() -> None:
    text = message_definition("nav_msgs/msg/Odometry")
    sections = text.split("=" * 80 + "\n")
    assert "std_msgs/Header header" in sections[0]
    deps = [s.splitlines()[0] for s in sections[1:]]
    assert deps[0] == "MSG: std_msgs/Header"
    for dep in ("builtin_interfaces/Time", "geometry_msgs/PoseWithCovariance",
                "geometry_msgs/Pose", "geometry_msgs/Point", "geometry_msgs/Quaternion",
                "geometry_msgs/TwistWithCovariance", "geometry_msgs/Twist",
                "geometry_msgs/Vector3"):
        assert f"MSG: {dep}" in deps
    assert len(deps) == len(set(deps)) == 9


def test_bag_round_trip(tmp_path: Path) -> None:
    data = read_bag(_write_bag(tmp_path / "run.mcap"))
    assert (data.odom_topic, data.scan_topic, data.cmd_topic) == ("/odom", "/scan", "/cmd_vel")
    assert data.odom.shape == (23, 6) and data.scan.shape == (23, 2)
    np.testing.assert_allclose(data.odom[-1, :3], [11.0, 2.0, 0.0], atol=1e-9)
    assert data.scan[0, 1] == pytest.approx(1.0)  # NaN and inf beams ignored


def test_metrics_of_a_hand_made_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = _write_bag(tmp_path / "run.mcap")
    out = _metrics(capsys, "--bag", str(bag), "--goal", "2,0", "--goal-tolerance", "0.01")
    ep = out["per_episode"][0]  # type: ignore[index]
    assert ep["outcome"] == "success" and out["success_rate"] == 1.0
    assert out["start_time_source"] == "first non-zero cmd_vel"
    assert ep["time_s"] == pytest.approx(10.0)  # from t = 1 s to t = 11 s
    assert ep["path_length"] == pytest.approx(20 * STEP)
    assert ep["shortest_path"] == pytest.approx(2.0) and out["shortest_path_source"] == "euclidean"
    assert out["spl"] == pytest.approx(2.0 / (20 * STEP))
    assert out["barn_score"] == pytest.approx(4.0 / 10.0)  # t_opt = 2 / 0.5 = 4 s
    assert ep["smoothness_deg"] == pytest.approx(2 * math.degrees(math.atan(0.5)))
    assert ep["sharp_turns"] == 0
    assert ep["velocity_jerk"] == pytest.approx(SPEED / 0.5)  # one acceleration step
    assert out["min_clearance"] == pytest.approx(0.8) and out["clearance_source"] == "scan"
    assert out["compute_us_p50"] is None and out["barn_v_ref"] == 0.5


def test_metrics_with_a_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = _write_bag(tmp_path / "run.mcap")
    world = {"name": "open", "size": [6.0, 4.0], "start": [0.0, 0.0, 0.0], "goal": [2.0, 0.0]}
    (tmp_path / "open.yaml").write_text(yaml.safe_dump(world))
    out = _metrics(capsys, "--bag", str(bag), "--goal", "2,0", "--world",
                   str(tmp_path / "open.yaml"))
    ep = out["per_episode"][0]  # type: ignore[index]
    assert ep["outcome"] == "success" and out["shortest_path_source"] == "world"
    assert ep["shortest_path"] == pytest.approx(2.0, abs=0.06)  # grid A*, 5 cm cells
    # arrival within 0.25 m at (1.8, 0.1): 1.2 m to the east wall minus the radius
    assert out["min_clearance"] == pytest.approx(1.0)
    world["obstacles"] = [{"type": "box", "center": [1.5, 0.25], "size": [0.2, 0.2]}]
    (tmp_path / "box.yaml").write_text(yaml.safe_dump(world))
    out = _metrics(capsys, "--bag", str(bag), "--goal", "2,0", "--world",
                   str(tmp_path / "box.yaml"))
    assert out["collision_rate"] == 1.0 and out["spl"] == 0.0


def test_scan_closer_than_the_robot_is_a_collision(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    bag = _write_bag(tmp_path / "run.mcap", close_at=6.0)
    out = _metrics(capsys, "--bag", str(bag), "--goal", "2,0")
    ep = out["per_episode"][0]  # type: ignore[index]
    assert ep["outcome"] == "collision"
    assert ep["time_s"] == pytest.approx(5.0)  # cut at the scan of t = 6 s


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    return err


def test_metrics_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    no_odom = _write_bag(tmp_path / "no_odom.mcap", odom=False)
    assert "no nav_msgs/msg/Odometry" in _error(capsys, ["metrics", "--bag", str(no_odom),
                                                         "--goal", "2,0"])
    assert "cannot read bag" in _error(capsys, ["metrics", "--bag", str(tmp_path / "none.mcap"),
                                                "--goal", "2,0"])
    (tmp_path / "junk.mcap").write_bytes(b"not an mcap file at all")
    assert "not a readable MCAP" in _error(capsys, ["metrics", "--bag",
                                                    str(tmp_path / "junk.mcap"), "--goal", "1,1"])
    bag = _write_bag(tmp_path / "run.mcap")
    assert "--goal must be X,Y" in _error(capsys, ["metrics", "--bag", str(bag), "--goal", "2"])
    assert "not nav_msgs/msg/Odometry" in _error(capsys, ["metrics", "--bag", str(bag), "--goal",
                                                          "2,0", "--odom-topic", "/scan"])
    walled = {"name": "walled", "size": [6.0, 4.0], "start": [0.0, 0.0, 0.0], "goal": [2.0, 0.0],
              "obstacles": [{"type": "box", "center": [1.0, 0.0], "size": [0.2, 4.0]}]}
    (tmp_path / "walled.yaml").write_text(yaml.safe_dump(walled))
    err = _error(capsys, ["metrics", "--bag", str(bag), "--goal", "2,0", "--world",
                          str(tmp_path / "walled.yaml")])
    assert "no collision-free path" in err


def test_export_sdf_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "unknown tier 'lava'" in _error(capsys, ["export-sdf", "--tier", "lava", "--out",
                                                    str(tmp_path)])
    assert "--count must be" in _error(capsys, ["export-sdf", "--count", "0", "--out",
                                                str(tmp_path)])
