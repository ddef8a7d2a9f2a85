"""deceptive_planner_node: pure helpers, and the node as a subprocess over DDS.

conftest.py gives this pytest process its own ROS_DOMAIN_ID; the node process inherits it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from nav_msgs.msg import Path as PathMsg
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from nav_policy.deception.graphs import build_graph
from nav_policy.errors import ConfigError
from nav_policy.ros import deceptive_planner_node as dpn
from nav_policy.ros import msgs, params

REPO = Path(__file__).resolve().parents[1]
WORLD = REPO / "test" / "data" / "ros_easy.yaml"
START, GOAL, DECOY = (-1.2, 0.0), (1.2, 0.0), (1.2, 1.5)
WORLD_PARAMS = {"world": str(WORLD), "robot_radius": 0.2, "resolution": 0.25, "margin": 0.05}


def line_graph() -> Any:
    pos = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    return build_graph(np.arange(3), pos, np.array([[0, 1], [1, 2]]), np.array([1.0, 1.0]))


# ---- pure helpers --------------------------------------------------------------------------


def test_parse_decoys() -> None:
    assert dpn.parse_decoys([1.0, 2.0, 3, -4.5]) == [(1.0, 2.0), (3.0, -4.5)]
    assert dpn.parse_decoys([]) == [] and dpn.parse_decoys(None) == []
    with pytest.raises(ConfigError, match="pairs"):
        dpn.parse_decoys([1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="not finite"):
        dpn.parse_decoys([1.0, float("nan")])
    with pytest.raises(ConfigError, match="not numeric"):
        dpn.parse_decoys([1.0, "a"])  # type: ignore[list-item]


def test_snap() -> None:
    g = line_graph()
    assert dpn.snap(g, 1.2, 0.1, 0.5) == 1
    assert dpn.snap(g, 5.0, 0.0, 0.5) is None
    assert dpn.snap(g, float("nan"), 0.0, 0.5) is None


def test_path_msg_and_length() -> None:
    g = line_graph()
    pts = dpn.path_points(g, [0, 1, 2], goal=(2.0, 0.5))
    assert pts[-1] == (2.0, 0.5) and len(pts) == 4
    assert dpn.path_points(g, [0, 1, 2], goal=(2.0, 0.0)) == [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0)]
    assert dpn.path_length(pts) == pytest.approx(2.5)
    msg = dpn.path_msg(pts, 12.5, "odom", final_yaw=1.0)
    assert msg.header.frame_id == "odom" and len(msg.poses) == 4
    assert msg.poses[0].pose.position.x == 0.0 and msg.poses[3].pose.position.y == 0.5
    q = msg.poses[0].pose.orientation
    assert abs(q.z) < 1e-9  # facing +x
    q = msg.poses[3].pose.orientation
    assert 2 * math.atan2(q.z, q.w) == pytest.approx(1.0)


def test_plan_request_policies_and_rejections() -> None:
    graph = dpn.build_roadmap(WORLD_PARAMS)
    for policy in ("shortest", "pi_d2"):
        req = dpn.Request(START, GOAL, [DECOY], 1.5, "ambiguity", policy, 1.0)
        path, problem = dpn.plan_request(graph, req)
        assert path[0] == problem.start and path[-1] == problem.goal
        cost = dpn.path_length(dpn.path_points(graph, path))
        assert cost <= 1.5 * problem.optc + 1e-6
    req = dpn.Request(START, (30.0, 0.0), [DECOY], 1.5, "ambiguity", "shortest", 1.0)
    with pytest.raises(dpn.PlanRejected) as err:
        dpn.plan_request(graph, req)
    assert err.value.code == "goal_off_roadmap"
    req = dpn.Request(START, GOAL, [GOAL], 1.5, "ambiguity", "shortest", 1.0)
    with pytest.raises(dpn.PlanRejected) as err:
        dpn.plan_request(graph, req)
    assert err.value.code == "no_decoys"


def test_params_registered() -> None:
    assert params.check_values("deceptive_planner_node", {"budget": 0.5}) is not None
    assert params.check_values("deceptive_planner_node", {"policy": "pi_d4"}) is not None
    assert params.defaults("deceptive_planner_node")["budget"] == 1.5


# ---- the node over DDS ---------------------------------------------------------------------


def ros_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
               PYTHONUNBUFFERED="1")
    env.setdefault("ROS_DOMAIN_ID", "44")
    return env


def test_node_publishes_a_deceptive_plan_within_budget(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    argv = [sys.executable, "-m", "nav_policy.ros.deceptive_planner_node", "--ros-args",
            "-p", f"world:={WORLD}", "-p", f"decoys:=[{DECOY[0]}, {DECOY[1]}]"]
    with open(log, "wb") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=ros_env(),
                                stdin=subprocess.DEVNULL)
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = Node("test_ros_deceptive", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    plans: list[PathMsg] = []
    status: list[dict[str, Any]] = []
    try:
        q = msgs.COMMAND_QOS
        odom = node.create_publisher(Odometry, "odom", msgs.SENSOR_PUB_QOS)
        goal = node.create_publisher(PoseStamped, "goal_pose", q)
        node.create_subscription(PathMsg, "plan", plans.append, q)
        node.create_subscription(String, "/deceptive_planner_node/status",
                                 lambda m: status.append(json.loads(m.data)), q)
        node.create_timer(0.05, lambda: odom.publish(
            msgs.odometry(*START, 0.0, 0.0, 0.0, time.time(), "odom", "base_link")))

        def spin_until(cond: Any, timeout: float) -> bool:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.02)
                if cond():
                    return True
            return proc.poll() is None and bool(cond())

        assert spin_until(lambda: goal.get_subscription_count() > 0
                          and node.count_publishers("plan") > 0
                          and node.count_publishers("/deceptive_planner_node/status") > 0,
                          25.0), "node did not come up"
        spin_until(lambda: False, 0.5)
        goal.publish(msgs.pose_stamped(*GOAL, 0.0, time.time(), "odom"))
        assert spin_until(lambda: plans, 10.0), "no plan"
        msg = plans[-1]
        pts = [(p.pose.position.x, p.pose.position.y) for p in msg.poses]
        assert msg.header.frame_id == "odom"
        assert math.dist(pts[0], START) <= 0.25 and math.dist(pts[-1], GOAL) < 1e-6
        graph = dpn.build_roadmap(WORLD_PARAMS)
        s, g = dpn.snap(graph, *START, 1.0), dpn.snap(graph, *GOAL, 1.0)
        optc = float(graph.distances(g)[s])
        goal_snap = math.dist(GOAL, tuple(graph.pos[g]))  # the exact goal is appended
        assert dpn.path_length(pts) <= 1.5 * optc + goal_snap + 1e-6
        assert spin_until(lambda: status, 5.0) and status[-1]["state"] == "planned"

        # an unsnappable goal: no plan, a JSON reason on ~/status
        n = len(plans)
        goal.publish(msgs.pose_stamped(40.0, 0.0, 0.0, time.time(), "odom"))
        assert spin_until(lambda: status[-1]["state"] == "rejected", 10.0), status
        assert status[-1]["code"] == "goal_off_roadmap" and len(plans) == n
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        print(log.read_text()[-2000:])
