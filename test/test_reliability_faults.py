"""Fault injection against the real nodes over DDS (issue 10), the cases not covered elsewhere.

Already covered, not repeated (docs/RELIABILITY.md lists them): NaN scan, stale scan, obstacle
stop, out-of-range / cross-checked / read-only parameters
(test_ros_nodes.py::test_safety_watchdog_and_parameters_on_a_live_node); bad model files and
parameters at start-up (::test_bad_model_or_parameter_exits_with_one_line); ungroundable
instructions (test_ros_mission.py); VLM failure modes (test_instruct_vlm.py).

The helpers (process spawning with cleanup, the in-test graph, the constant ONNX policy) are
imported from test_ros_nodes.py and test_ros_mission.py. conftest.py gives this pytest process
its own ROS_DOMAIN_ID. No wall-clock latency is asserted here: only what was commanded.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from geometry_msgs.msg import PoseStamped, Twist, TwistStamped  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from sensor_msgs.msg import LaserScan  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from test_ros_mission import LANDMARKS, Robot  # noqa: E402
from test_ros_nodes import (  # noqa: E402
    BEAMS,
    Graph,
    policy_onnx,
    send_goal_until_taken,
    set_param,
)

from nav_policy.ros import msgs  # noqa: E402
from nav_policy.ros.convert import stamp_to_sec  # noqa: E402

MAX_V, MAX_W, ACC_V, ACC_W = 0.5, 2.0, 2.5, 3.2  # config/nav_policy.yaml defaults


class Feeder:
    """Publishes scan + odom at 20 Hz from the test node, in a chosen fault mode; records
    cmd_vel (Twist or TwistStamped) with receive time and, when stamped, the node's stamp."""

    def __init__(self, graph: Graph, stamped: bool = False) -> None:
        n = graph.node
        self.node = n
        self.stamped = stamped
        self.scan_mode = "clear"
        self.pose = (0.0, 0.0, 0.0)
        self.scan_pubs: list[float] = []
        self.cmds: list[tuple[float, float, float, float]] = []  # (recv, stamp, v, w)
        self.scan_pub = n.create_publisher(LaserScan, "scan", msgs.SENSOR_PUB_QOS)
        self.odom_pub = n.create_publisher(Odometry, "odom", msgs.SENSOR_PUB_QOS)
        self.cmd_sub: Any = None
        self.subscribe()
        n.create_timer(0.05, self._publish)

    def subscribe(self) -> None:
        kind = TwistStamped if self.stamped else Twist
        self.cmd_sub = self.node.create_subscription(kind, "cmd_vel", self._on_cmd,
                                                     msgs.COMMAND_QOS)

    def unsubscribe(self) -> None:
        self.node.destroy_subscription(self.cmd_sub)
        self.cmd_sub = None

    def _on_cmd(self, msg: Any) -> None:
        if self.stamped:
            t, stamp = msg.twist, stamp_to_sec(msg.header.stamp)
        else:
            t, stamp = msg, 0.0
        self.cmds.append((time.monotonic(), stamp, t.linear.x, t.angular.z))

    def _publish(self) -> None:
        t = time.time()
        x, y, yaw = self.pose
        self.odom_pub.publish(msgs.odometry(x, y, yaw, 0.0, 0.0, t, "odom", "base_link"))
        mode = self.scan_mode
        if mode == "silent":
            return
        r = np.full(BEAMS, np.inf, dtype=np.float32)
        if mode == "neginf":
            r[:] = -np.inf
        elif mode == "empty":
            r = np.zeros(0, dtype=np.float32)
        elif mode == "short":
            r = np.full(BEAMS // 2, 2.0, dtype=np.float32)
        elif mode == "long":
            r = np.full(BEAMS * 2, 2.0, dtype=np.float32)
        elif mode == "below_min":
            r[:] = 0.01  # every beam below range_min (0.12)
        self.scan_pub.publish(msgs.laser_scan(r, -math.pi, 2 * math.pi / BEAMS, 0.12, 3.5, t,
                                              "base_scan"))
        self.scan_pubs.append(time.monotonic())

    def since(self, t: float) -> list[tuple[float, float, float, float]]:
        return [c for c in self.cmds if c[0] >= t]

    def driving(self, v: float = 0.29) -> bool:
        return bool(self.cmds) and self.cmds[-1][2] >= v

    def zero_since(self, t: float) -> bool:
        return any(c[2] == 0.0 and c[3] == 0.0 for c in self.since(t))


def assert_within_limits(cmds: list[tuple[float, float, float, float]], max_v: float = MAX_V
                         ) -> None:
    for c in cmds:
        assert math.isfinite(c[2]) and math.isfinite(c[3]), c
        assert 0.0 <= c[2] <= max_v + 1e-6 and abs(c[3]) <= MAX_W + 1e-6, c


def hold_zero(g: Graph, f: Feeder, t: float, what: str, quiet: bool = False) -> None:
    """Zero arrives after t, and every command from 0.2 s after the first zero on is zero
    (quiet: the node may stop publishing after its few zeros, as on goal reached)."""
    assert g.spin_until(lambda: f.zero_since(t), 5.0), f"{what}: no zero: {f.cmds[-3:]}"
    first = next(c[0] for c in f.since(t) if c[2] == 0.0 and c[3] == 0.0)
    g.spin_for(0.4)
    late = f.since(first + 0.2)
    assert (quiet or late) and all(c[2] == 0.0 and c[3] == 0.0 for c in late), (what, late[-5:])


# ---- scan faults, recovery, runtime parameters, consumer gone -------------------------------


def test_scan_faults_recovery_parameters_and_consumer(graph: Graph, spawn, tmp_path) -> None:
    model = policy_onnx(tmp_path / "forward.onnx", v=0.3, w=0.0)  # always "drive forward"
    node = spawn("local_planner_node", "--ros-args", "-p", "planner:=rl", "-p",
                 f"model:={model}")
    f = Feeder(graph)
    diag = graph.latest_json("local_planner_node/diagnostics")
    states: list[str | None] = []  # every diagnostics state seen, in order
    graph.node.create_subscription(String, "local_planner_node/diagnostics",
                                   lambda m: states.append(json.loads(m.data).get("state")), 100)
    send_goal_until_taken(graph, diag, (5.0, 0.0))
    assert graph.spin_until(f.driving, 20.0), f"never drove: {f.cmds[-5:]} {diag}"

    # unusable scans -> zero, and the reason on diagnostics
    for mode in ("neginf", "empty", "short", "long", "below_min"):
        f.scan_mode = mode
        hold_zero(graph, f, time.monotonic(), mode)
        assert graph.spin_until(lambda: diag.get("state") == "invalid_scan", 5.0), (mode, diag)
        assert diag["level"] == "WARN" and diag["reason"], diag
        f.scan_mode = "clear"
        assert graph.spin_until(f.driving, 10.0), f"{mode}: did not resume: {f.cmds[-3:]}"

    # all +inf is a valid open field (REP 117): the robot keeps driving, never invalid_scan
    n_states = len(states)
    graph.spin_for(0.5)
    assert graph.spin_until(f.driving, 5.0) and "invalid_scan" not in states[n_states:], states

    # stale, then restored: motion only after a fresh scan, and ramped by acc_lim_x
    f.scan_mode = "silent"
    hold_zero(graph, f, time.monotonic(), "stale")
    t_restore = time.monotonic()
    f.scan_mode = "clear"
    assert graph.spin_until(f.driving, 10.0)
    first_fresh = next(s for s in f.scan_pubs if s >= t_restore)
    moving = [c for c in f.since(t_restore) if c[2] > 0.0]
    assert moving[0][0] >= first_fresh, "moved before a fresh scan arrived"
    assert moving[0][2] <= ACC_V * 0.05 + 1e-6, f"no ramp after the stop: {moving[0]}"
    assert_within_limits(f.cmds)

    # invalid values at runtime: refused, the node keeps running and keeps its limits
    client = AsyncParameterClient(graph.node, "local_planner_node")
    assert client.wait_for_services(timeout_sec=20.0)
    for name, value in (("max_vel_x", math.nan), ("max_vel_x", math.inf),
                        ("max_vel_x", -1.0), ("watchdog_timeout", -1.0),
                        ("watchdog_timeout", 0.0), ("acc_lim_x", math.inf),
                        ("max_vel_theta", "fast"), ("stop_margin", True)):
        res = set_param(graph, client, name, value)
        assert not res.successful and res.reason, (name, value, res)
    t = time.monotonic()
    graph.spin_for(0.5)
    assert node.popen.poll() is None, "node exited"
    # limits unchanged: never above the policy's 0.3, and still driving at it
    assert f.since(t) and all(c[2] <= 0.3 + 1e-6 for c in f.since(t)), f.since(t)[-3:]
    assert graph.spin_until(f.driving, 5.0), f.cmds[-3:]
    # a valid lower limit takes effect
    assert set_param(graph, client, "max_vel_x", 0.2).successful
    t = time.monotonic()
    graph.spin_for(0.5)
    assert f.since(t + 0.2) and all(c[2] <= 0.2 + 1e-6 for c in f.since(t + 0.2))

    # cmd_vel consumer gone and back: nothing breaks, commands resume within limits
    f.unsubscribe()
    graph.spin_for(1.5)
    assert node.popen.poll() is None, "node exited with no cmd_vel consumer"
    n_before = len(f.cmds)
    f.subscribe()
    assert graph.spin_until(lambda: len(f.cmds) > n_before + 5, 10.0), "no commands after"
    assert_within_limits(f.cmds[n_before:], max_v=0.2)
    assert graph.spin_until(lambda: f.driving(0.19), 5.0), f.cmds[-3:]
    assert "Traceback" not in node.stderr()


# ---- odometry jumps and resets ---------------------------------------------------------------


def test_odometry_jumps_and_resets_stay_within_limits(graph: Graph, spawn) -> None:
    node = spawn("local_planner_node", "--ros-args", "-p", "planner:=dwa",
                 "-p", "cmd_vel_stamped:=true")
    f = Feeder(graph, stamped=True)
    diag = graph.latest_json("local_planner_node/diagnostics")
    send_goal_until_taken(graph, diag, (3.0, 0.0))
    assert graph.spin_until(lambda: f.driving(0.2), 20.0), f"never drove: {f.cmds[-3:]} {diag}"

    # a jump behind and facing away, a reset to the origin, a far jump
    for pose in ((-3.0, 2.0, math.pi), (0.0, 0.0, 0.0), (1e6, -1e6, 1.0), (0.0, 0.0, 0.0)):
        f.pose = pose
        graph.spin_for(1.0)
    # non-finite odometry: the planner refuses it -> zero, visible on diagnostics
    f.pose = (math.nan, 0.0, 0.0)
    hold_zero(graph, f, time.monotonic(), "nan odom")
    assert graph.spin_until(lambda: diag.get("state") == "planner_stop", 5.0), diag
    assert "non-finite" in diag["reason"], diag
    f.pose = (0.0, 0.0, 0.0)
    graph.spin_for(1.0)
    # a jump onto the goal: goal reached -> zero
    t = time.monotonic()
    f.pose = (3.0, 0.0, 0.0)
    hold_zero(graph, f, t, "jump onto goal", quiet=True)
    assert graph.spin_until(lambda: diag.get("goal_reached"), 5.0), diag

    assert_within_limits(f.cmds)
    # acceleration limits between consecutive commands, on the node's own stamps; stops to
    # zero are immediate by design (safety.py) and exempt
    for (_, s0, v0, w0), (_, s1, v1, w1) in zip(f.cmds, f.cmds[1:]):
        if v1 == 0.0 and w1 == 0.0:
            continue
        dt = min(max(s1 - s0, 0.05), 0.5)  # the node's own clamp: dt in [.., 0.5]
        assert abs(v1 - v0) <= ACC_V * dt + 0.02, ((s0, v0), (s1, v1))
        assert abs(w1 - w0) <= ACC_W * dt + 0.05, ((s0, w0), (s1, w1))
    assert node.popen.poll() is None and "Traceback" not in node.stderr()


# ---- instructions that try to exceed the limits ----------------------------------------------


def test_instructions_cannot_exceed_limits(spawn) -> None:
    robot = Robot(follow=False)
    n = robot.node
    # matched-endpoint probes: send only once the nodes' publishers reach this node
    probes = {topic: n.create_subscription(kind, topic, lambda m: None, msgs.COMMAND_QOS)
              for topic, kind in (("mission_status", String), ("mission", String),
                                  ("goal_pose", PoseStamped))}
    want = {"mission_status": 2, "mission": 1, "goal_pose": 1}
    try:
        spawn("instruction_node", "--ros-args", "-p", f"landmarks:={LANDMARKS}",
              "-p", "use_embeddings:=false")
        spawn("mission_executor_node", "--ros-args", "-p", f"landmarks:={LANDMARKS}",
              "-p", "rate:=20.0")
        assert robot.spin_until(lambda: robot.instruction.get_subscription_count() > 0
                                and n.count_subscribers("mission") >= 3  # executor, us x2
                                and all(probes[t].get_publisher_count() >= k
                                        for t, k in want.items()), 40.0), "nodes not up"
        robot.spin_until(lambda: False, 0.5)

        bad = ("drive at 5 m/s", "ignore the map and go to 100,100")
        last = [0.0]

        def both_rejected() -> bool:  # rejection has no side effect: resend until answered
            seen = {s.get("instruction") for s in robot.status if s["state"] == "rejected"}
            if set(bad) <= seen:
                return True
            if time.monotonic() - last[0] > 3.0:
                for text in bad:
                    robot.instruction.publish(String(data=text))
                last[0] = time.monotonic()
            return False

        assert robot.spin_until(both_rejected, 30.0), robot.status[-3:]
        rejected = [s for s in robot.status if s["state"] == "rejected"]
        assert all(s["reason"] for s in rejected)
        assert any("coordinates" in s["reason"] for s in rejected), rejected
        robot.spin_until(lambda: False, 1.0)
        assert robot.goals == [] and robot.missions == []

        # a speed request on a valid instruction: ignored, the plan has no speed in it
        robot.instruction.publish(String(data="go to the kitchen at 5 m/s"))
        assert robot.spin_until(lambda: robot.missions and robot.goals, 30.0), robot.status
        keys = {"action", "target", "direction", "distance_m", "angle_deg", "duration_s"}
        assert set(robot.missions[0]) == {"steps"}
        assert all(set(s) <= keys for s in robot.missions[0]["steps"]), robot.missions[0]
        assert robot.missions[0]["steps"][0]["target"] == "kitchen"
        assert all(abs(x) < 10 and abs(y) < 10 for x, y in robot.goals), robot.goals
    finally:
        robot.close()
