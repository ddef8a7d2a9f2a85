"""instruction_node and mission_executor_node as separate processes over DDS.

conftest.py gives this pytest process its own ROS_DOMAIN_ID; the node processes inherit it.
The in-test node plays the robot (odom) and listens to mission, goal_pose and mission_status.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")

from geometry_msgs.msg import PoseStamped, Twist  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.signals import SignalHandlerOptions  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from nav_policy.ros import msgs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LANDMARKS = REPO / "config" / "landmarks_demo.yaml"


def ros_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
               PYTHONUNBUFFERED="1")
    env.setdefault("ROS_DOMAIN_ID", "43")
    return env


@pytest.fixture()
def spawn(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(module: str, *params: str) -> subprocess.Popen[bytes]:
        log = tmp_path / f"{len(procs)}_{module.rsplit('.', 1)[-1]}.log"
        argv = [sys.executable, "-m", module, "--ros-args"]
        for p in params:
            argv += ["-p", p]
        with open(log, "wb") as f:
            proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=ros_env(),
                                    stdin=subprocess.DEVNULL)
        procs.append((proc, log))
        return proc

    yield start
    for proc, _ in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc, log in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        print(f"--- {log.name}\n{log.read_text()[-2000:]}")


class Robot:
    """In-test node: a fake robot that jumps to each goal it gets (or stays put)."""

    def __init__(self, follow: bool = True) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = Node("test_ros_mission", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.pose = (0.0, -3.0, math.pi / 2)
        self.follow = follow
        self.goals: list[tuple[float, float]] = []
        self.missions: list[dict[str, Any]] = []
        self.status: list[dict[str, Any]] = []
        self.cmds: list[tuple[float, float]] = []
        n, q = self.node, msgs.COMMAND_QOS
        self.instruction = n.create_publisher(String, "instruction", q)
        self.odom = n.create_publisher(Odometry, "odom", msgs.SENSOR_PUB_QOS)
        n.create_subscription(PoseStamped, "goal_pose", self._on_goal, q)
        n.create_subscription(String, "mission", lambda m: self.missions.append(
            json.loads(m.data)), q)
        n.create_subscription(String, "mission_status", lambda m: self.status.append(
            json.loads(m.data)), q)
        n.create_subscription(Twist, "cmd_vel", self._on_cmd, q)
        n.create_timer(0.05, self._publish_odom)

    def _on_goal(self, msg: PoseStamped) -> None:
        g = (msg.pose.position.x, msg.pose.position.y)
        self.goals.append(g)
        if self.follow:
            self.pose = (g[0], g[1], self.pose[2])

    def _on_cmd(self, msg: Twist) -> None:
        self.cmds.append((msg.linear.x, msg.angular.z))
        if self.follow:  # a turn: integrate the rate over one executor tick (20 Hz)
            self.pose = (self.pose[0], self.pose[1], self.pose[2] + 0.05 * msg.angular.z)

    def _publish_odom(self) -> None:
        x, y, yaw = self.pose
        self.odom.publish(msgs.odometry(x, y, yaw, 0.0, 0.0, time.time(), "odom", "base_link"))

    def spin_until(self, cond: Callable[[], Any], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.02)
            if cond():
                return True
        return False

    def graph_up(self) -> bool:
        """instruction_node and the executor are both up and matched with each other."""
        n = self.node
        return (self.instruction.get_subscription_count() > 0
                and n.count_subscribers("mission") >= 2  # this node and the executor
                and n.count_publishers("mission_status") >= 2)

    def send(self, text: str, timeout: float = 40.0) -> None:
        assert self.spin_until(self.graph_up, timeout), "the nodes did not come up"
        self.spin_until(lambda: False, 1.0)  # let discovery settle on the nodes' side too
        self.instruction.publish(String(data=text))

    def states(self) -> list[str]:
        return [s.get("state", "") for s in self.status]

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture()
def robot() -> Iterator[Robot]:
    r = Robot()
    yield r
    r.close()


def start_nodes(spawn: Callable[..., Any], *executor_params: str) -> None:
    spawn("nav_policy.ros.instruction_node", f"landmarks:={LANDMARKS}", "use_embeddings:=false")
    spawn("nav_policy.ros.mission_executor_node", f"landmarks:={LANDMARKS}", "rate:=20.0",
          *executor_params)


def test_instruction_to_mission_goals_in_order_and_success(robot: Robot, spawn) -> None:
    start_nodes(spawn)
    robot.send("go to the couch, then go to the kitchen door and turn left")
    assert robot.spin_until(lambda: "succeeded" in robot.states() or "failed" in
                            robot.states(), 60.0), f"no end state: {robot.status[-3:]}"
    assert robot.missions and [s["action"] for s in robot.missions[0]["steps"]] == \
        ["go_to", "go_to", "turn"]
    assert robot.states()[-1] == "succeeded", robot.status[-1]
    assert len(robot.goals) == 2
    assert math.dist(robot.goals[1], (1.2, 3.0)) < 1e-6  # the doorway itself
    assert math.dist(robot.goals[0], (-1.8, 0.2)) == pytest.approx(0.6, abs=1e-3)  # standoff
    done = [s["step"] for s in robot.status if s["state"] == "step_done"]
    assert done == [0, 1, 2]
    assert any(w > 0 for _, w in robot.cmds)  # a left turn rotates counter-clockwise


def test_ungroundable_instruction_is_rejected_without_goal(robot: Robot, spawn) -> None:
    start_nodes(spawn)
    robot.send("go to the garage")
    assert robot.spin_until(lambda: "rejected" in robot.states(), 40.0)
    rejected = next(s for s in robot.status if s["state"] == "rejected")
    assert rejected["code"] == "unknown_landmark" and "garage" in rejected["reason"]
    robot.spin_until(lambda: False, 1.5)
    assert robot.goals == [] and robot.missions == []


def test_timeout_stops_the_robot_and_reports(spawn) -> None:
    robot = Robot(follow=False)  # never moves
    try:
        start_nodes(spawn, "step_timeout:=2.0")
        robot.send("go to the kitchen")
        assert robot.spin_until(lambda: "failed" in robot.states(), 40.0), robot.status[-3:]
        failed = next(s for s in robot.status if s["state"] == "failed")
        assert failed["reason"].startswith("timeout") and failed["step"] == 0
        assert robot.spin_until(lambda: robot.cmds and robot.cmds[-1] == (0.0, 0.0), 5.0)
    finally:
        robot.close()
