"""Nav2's interfaces over real DDS, our nodes as separate processes: the follow_path,
navigate_to_pose and compute_path_to_pose actions (Nav2 kilted's types), TF out of the sim
bridge and into the planner and navigator, and lifecycle transitions as Nav2's
lifecycle_manager drives them (configure, activate, get_state).

Clients here are plain rclpy ActionClients, as nav2_simple_commander's BasicNavigator uses.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
nav2_action = pytest.importorskip(
    "nav2_msgs.action", reason="nav2_msgs not built: python -m nav_policy.ros.build_interfaces")

from action_msgs.msg import GoalStatus
from geometry_msgs.msg import Twist
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from nav_msgs.msg import OccupancyGrid
from nav_msgs.msg import Path as PathMsg
from rclpy.action import ActionClient
from test_ros_nodes import BIN, WORLD, FakeRobot, Graph, Proc, policy_onnx
from tf2_msgs.msg import TFMessage

from nav_policy.ros import msgs
from nav_policy.ros.tf import Transform, TransformBuffer, tf_qos

FollowPath = nav2_action.FollowPath
NavigateToPose = nav2_action.NavigateToPose
ComputePathToPose = nav2_action.ComputePathToPose
REPO = Path(__file__).resolve().parents[1]
SHIPPED_RL = REPO / "models" / "local_rl.onnx"
MAP_ODOM = (0.8, -0.4, 0.5)  # x, y, yaw of the sim bridge's map -> odom in these tests
START, GOAL = (-1.2, 0.0), (1.2, 0.0)  # test/data/ros_easy.yaml, odom = world frame


def path_msg(points: Any, frame: str) -> PathMsg:
    msg = PathMsg()
    msg.header.frame_id = frame
    for x, y in points:
        msg.poses.append(msgs.pose_stamped(float(x), float(y), 0.0, 0.0, frame))
    return msg


def line(a: tuple[float, float], b: tuple[float, float], n: int = 12) -> np.ndarray:
    s = np.linspace(0.0, 1.0, n)[:, None]
    return np.asarray(a) + s * (np.asarray(b) - np.asarray(a))


class Goal:
    """One action goal from the test node: send, wait accepted/rejected, wait result."""

    def __init__(self, graph: Graph, client: ActionClient, goal: Any,
                 timeout: float = 20.0) -> None:
        self.graph = graph
        self.feedback: list[Any] = []
        fut = client.send_goal_async(goal, feedback_callback=lambda m: self.feedback.append(
            m.feedback))
        assert graph.spin_until(fut.done, timeout), "send_goal not answered"
        self.handle = fut.result()
        self.accepted = self.handle.accepted
        self._result = self.handle.get_result_async() if self.accepted else None

    def done(self) -> bool:
        return self._result is not None and self._result.done()

    def result(self, timeout: float) -> tuple[int, Any]:
        assert self._result is not None, "goal was rejected"
        assert self.graph.spin_until(self._result.done, timeout), "no result in time"
        r = self._result.result()
        return r.status, r.result

    def cancel(self) -> None:
        fut = self.handle.cancel_goal_async()
        assert self.graph.spin_until(fut.done, 10.0)


def wait_server(graph: Graph, client: ActionClient, timeout: float = 40.0) -> None:
    assert graph.spin_until(client.server_is_ready, timeout), "action server never appeared"


def call(graph: Graph, client: Any, request: Any, timeout: float = 20.0) -> Any:
    assert graph.spin_until(client.service_is_ready, timeout), f"{client.srv_name} missing"
    fut = client.call_async(request)
    assert graph.spin_until(fut.done, timeout), f"{client.srv_name} did not answer"
    return fut.result()


def lifecycle_state(graph: Graph, node: str) -> int:
    cli = graph.node.create_client(GetState, f"{node}/get_state")
    return call(graph, cli, GetState.Request()).current_state.id


def transition(graph: Graph, node: str, transition_id: int) -> bool:
    cli = graph.node.create_client(ChangeState, f"{node}/change_state")
    req = ChangeState.Request()
    req.transition.id = transition_id
    return call(graph, cli, req, 60.0).success


class CmdLog:
    def __init__(self, graph: Graph) -> None:
        self.cmds: list[tuple[float, float, float]] = []
        graph.node.create_subscription(Twist, "cmd_vel", lambda m: self.cmds.append(
            (time.monotonic(), m.linear.x, m.angular.z)), msgs.COMMAND_QOS)

    def since(self, t: float) -> list[tuple[float, float, float]]:
        return [c for c in self.cmds if c[0] >= t]


def map_from_odom(points: Any) -> np.ndarray:
    """World (= odom) points expressed in the map frame of MAP_ODOM."""
    return Transform.from_2d(*MAP_ODOM).apply(np.asarray(points, dtype=float))


def bridge_args() -> tuple[str, ...]:
    return ("--ros-args", "-p", f"world:={WORLD}", "-p", "publish_goal:=false",
            "-p", f"map_odom_x:={MAP_ODOM[0]}", "-p", f"map_odom_y:={MAP_ODOM[1]}",
            "-p", f"map_odom_yaw:={MAP_ODOM[2]}")


@pytest.fixture()
def launch(tmp_path: Path) -> Iterator[Any]:
    """Start a node by console script, or (before `pip install -e .` has registered a new
    script) by its module's entry function; stopped when the test ends."""
    procs: list[Proc] = []
    entry = {"navigator_node": "main", "planner_server_node": "planner_main"}

    def start(exe: str, *args: str) -> Proc:
        if (BIN / exe).is_file():
            argv = [str(BIN / exe), *args]
        else:
            argv = [sys.executable, "-c", "import sys; from nav_policy.ros.navigator_node "
                    f"import {entry[exe]}; sys.exit({entry[exe]}(sys.argv))", *args]
        p = Proc(argv, tmp_path, f"nav_{len(procs)}_{exe}")
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()
    for p in procs:
        print(f"--- {p.err.name}\n{p.stderr()[-3000:]}")


# ---- follow_path on the simulator: preemption, success through TF, cancel --------------------


def test_follow_path_preempt_success_in_map_frame_and_cancel(graph: Graph, spawn) -> None:
    spawn("sim_bridge_node", *bridge_args())
    spawn("local_planner_node", "--ros-args", "-p", "planner:=rl", "-p", f"model:={SHIPPED_RL}")
    status = graph.latest_json("sim_bridge_node/status")
    cmds = CmdLog(graph)
    client = ActionClient(graph.node, FollowPath, "follow_path")
    wait_server(graph, client)
    assert graph.spin_until(lambda: "pose" in status, 30.0)

    # A: toward the upper wall, in odom; preempted by B after a second (not toward the low box
    # at (0, -0.65), which only the depth camera sees)
    a = Goal(graph, client, FollowPath.Goal(path=path_msg(line(START, (-1.2, 1.6)), "odom"),
                                            controller_id="FollowPath"))
    assert a.accepted
    graph.spin_for(1.0)
    # B: start -> goal, given in `map` (map -> odom is not the identity): transformed via TF
    b = Goal(graph, client, FollowPath.Goal(path=path_msg(map_from_odom(line(START, GOAL)),
                                                          "map")))
    assert b.accepted
    a_status, a_result = a.result(10.0)
    assert a_status == GoalStatus.STATUS_ABORTED and "preempted" in a_result.error_msg
    b_status, b_result = b.result(60.0)
    assert b_status == GoalStatus.STATUS_SUCCEEDED, (b_result.error_code, b_result.error_msg)
    assert graph.spin_until(lambda: status["distance_to_goal"] < 0.35, 5.0), status
    assert status["collision_steps"] == 0
    dist = [f.distance_to_goal for f in b.feedback]
    assert len(dist) > 10 and dist[0] > 1.5 and min(dist) < 0.5, dist[:3]
    assert max(f.speed for f in b.feedback) > 0.1

    # C: back toward the start, canceled while driving: ends CANCELED with zero velocity
    c = Goal(graph, client, FollowPath.Goal(path=path_msg(line(GOAL, START), "odom")))
    assert c.accepted
    assert graph.spin_until(lambda: any(abs(v) > 0.05 or abs(w) > 0.05
                                        for _, v, w in cmds.cmds[-3:]), 15.0)
    c.cancel()
    c_status, _ = c.result(10.0)
    assert c_status == GoalStatus.STATUS_CANCELED
    t = time.monotonic()
    graph.spin_for(1.0)
    assert cmds.cmds[-1][1:] == (0.0, 0.0), cmds.cmds[-3:]
    assert all(v == 0.0 and w == 0.0 for _, v, w in cmds.since(t + 0.3))


# ---- lifecycle as a lifecycle manager drives it; bad goals; a blocked path -------------------


def test_lifecycle_rejection_and_error_codes(graph: Graph, spawn, tmp_path: Path) -> None:
    model = policy_onnx(tmp_path / "forward.onnx", v=0.3, w=0.0)
    spawn("local_planner_node", "--ros-args", "-p", "planner:=rl", "-p", f"model:={model}",
          "-p", "autostart:=false", "-p", "failure_tolerance:=0.3",
          "-p", "transform_timeout:=0.3", "-p", "sensor_data_timeout:=1.0")
    robot = FakeRobot(graph)
    node = "local_planner_node"
    assert lifecycle_state(graph, node) == State.PRIMARY_STATE_UNCONFIGURED
    assert transition(graph, node, Transition.TRANSITION_CONFIGURE)
    assert lifecycle_state(graph, node) == State.PRIMARY_STATE_INACTIVE
    client = ActionClient(graph.node, FollowPath, "follow_path")
    wait_server(graph, client)
    ahead = path_msg(line((0.0, 0.0), (3.0, 0.0)), "odom")
    assert not Goal(graph, client, FollowPath.Goal(path=ahead)).accepted  # inactive
    assert transition(graph, node, Transition.TRANSITION_ACTIVATE)
    assert lifecycle_state(graph, node) == State.PRIMARY_STATE_ACTIVE
    R = FollowPath.Result

    def outcome(goal: Any, timeout: float = 15.0) -> tuple[int, Any]:
        g = Goal(graph, client, goal)
        assert g.accepted
        return g.result(timeout)

    st, res = outcome(FollowPath.Goal(path=ahead, controller_id="DWB"))
    assert (st, res.error_code) == (GoalStatus.STATUS_ABORTED, R.INVALID_CONTROLLER)
    assert "DWB" in res.error_msg
    st, res = outcome(FollowPath.Goal(path=ahead, goal_checker_id="precise"))
    assert (st, res.error_code) == (GoalStatus.STATUS_ABORTED, R.UNKNOWN) and "precise" in \
        res.error_msg
    st, res = outcome(FollowPath.Goal(path=path_msg([], "odom")))
    assert (st, res.error_code) == (GoalStatus.STATUS_ABORTED, R.INVALID_PATH)
    st, res = outcome(FollowPath.Goal(path=path_msg(line((0, 0), (3, 0)), "nowhere")))
    assert (st, res.error_code) == (GoalStatus.STATUS_ABORTED, R.TF_ERROR)
    assert "'nowhere'" in res.error_msg and "'odom'" in res.error_msg

    # a valid path, but an obstacle touching the footprint ahead: the safety layer stops the
    # robot and after failure_tolerance the goal aborts with NO_VALID_CONTROL
    assert graph.spin_until(lambda: robot.cmds is not None, 1.0)
    g = Goal(graph, client, FollowPath.Goal(path=ahead))
    assert g.accepted
    assert graph.spin_until(robot.driving, 15.0), robot.cmds[-3:]
    robot.set_mode("obstacle")
    st, res = g.result(15.0)
    assert (st, res.error_code) == (GoalStatus.STATUS_ABORTED, R.NO_VALID_CONTROL), \
        res.error_msg
    assert "stop" in res.error_msg
    graph.spin_for(0.3)
    assert robot.cmds[-1][1] == 0.0

    # the scan stops: stopped by the watchdog, then CONTROLLER_TIMED_OUT after 1 s
    robot.set_mode("clear")
    g = Goal(graph, client, FollowPath.Goal(path=ahead))
    assert g.accepted and graph.spin_until(robot.driving, 15.0)
    robot.set_mode("silent")
    st, res = g.result(15.0)
    assert (st, res.error_code) == (GoalStatus.STATUS_ABORTED, R.CONTROLLER_TIMED_OUT), \
        res.error_msg
    assert "scan" in res.error_msg

    assert transition(graph, node, Transition.TRANSITION_DEACTIVATE)
    assert lifecycle_state(graph, node) == State.PRIMARY_STATE_INACTIVE
    robot.set_mode("clear")
    assert not Goal(graph, client, FollowPath.Goal(path=ahead)).accepted


# ---- TF out of the sim bridge ----------------------------------------------------------------


def test_sim_bridge_publishes_tf(graph: Graph, spawn) -> None:
    spawn("sim_bridge_node", *bridge_args())
    buf = TransformBuffer()
    dynamic, static = tf_qos()
    graph.node.create_subscription(TFMessage, "/tf", buf.add_message, dynamic)
    graph.node.create_subscription(TFMessage, "/tf_static",
                                   lambda m: buf.add_message(m, static=True), static)
    assert graph.spin_until(lambda: buf.can_transform("map", "base_scan"), 30.0), buf.frames()
    assert buf.edges["base_scan"].static and buf.edges["base_scan"].parent == "base_link"
    assert buf.edges["base_link"].parent == "odom" and buf.edges["odom"].parent == "map"
    lidar = buf.lookup("base_link", "base_scan")
    assert lidar.t == pytest.approx((0.0, 0.0, 0.22))
    mo = buf.lookup("map", "odom")
    assert (mo.t[0], mo.t[1], mo.yaw) == pytest.approx(MAP_ODOM)
    ob = buf.lookup("odom", "base_link")  # the robot at the world's start
    assert (ob.t[0], ob.t[1], ob.yaw) == pytest.approx((*START, 0.0), abs=1e-3)
    x, y, _ = buf.lookup("map", "base_link").apply_pose_2d(0.0, 0.0, 0.0)
    assert (x, y) == pytest.approx(tuple(map_from_odom([START])[0]), abs=1e-3)
    assert math.isfinite(x)


# ---- navigate_to_pose and compute_path_to_pose --------------------------------------------


def test_navigate_to_pose_in_map_reaches_the_goal(graph: Graph, spawn, launch) -> None:
    """A goal given in `map` (map -> odom not the identity): the navigator transforms it into
    the world file's frame (odom), plans around the cylinder and drives the shipped rl policy
    there through follow_path; the simulator confirms the robot is at the goal."""
    spawn("sim_bridge_node", *bridge_args())
    spawn("local_planner_node", "--ros-args", "-p", "planner:=rl", "-p", f"model:={SHIPPED_RL}")
    nav = launch("navigator_node", "--ros-args", "-p", f"world:={WORLD}")
    status = graph.latest_json("sim_bridge_node/status")
    client = ActionClient(graph.node, NavigateToPose, "navigate_to_pose")
    wait_server(graph, client)
    assert lifecycle_state(graph, "navigator_node") == State.PRIMARY_STATE_ACTIVE
    gx, gy = map_from_odom([GOAL])[0]
    goal = NavigateToPose.Goal(pose=msgs.pose_stamped(gx, gy, 0.0, 0.0, "map"))
    g = Goal(graph, client, goal)
    assert g.accepted
    st, res = g.result(60.0)
    assert st == GoalStatus.STATUS_SUCCEEDED, (res.error_code, res.error_msg, nav.stderr())
    assert graph.spin_until(lambda: status.get("distance_to_goal", 9) < 0.35, 5.0), status
    assert status["collision_steps"] == 0
    fb = [f for f in g.feedback if f.current_pose.header.frame_id == "map"]
    assert fb and fb[0].distance_remaining > 1.5
    last = fb[-1].current_pose.pose.position  # the robot, reported in map, near the map goal
    assert math.hypot(last.x - gx, last.y - gy) < 0.6

    # a goal in a frame nobody publishes: TF_ERROR after transform_timeout (1 s)
    st, res = Goal(graph, client, NavigateToPose.Goal(
        pose=msgs.pose_stamped(0.0, 0.0, 0.0, 0.0, "elsewhere"))).result(20.0)
    assert (st, res.error_code) == (GoalStatus.STATUS_ABORTED, NavigateToPose.Result.TF_ERROR)
    assert "'elsewhere'" in res.error_msg

    # preempt, then cancel: back toward the start, replaced by another goal, which is canceled
    back = [map_from_odom([p])[0] for p in ((-1.0, 0.0), (-0.8, -0.2))]
    g1 = Goal(graph, client, NavigateToPose.Goal(pose=msgs.pose_stamped(*back[0], 0.0, 0.0,
                                                                        "map")))
    graph.spin_for(1.0)
    g2 = Goal(graph, client, NavigateToPose.Goal(pose=msgs.pose_stamped(*back[1], 0.0, 0.0,
                                                                        "map")))
    st, res = g1.result(10.0)
    assert st == GoalStatus.STATUS_ABORTED and "preempted" in res.error_msg
    assert graph.spin_until(lambda: len(g2.feedback) > 3, 20.0)
    g2.cancel()
    assert g2.result(10.0)[0] == GoalStatus.STATUS_CANCELED
    graph.spin_for(0.5)
    assert status["cmd"] == [0.0, 0.0] or graph.spin_until(
        lambda: status["cmd"] == [0.0, 0.0], 3.0), status


def occupancy_grid() -> OccupancyGrid:
    """6 x 4 m at 0.1 m in `map`, origin (-3, -2): a wall at x = 0 with a gap at y in [1, 2]."""
    m = OccupancyGrid()
    m.header.frame_id = "map"
    m.info.resolution = 0.1
    m.info.width, m.info.height = 60, 40
    m.info.origin.position.x, m.info.origin.position.y = -3.0, -2.0
    m.info.origin.orientation.w = 1.0
    occ = np.zeros((40, 60), dtype=np.int8)
    occ[:28, 29:31] = 100  # wall from y = -2 to 0.8
    m.data = occ.ravel().tolist()
    return m


def test_compute_path_to_pose_on_an_occupancy_grid(graph: Graph, launch) -> None:
    from nav_policy.ros.deceptive_planner_node import MAP_QOS

    launch("planner_server_node", "--ros-args", "-p", "autostart:=false")
    node = "planner_server_node"
    assert lifecycle_state(graph, node) == State.PRIMARY_STATE_UNCONFIGURED
    assert transition(graph, node, Transition.TRANSITION_CONFIGURE)
    assert transition(graph, node, Transition.TRANSITION_ACTIVATE)
    assert lifecycle_state(graph, node) == State.PRIMARY_STATE_ACTIVE
    pub = graph.node.create_publisher(OccupancyGrid, "map", MAP_QOS)
    pub.publish(occupancy_grid())
    client = ActionClient(graph.node, ComputePathToPose, "compute_path_to_pose")
    wait_server(graph, client)
    R = ComputePathToPose.Result

    def plan(gx: float, gy: float, planner_id: str = "") -> tuple[int, Any]:
        goal = ComputePathToPose.Goal(goal=msgs.pose_stamped(gx, gy, 0.0, 0.0, "map"),
                                      start=msgs.pose_stamped(-2.0, -1.0, 0.0, 0.0, "map"),
                                      use_start=True, planner_id=planner_id)
        return Goal(graph, client, goal).result(20.0)

    st, res = plan(2.0, -1.0)
    assert st == GoalStatus.STATUS_SUCCEEDED, res.error_msg
    pts = np.array([(p.pose.position.x, p.pose.position.y) for p in res.path.poses])
    assert res.path.header.frame_id == "map"
    assert tuple(pts[0]) == pytest.approx((-2.0, -1.0)) and tuple(pts[-1]) == (2.0, -1.0)
    crossing = pts[np.argmin(np.abs(pts[:, 0]))]  # the path goes through the gap
    assert np.abs(pts[:, 0]).min() < 0.3 and crossing[1] > 0.8 + 0.2
    assert plan(0.0, -1.0)[1].error_code == R.GOAL_OCCUPIED
    assert plan(5.0, 0.0)[1].error_code == R.GOAL_OUTSIDE_MAP
    st, res = plan(2.0, -1.0, planner_id="NavFn")
    assert (st, res.error_code) == (GoalStatus.STATUS_ABORTED, R.INVALID_PLANNER)
