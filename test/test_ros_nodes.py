"""The nodes as separate processes over real DDS (rmw_fastrtps_cpp, localhost only).

conftest.py gives this pytest process its own ROS_DOMAIN_ID; the node processes inherit it.
Every child process is stopped (SIGINT, then SIGKILL) when its test ends, pass or fail. Waits
poll for conditions with generous deadlines (the machine is shared and loaded); the timing
properties are asserted against the node's own periods plus a stated slack.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy")

from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import Odometry
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import LaserScan
from std_msgs.msg import String

from nav_policy.codecs import CODEC_VERSION, ActionSpec, ObsSpec
from nav_policy.ros import msgs
from nav_policy.runtime.metadata import ModelMetadata

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORLD = REPO / "test" / "data" / "ros_easy.yaml"
SHIPPED_RL = REPO / "models" / "local_rl.onnx"
SHIPPED_EBM = REPO / "models" / "local_ebm.onnx"
BEAMS = 360
SLACK = 0.2  # s of scheduling slack allowed on this loaded 2-core machine


# ---- fixtures and helpers ------------------------------------------------------------------


def policy_onnx(path: Path, v: float = 0.3, w: float = 0.0, width: int | None = None,
                kind: str = "rl", obs_spec: ObsSpec | None = None) -> Path:
    """A real ONNX policy file with nav_policy metadata that always answers (v, w)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    spec = obs_spec or ObsSpec()
    width = width or spec.size
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["obs", "W"], ["h"]),
         helper.make_node("Add", ["h", "B"], ["action"])], "constant_policy",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, [None, 2])],
        initializer=[numpy_helper.from_array(np.zeros((width, 2), np.float32), "W"),
                     numpy_helper.from_array(np.array([v, w], np.float32), "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = ModelMetadata(kind, spec, ActionSpec(), CODEC_VERSION, 0, "test",
                         {"control_hz": "10.0"})
    for key, value in meta.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def ros_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
               PYTHONUNBUFFERED="1")
    env.setdefault("ROS_DOMAIN_ID", "42")
    return env


class Proc:
    def __init__(self, argv: list[str], log_dir: Path, tag: str) -> None:
        self.out, self.err = log_dir / f"{tag}.out", log_dir / f"{tag}.err"
        with open(self.out, "w") as o, open(self.err, "w") as e:
            self.popen = subprocess.Popen(argv, stdout=o, stderr=e, env=ros_env(),
                                          stdin=subprocess.DEVNULL)

    def stop(self, timeout: float = 10.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode

    def stderr(self) -> str:
        return self.err.read_text()


class Graph:
    """An in-test rclpy node on its own context, spun by hand."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = Node("test_ros_nodes", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, cond: Callable[[], Any], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.01)
            if cond():
                return True
        return False

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def latest_json(self, topic: str) -> dict[str, Any]:
        box: dict[str, Any] = {}
        self.node.create_subscription(String, topic, lambda m: box.update(json.loads(m.data)), 10)
        return box

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def send_goal_until_taken(graph: Graph, diag: dict[str, Any], goal: tuple[float, float],
                          timeout: float = 40.0) -> None:
    """Publish goal_pose once a second until the planner's diagnostics show it."""
    pub = graph.node.create_publisher(PoseStamped, "goal_pose", msgs.COMMAND_QOS)
    last = [0.0]

    def taken() -> bool:
        if diag.get("goal") and np.allclose(diag["goal"], goal):
            return True
        if time.monotonic() - last[0] > 1.0 and pub.get_subscription_count() > 0:
            pub.publish(msgs.pose_stamped(goal[0], goal[1], 0.0, 0.0, "odom"))
            last[0] = time.monotonic()
        return False

    assert graph.spin_until(taken, timeout), f"planner never took the goal; diagnostics {diag}"


# ---- simulator + planner -------------------------------------------------------------------


def drive_to_goal(graph: Graph, spawn: Callable[..., Proc], planner_args: list[str],
                  bridge_args: tuple[str, ...] = (), diag_out: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    spawn("sim_bridge_node", "--ros-args", "-p", f"world:={WORLD}", *bridge_args)
    spawn("local_planner_node", "--ros-args", *planner_args)
    status = graph.latest_json("sim_bridge_node/status")
    diag = graph.latest_json("local_planner_node/diagnostics")
    send_goal_until_taken(graph, diag, (1.2, 0.0))
    reached = graph.spin_until(lambda: diag.get("goal_reached")
                               and status.get("distance_to_goal", 9) < 0.3, 60.0)
    assert reached, f"goal not reached: status {status}, diagnostics {diag}"
    assert status["collision_steps"] == 0
    if diag_out is not None:
        diag_out.update(diag)
    return status


def test_sim_bridge_and_dwa_planner_reach_the_goal(graph: Graph, spawn) -> None:
    status = drive_to_goal(graph, spawn, ["-p", "planner:=dwa", "-p", "cmd_vel_stamped:=true"],
                           ("-p", "cmd_vel_stamped:=true"))  # TwistStamped end to end
    reset = graph.node.create_publisher(String, "sim_bridge_node/reset", 10)
    last = [0.0]

    def restarted() -> bool:  # (re)send the reset once a second until the robot is back
        if time.monotonic() - last[0] > 1.0 and reset.get_subscription_count() > 0:
            reset.publish(String(data="{}"))
            last[0] = time.monotonic()
        return status["distance_to_goal"] > 2.0

    assert graph.spin_until(restarted, 20.0), f"reset did not restart the world: {status}"


def test_sim_bridge_on_mujoco_and_dwa_planner_reach_the_goal(graph: Graph, spawn) -> None:
    """The bridge on the MuJoCo backend (no depth camera) serves the same closed loop."""
    drive_to_goal(graph, spawn, ["-p", "planner:=dwa"],
                  ("-p", "backend:=mujoco", "-p", "camera_rate:=0.0"))


def test_sim_bridge_and_shipped_rl_planner_reach_the_goal(graph: Graph, spawn) -> None:
    """The shipped ONNX policy (models/local_rl.onnx) drives the simulated robot to the goal."""
    assert SHIPPED_RL.is_file(), "models/local_rl.onnx is part of the repository"
    drive_to_goal(graph, spawn, ["-p", "planner:=rl", "-p", f"model:={SHIPPED_RL}"], ())


def test_sim_bridge_and_shipped_ebm_planner_reach_the_goal(graph: Graph, spawn) -> None:
    """The shipped energy-based model drives the robot; its energy is on the diagnostics."""
    assert SHIPPED_EBM.is_file(), "models/local_ebm.onnx is part of the repository"
    diag: dict[str, Any] = {}
    energies: list[float] = []
    graph.node.create_subscription(String, "local_planner_node/diagnostics", lambda m: (
        energies.append(json.loads(m.data)["energy"]) if json.loads(m.data).get("energy")
        is not None else None), 10)
    drive_to_goal(graph, spawn, ["-p", "planner:=ebm", "-p", f"model:={SHIPPED_EBM}"], (),
                  diag_out=diag)
    assert diag["model_kind"] == "ebm" and diag["planner"] == "ebm"
    assert energies and all(np.isfinite(energies))


# ---- safety layer, watchdog, parameters on a live node --------------------------------------


class FakeRobot:
    """Publishes scan + odom at 20 Hz from the test node; records cmd_vel."""

    def __init__(self, graph: Graph) -> None:
        n = graph.node
        self.mode = "clear"
        self.mode_since = time.monotonic()
        self.last_scan_pub = 0.0
        self.cmds: list[tuple[float, float, float]] = []
        self.scan_pub = n.create_publisher(LaserScan, "scan", msgs.SENSOR_PUB_QOS)
        self.odom_pub = n.create_publisher(Odometry, "odom", msgs.SENSOR_PUB_QOS)
        n.create_subscription(Twist, "cmd_vel", self._on_cmd, msgs.COMMAND_QOS)
        n.create_timer(0.05, self._publish)

    def set_mode(self, mode: str) -> float:
        self.mode = mode
        self.mode_since = time.monotonic()
        return self.mode_since

    def _on_cmd(self, msg: Twist) -> None:
        self.cmds.append((time.monotonic(), msg.linear.x, msg.angular.z))

    def _publish(self) -> None:
        t = time.time()
        self.odom_pub.publish(msgs.odometry(0.0, 0.0, 0.0, 0.0, 0.0, t, "odom", "base_link"))
        if self.mode == "silent":
            return
        r = np.full(BEAMS, np.inf, dtype=np.float32)
        if self.mode == "obstacle":
            r[BEAMS // 2 - 5: BEAMS // 2 + 6] = 0.21  # touching the footprint (0.2 m + 0.02)
        elif self.mode == "nan":
            r[:] = np.nan
        self.scan_pub.publish(msgs.laser_scan(r, -math.pi, 2 * math.pi / BEAMS, 0.12, 3.5, t,
                                              "base_scan"))
        self.last_scan_pub = time.monotonic()

    def cmds_since(self, t: float) -> list[tuple[float, float, float]]:
        return [c for c in self.cmds if c[0] >= t]

    def first_zero_since(self, t: float) -> float | None:
        return next((c[0] for c in self.cmds_since(t) if c[1] == 0.0), None)

    def driving(self) -> bool:
        return bool(self.cmds) and self.cmds[-1][1] >= 0.29


def set_param(graph: Graph, client: AsyncParameterClient, name: str, value: Any) -> Any:
    future = client.set_parameters([Parameter(name, value=value)])
    assert graph.spin_until(future.done, 20.0), "set_parameters did not answer"
    return future.result().results[0]


def test_safety_watchdog_and_parameters_on_a_live_node(graph: Graph, spawn, tmp_path) -> None:
    model = policy_onnx(tmp_path / "forward.onnx", v=0.3, w=0.0)  # always "drive forward"
    spawn("local_planner_node", "--ros-args", "-p", "planner:=rl", "-p", f"model:={model}")
    robot = FakeRobot(graph)
    diag = graph.latest_json("local_planner_node/diagnostics")
    send_goal_until_taken(graph, diag, (5.0, 0.0))
    period = 1.0 / 20.0
    assert graph.spin_until(robot.driving, 20.0), f"never drove: {robot.cmds[-5:]} {diag}"

    # obstacle in front -> zero forward velocity on the next control tick
    t = robot.set_mode("obstacle")
    assert graph.spin_until(lambda: robot.first_zero_since(t) is not None, 5.0)
    latency = robot.first_zero_since(t) - t
    moving_after = [c for c in robot.cmds_since(t) if c[0] < t + latency and c[1] > 0]
    print(f"obstacle -> v=0 after {latency * 1e3:.1f} ms ({len(moving_after)} moving before)")
    assert latency <= period + SLACK, f"stop took {latency:.3f} s"
    assert len(moving_after) <= 2, moving_after  # at most ticks already under way
    graph.spin_for(0.5)
    assert all(c[1] == 0.0 for c in robot.cmds_since(t + latency)), "moved with obstacle ahead"
    assert diag.get("state") == "stop"

    # stale scan -> zero within the watchdog time
    robot.set_mode("clear")
    assert graph.spin_until(robot.driving, 10.0)
    robot.set_mode("silent")
    assert graph.spin_until(lambda: robot.first_zero_since(robot.last_scan_pub) is not None, 5.0)
    stale_after = robot.first_zero_since(robot.last_scan_pub) - robot.last_scan_pub
    print(f"last scan -> watchdog zero after {stale_after * 1e3:.1f} ms")
    assert stale_after <= 0.25 + period + SLACK, f"watchdog stop after {stale_after:.3f} s"
    assert graph.spin_until(lambda: diag.get("state") == "stale", 5.0)
    assert diag["level"] == "WARN" and "scan" in diag["reason"]

    # NaN scan -> zero
    robot.set_mode("clear")
    assert graph.spin_until(robot.driving, 10.0)
    t = robot.set_mode("nan")
    assert graph.spin_until(lambda: robot.first_zero_since(t) is not None, 5.0)
    graph.spin_for(0.3)
    last = robot.cmds_since(t + 0.2)
    assert last and all(c[1] == 0.0 and c[2] == 0.0 for c in last)
    assert graph.spin_until(lambda: diag.get("state") == "invalid_scan", 5.0)

    # parameters at runtime: out of range, cross-check and read-only refused; valid accepted
    client = AsyncParameterClient(graph.node, "local_planner_node")
    assert client.wait_for_services(timeout_sec=20.0)
    res = set_param(graph, client, "stop_margin", 5.0)
    assert not res.successful and "out of range" in res.reason
    res = set_param(graph, client, "slow_margin", 0.05)
    assert not res.successful and "slow_margin" in res.reason
    res = set_param(graph, client, "control_rate", 30.0)
    assert not res.successful and "read-only" in res.reason
    assert set_param(graph, client, "goal_tolerance", 0.3).successful


# ---- start-up refusals ---------------------------------------------------------------------


def test_bad_model_or_parameter_exits_with_one_line(spawn, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not an onnx file")
    cases = {
        "narrow": (["-p", "planner:=rl", "-p",
                    f"model:={policy_onnx(tmp_path / 'narrow.onnx', width=37)}"],
                   "input width 37 but obs_spec says 67"),
        "range": (["-p", "planner:=rl", "-p",
                   f"model:={policy_onnx(tmp_path / 'b.onnx', obs_spec=ObsSpec(range_max=8.0))}"],
                  "range_max 3.5 m on diffbot is shorter than the model's 8 m"),
        "profile": (["-p", "planner:=rl", "-p", "robot_config:=jackal"],
                    "lidar fov_deg 270 on jackal but the model needs at least 360"),
        "kind": (["-p", "planner:=rl", "-p",
                  f"model:={policy_onnx(tmp_path / 'ebm.onnx', kind='ebm')}"],
                 "model kind is 'ebm', expected 'rl'"),
        "missing": (["-p", "planner:=rl", "-p", f"model:={tmp_path / 'none.onnx'}"],
                    "not found"),
        "corrupt": (["-p", "planner:=rl", "-p", f"model:={corrupt}"], "cannot load model"),
        "rate": (["-p", "planner:=dwa", "-p", "control_rate:=100.0"], "control_rate"),
        "choice": (["-p", "planner:=astar"], "planner='astar' must be one of"),
    }
    procs = {k: spawn("local_planner_node", "--ros-args", *args) for k, (args, _) in
             cases.items()}
    for key, proc in procs.items():
        rc = proc.popen.wait(90)
        lines = [ln for ln in proc.stderr().splitlines() if ln.strip()]
        assert rc == 2, (key, rc, lines)
        assert lines and lines[-1].startswith("local_planner_node: "), (key, lines)
        assert cases[key][1] in lines[-1], (key, lines[-1])
        assert "Traceback" not in proc.stderr(), key


# ---- nav-policy up --sim: fusion, composed executor, Ctrl-C ----------------------------------


def test_up_sim_fuses_depth_drives_and_stops_cleanly(graph: Graph, spawn, tmp_path) -> None:
    cfg = yaml.safe_load((REPO / "config" / "nav_policy.yaml").read_text())
    # DWA (many numpy calls per tick) is the planner that once ran at ~1 Hz in this process,
    # starved of the GIL by rclpy's MultiThreadedExecutor loop (docs/ROS.md)
    cfg["local_planner_node"]["ros__parameters"]["planner"] = "dwa"
    cfg["sim_bridge_node"]["ros__parameters"]["world"] = str(WORLD)
    cfg["sim_bridge_node"]["ros__parameters"]["publish_goal"] = False  # look, then drive
    (tmp_path / "up.yaml").write_text(yaml.safe_dump(cfg))
    up = spawn("nav-policy", "up", "--sim", "--config", str(tmp_path / "up.yaml"))
    scans: dict[str, np.ndarray] = {}
    n = graph.node
    for topic in ("scan", "scan_fused"):
        n.create_subscription(LaserScan, topic, lambda m, k=topic: scans.__setitem__(
            k, (m.header.stamp.sec, m.header.stamp.nanosec, np.array(m.ranges))),
            qos_profile_sensor_data)
    fused_odom: list[float] = []
    n.create_subscription(Odometry, "odom_fused", lambda m: fused_odom.append(
        m.pose.pose.position.x), qos_profile_sensor_data)
    status = graph.latest_json("sim_bridge_node/status")
    diag = graph.latest_json("local_planner_node/diagnostics")

    def low_box_seen() -> bool:  # same scan, fused vs lidar: the 10 cm box only in fused
        if len(scans) < 2 or scans["scan"][:2] != scans["scan_fused"][:2]:
            return False
        lidar, fused = scans["scan"][2], scans["scan_fused"][2]
        return bool(np.any(np.isfinite(fused) & (fused < 2.0) & ~(lidar < fused + 0.5)))

    assert graph.spin_until(low_box_seen, 40.0), "scan_fused never showed the low box"
    send_goal_until_taken(graph, diag, (1.2, 0.0))
    reached = graph.spin_until(lambda: diag.get("goal_reached")
                               and status.get("distance_to_goal", 9) < 0.3, 60.0)
    assert reached, f"status {status}, diagnostics {diag}"
    assert status["collision_steps"] == 0 and fused_odom and max(fused_odom) > 0.5
    assert diag["planner"] == "dwa" and diag["control_rate_hz"] > 5.0, diag
    assert up.stop(timeout=20.0) == 0
    assert "Traceback" not in up.stderr()


def test_console_scripts_are_installed() -> None:
    for exe in ("local_planner_node", "sim_bridge_node", "sensor_fusion_node", "nav-policy"):
        assert (BIN / exe).is_file() or shutil.which(exe), exe
