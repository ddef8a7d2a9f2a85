"""deceptive_planner_node: pure helpers, and the node as a subprocess over DDS.

conftest.py gives this pytest process its own ROS_DOMAIN_ID; the node processes inherit it
(with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, test_ros_nodes.ros_env). The in-test node
(test_ros_nodes.Graph) plays the robot and the operator: odom, goal_pose, decoys, map, the
parameter services.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from geometry_msgs.msg import Pose, PoseArray, PoseStamped
from nav_msgs.msg import OccupancyGrid, Odometry
from nav_msgs.msg import Path as PathMsg
from rclpy.parameter_client import AsyncParameterClient
from std_msgs.msg import String
from test_ros_nodes import Graph, Proc, set_param

from nav_policy.deception.graphs import (
    GraphError,
    build_graph,
    occupancy_clearance,
    occupancy_roadmap,
    world_roadmap,
)
from nav_policy.errors import ConfigError
from nav_policy.ros import deceptive_planner_node as dpn
from nav_policy.ros import msgs, params
from nav_policy.sim.grid import GridMap
from nav_policy.sim.world import Cylinder, World, load_world

REPO = Path(__file__).resolve().parents[1]
WORLD = REPO / "test" / "data" / "ros_easy.yaml"
SHIPPED_RL = REPO / "models" / "local_rl.onnx"
START, GOAL, DECOY = (-1.2, 0.0), (1.2, 0.0), (1.2, 1.5)
WORLD_PARAMS = {"world": str(WORLD), "robot_radius": 0.2, "resolution": 0.25, "margin": 0.05}
STATUS = "/deceptive_planner_node/status"


def line_graph() -> Any:
    pos = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    return build_graph(np.arange(3), pos, np.array([[0, 1], [1, 2]]), np.array([1.0, 1.0]))


def world_occupancy(world: World, res: float = 0.05) -> tuple[np.ndarray, tuple[float, ...]]:
    """The world rasterised as a map server would hold it: 100 where a cell touches an
    obstacle, 0 elsewhere; (occupancy, origin of the map's corner)."""
    grid = GridMap.from_world(world, res)
    occ = np.where(grid.clearance < res / 2, 100, 0).astype(np.int8)
    return occ, (grid.origin[0] - res / 2, grid.origin[1] - res / 2, 0.0)


def grid_msg(occ: np.ndarray, res: float, origin: tuple[float, ...], frame: str = "odom"
             ) -> OccupancyGrid:
    msg = OccupancyGrid()
    msg.header.frame_id = frame
    msg.info.resolution = float(res)
    msg.info.height, msg.info.width = occ.shape
    msg.info.origin.position.x, msg.info.origin.position.y = float(origin[0]), float(origin[1])
    yaw = origin[2]
    msg.info.origin.orientation.z, msg.info.origin.orientation.w = math.sin(yaw / 2), \
        math.cos(yaw / 2)
    msg.data = occ.reshape(-1).astype(np.int8).tolist()
    return msg


def pose_array(points: list[tuple[float, float]], frame: str = "odom") -> PoseArray:
    msg = PoseArray()
    msg.header.frame_id = frame
    for x, y in points:
        pose = Pose()
        pose.position.x, pose.position.y = float(x), float(y)
        msg.poses.append(pose)
    return msg


def plan_points(msg: PathMsg) -> list[tuple[float, float]]:
    return [(p.pose.position.x, p.pose.position.y) for p in msg.poses]


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


def test_flat_decoys_of_a_pose_array() -> None:
    assert dpn.flat_decoys(pose_array([(1.0, 2.0), (-3.0, 0.5)])) == [1.0, 2.0, -3.0, 0.5]
    assert dpn.flat_decoys(pose_array([])) == []
    with pytest.raises(ConfigError, match="not finite"):
        dpn.parse_decoys(dpn.flat_decoys(pose_array([(1.0, float("inf"))])))


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
        status = dpn.plan_status(graph, path, problem, dpn.path_points(graph, path), req)
        assert status["within_budget"] and 0.0 <= status["ldp_completion"] <= 1.0
    req = dpn.Request(START, (30.0, 0.0), [DECOY], 1.5, "ambiguity", "shortest", 1.0)
    with pytest.raises(dpn.PlanRejected) as err:
        dpn.plan_request(graph, req)
    assert err.value.code == "goal_off_roadmap"
    req = dpn.Request(START, GOAL, [GOAL], 1.5, "ambiguity", "shortest", 1.0)
    with pytest.raises(dpn.PlanRejected) as err:
        dpn.plan_request(graph, req)
    assert err.value.code == "no_decoys"
    with pytest.raises(ConfigError, match="no world"):
        dpn.build_roadmap({**WORLD_PARAMS, "world": ""})


def test_params_registered() -> None:
    assert params.check_values("deceptive_planner_node", {"budget": 0.5}) is not None
    assert params.check_values("deceptive_planner_node", {"policy": "pi_d4"}) is not None
    assert params.check_values("deceptive_planner_node", {"occupied_threshold": 0}) is not None
    defaults = params.defaults("deceptive_planner_node")
    assert defaults["budget"] == 1.5 and defaults["world"] == "" and not defaults["use_map"]


def test_occupancy_roadmap_matches_the_world_roadmap() -> None:
    """The same world as a 5 cm map: the same roadmap up to cells on the clearance edge, and
    every map node really has the robot's clearance."""
    world = load_world(WORLD)
    from_world = world_roadmap(world, 0.2, 0.25, 0.05)
    occ, origin = world_occupancy(world)
    from_map = occupancy_roadmap(occ, 0.05, origin, 0.2, 0.25, 0.05)
    a = {tuple(p) for p in np.round(from_world.pos, 3)}
    b = {tuple(p) for p in np.round(from_map.pos, 3)}
    assert len(a & b) >= 0.97 * len(a) and len(b - a) <= 0.01 * len(b), (len(a), len(b))
    assert world.clearance(from_map.pos[:, 0], from_map.pos[:, 1]).min() > 0.2
    assert from_map.median_edge() == pytest.approx(0.25)

    # a map rotated by 90 degrees about its corner: the nodes rotate with it
    turned = occupancy_roadmap(occ, 0.05, (1.0, 2.0, math.pi / 2), 0.2, 0.25, 0.05)
    local = from_map.pos - np.array(origin[:2])
    expect = np.stack([1.0 - local[:, 1], 2.0 + local[:, 0]], axis=1)
    assert np.allclose(np.sort(turned.pos, axis=0), np.sort(expect, axis=0))


def test_occupancy_clearance_unknown_cells_and_errors() -> None:
    occ = np.zeros((40, 40), dtype=np.int8)
    occ[:, 20:] = -1  # the right half unexplored
    known = occupancy_roadmap(occ, 0.05, (0.0, 0.0, 0.0), 0.2, 0.25, 0.0)
    assert known.pos[:, 0].max() < 1.0  # nodes only on the known (left) side
    both = occupancy_roadmap(occ, 0.05, (0.0, 0.0, 0.0), 0.2, 0.25, 0.0,
                             unknown_is_obstacle=False)
    assert both.pos[:, 0].max() > 1.0
    cl = occupancy_clearance(np.array([[0, 0, 0, 100]], dtype=np.int8), 0.1, 50, False)
    assert cl[0].tolist() == pytest.approx([0.25, 0.15, 0.05, 0.0])
    with pytest.raises(GraphError, match="no free cell"):
        occupancy_roadmap(np.full((10, 10), 100, np.int8), 0.05, (0.0, 0.0, 0.0), 0.2)
    with pytest.raises(GraphError, match="resolution"):
        occupancy_clearance(occ, 0.0)


def test_grid_from_msg() -> None:
    occ, origin = world_occupancy(load_world(WORLD))
    got, res, org = dpn.grid_from_msg(grid_msg(occ, 0.05, origin))
    assert np.array_equal(got, occ) and res == pytest.approx(0.05)
    assert org == pytest.approx(origin)
    bad = grid_msg(occ, 0.05, origin)
    bad.info.width += 1
    with pytest.raises(ConfigError, match="cells"):
        dpn.grid_from_msg(bad)
    bad = grid_msg(occ, 0.05, origin)
    bad.info.resolution = 0.0
    with pytest.raises(ConfigError, match="resolution"):
        dpn.grid_from_msg(bad)
    with pytest.raises(ConfigError, match="empty"):
        dpn.grid_from_msg(OccupancyGrid())


def test_route_deception_of_a_detour() -> None:
    graph = dpn.build_roadmap(WORLD_PARAMS)
    req = dpn.Request(START, GOAL, [DECOY], 1.5, "ambiguity", "pi_d2", 1.0)
    path, _ = dpn.plan_request(graph, req)
    got = dpn.route_deception(graph, dpn.path_points(graph, path, GOAL), GOAL, [DECOY])
    assert got["closest_decoy_m"][0] < got["closest_decoy_m_shortest"][0] - 0.2
    assert got["length_m"] > got["length_m_shortest"]
    assert got["deceptive_fraction"] > got["deceptive_fraction_shortest"]
    assert 0.0 <= got["p_true_goal_prefix"] <= 1.0
    same = dpn.route_deception(graph, [START, GOAL], GOAL, [DECOY])  # the straight line
    assert same["closest_decoy_m"][0] == pytest.approx(same["closest_decoy_m_shortest"][0],
                                                       abs=0.15)


# ---- the node over DDS ---------------------------------------------------------------------


class Operator:
    """The in-test side of a deceptive_planner_node: odom at START, goals, decoys; records
    routes (non-empty plans), cancels (empty plans) and ~/status."""

    def __init__(self, graph: Graph, odom: bool = True) -> None:
        n = graph.node
        q = msgs.COMMAND_QOS
        self.graph = graph
        self.plans: list[PathMsg] = []
        self.cancels = 0
        self.status: list[dict[str, Any]] = []
        self.goal = n.create_publisher(PoseStamped, "goal_pose", q)
        self.decoys = n.create_publisher(PoseArray, "decoys", q)
        n.create_subscription(PathMsg, "plan", self._on_plan, q)
        n.create_subscription(String, STATUS, lambda m: self.status.append(json.loads(m.data)),
                              q)
        if odom:
            pub = n.create_publisher(Odometry, "odom", msgs.SENSOR_PUB_QOS)
            n.create_timer(0.05, lambda: pub.publish(
                msgs.odometry(*START, 0.0, 0.0, 0.0, time.time(), "odom", "base_link")))

    def _on_plan(self, msg: PathMsg) -> None:
        if msg.poses:
            self.plans.append(msg)
        else:
            self.cancels += 1

    def wait_up(self, proc: Proc) -> None:
        n = self.graph.node
        up = self.graph.spin_until(lambda: self.goal.get_subscription_count() > 0
                                   and self.decoys.get_subscription_count() > 0
                                   and n.count_publishers("plan") > 0
                                   and n.count_publishers(STATUS) > 0, 40.0)
        assert up and proc.popen.poll() is None, f"node did not come up: {proc.stderr()}"
        self.graph.spin_for(0.5)  # discovery settles on the node's side too

    def new_plan(self, send: Callable[[], Any], timeout: float = 10.0) -> PathMsg:
        n = len(self.plans)
        send()
        assert self.graph.spin_until(lambda: len(self.plans) > n, timeout), self.status[-3:]
        self.graph.spin_for(0.3)  # a second plan would show here
        assert len(self.plans) == n + 1, "one change, one plan"
        return self.plans[-1]

    def new_status(self, send: Callable[[], Any], timeout: float = 10.0) -> dict[str, Any]:
        n = len(self.status)
        send()
        assert self.graph.spin_until(lambda: len(self.status) > n, timeout), "no status"
        return self.status[-1]

    def send_goal(self, x: float, y: float) -> None:
        self.goal.publish(msgs.pose_stamped(x, y, 0.0, time.time(), "odom"))


def resend_goal_until(graph: Graph, pub: Any, goal: tuple[float, float], done: Callable[[], bool],
                      timeout: float) -> bool:
    """Spin until done(), publishing goal_pose every 2 s meanwhile (a goal sent before a
    subscriber matched is lost)."""
    last = [0.0]

    def check() -> bool:
        if done():
            return True
        if time.monotonic() - last[0] > 2.0:
            pub.publish(msgs.pose_stamped(*goal, 0.0, 0.0, "odom"))
            last[0] = time.monotonic()
        return False

    return graph.spin_until(check, timeout)


def check_plan(msg: PathMsg, roadmap: Any, budget: float = 1.5) -> list[tuple[float, float]]:
    """Starts at the robot, ends exactly at the goal, within budget x the shortest path."""
    pts = plan_points(msg)
    assert msg.header.frame_id == "odom"
    assert math.dist(pts[0], START) <= 0.25 and math.dist(pts[-1], GOAL) < 1e-6
    s, g = dpn.snap(roadmap, *START, 1.0), dpn.snap(roadmap, *GOAL, 1.0)
    optc = float(roadmap.distances(g)[s])
    goal_snap = math.dist(GOAL, tuple(roadmap.pos[g]))  # the exact goal is appended
    assert dpn.path_length(pts) <= budget * optc + goal_snap + 1e-6
    return pts


def bend(pts: list[tuple[float, float]]) -> float:
    """Signed y of the plan point farthest from the straight start-goal line (y = 0)."""
    return max((p[1] for p in pts), key=abs)


def test_node_plans_and_replans_when_a_decoy_moves(graph: Graph, spawn) -> None:
    """Goal -> plan; the decoy moved on the topic, then over the parameter service (as
    `ros2 param set`) -> each time a new plan toward the new decoy's side, from the robot to
    the goal within budget; malformed decoys -> ~/status, nothing else; unsnappable decoys and
    goals -> ~/status and an empty plan (stop)."""
    proc = spawn("deceptive_planner_node", "--ros-args", "-p", f"world:={WORLD}",
                 "-p", f"decoys:=[{DECOY[0]}, {DECOY[1]}]")
    op = Operator(graph)
    op.wait_up(proc)
    roadmap = dpn.build_roadmap(WORLD_PARAMS)

    first = check_plan(op.new_plan(lambda: op.send_goal(*GOAL)), roadmap)
    planned = op.status[-1]
    assert planned["state"] == "planned" and planned["within_budget"], planned
    assert planned["decoys"] == [list(DECOY)] and bend(first) > 0.3  # toward the decoy (+y)

    # the decoy moves to the other side, on the topic
    below = (1.2, -1.5)
    second = check_plan(op.new_plan(lambda: op.decoys.publish(pose_array([below]))), roadmap)
    assert second != first and bend(second) < -0.3, second
    assert op.status[-1]["decoys"] == [list(below)]
    client = AsyncParameterClient(graph.node, "deceptive_planner_node")
    assert client.wait_for_services(timeout_sec=20.0)
    future = client.get_parameters(["decoys"])  # the topic set the parameter
    assert graph.spin_until(future.done, 20.0)
    assert list(future.result().values[0].double_array_value) == list(below)

    # and back up, through the parameter service
    above = (0.0, 1.6)
    third = check_plan(op.new_plan(lambda: set_param(graph, client, "decoys", list(above))),
                       roadmap)
    assert third != second and bend(third) > 0.3, third

    # malformed decoys: refused on both paths, the previous set kept, no plan, no cancel
    n, cancels = len(op.plans), op.cancels
    status = op.new_status(lambda: op.decoys.publish(pose_array([(1.0, float("nan"))])))
    assert status["state"] == "rejected" and status["code"] == "invalid_decoys", status
    answers: list[Any] = []
    status = op.new_status(lambda: answers.append(set_param(graph, client, "decoys",
                                                            [1.0, 2.0, 3.0])))
    assert not answers[0].successful and "pairs" in answers[0].reason
    assert status["code"] == "invalid_decoys" and not status["stopped"], status
    graph.spin_for(0.5)
    assert (len(op.plans), op.cancels) == (n, cancels)

    # a decoy off the roadmap, then an unsnappable goal: a JSON reason each and an empty plan
    # (the local planner stops rather than drive straight to the goal), no route
    status = op.new_status(lambda: op.decoys.publish(pose_array([(30.0, 0.0)])))
    assert (status["state"], status["code"]) == ("rejected", "decoy_off_roadmap"), status
    assert status["stopped"] and graph.spin_until(lambda: op.cancels == cancels + 1, 5.0)
    status = op.new_status(lambda: op.send_goal(40.0, 0.0))
    assert (status["state"], status["code"]) == ("rejected", "goal_off_roadmap"), status
    assert graph.spin_until(lambda: op.cancels == cancels + 2, 5.0)
    graph.spin_for(0.5)
    assert len(op.plans) == n


def test_node_builds_its_roadmap_from_the_map_topic(graph: Graph, spawn) -> None:
    """No world: a goal is refused with `no_map` (an empty plan stops the robot) until a map
    (transient local, published once before the node reads it) arrives; then the goal is
    planned around the map's obstacles."""
    proc = spawn("deceptive_planner_node", "--ros-args",
                 "-p", f"decoys:=[{DECOY[0]}, {DECOY[1]}]", "-p", "policy:=pi_d2")
    op = Operator(graph)
    op.wait_up(proc)
    status = op.new_status(lambda: op.send_goal(*GOAL))
    assert (status["state"], status["code"]) == ("rejected", "no_map"), status
    assert graph.spin_until(lambda: op.cancels == 1, 5.0) and not op.plans  # the robot waits

    world = load_world(WORLD)
    occ, origin = world_occupancy(world)
    map_pub = graph.node.create_publisher(OccupancyGrid, "map", dpn.MAP_QOS)
    msg = op.new_plan(lambda: map_pub.publish(grid_msg(occ, 0.05, origin)), timeout=15.0)
    roadmap = occupancy_roadmap(occ, 0.05, origin, 0.2, 0.25, 0.05)
    pts = check_plan(msg, roadmap)
    inner = np.array(pts[1:-1])  # roadmap nodes (the first is the robot's, the last the goal)
    assert world.clearance(inner[:, 0], inner[:, 1]).min() > 0.2
    assert op.status[-1]["state"] == "planned"


# ---- end to end in the simulator -----------------------------------------------------------


def test_sim_robot_drives_the_deceptive_route(graph: Graph, spawn, tmp_path: Path) -> None:
    """sim_bridge_node + local_planner_node (shipped rl policy) + deceptive_planner_node as
    separate processes (sim_launch.py's layout with deceptive:=true). In an open 6 x 4 m arena
    the straight route runs along y = -1.2; the decoy sits in the far corner above. The robot
    must reach the goal without a collision, passing clearly closer to the decoy than the
    shortest path does and spending more of its route where the observer cannot tell the
    goals apart (deceptive nodes)."""
    assert SHIPPED_RL.is_file(), "models/local_rl.onnx is part of the repository"
    start, goal, decoy = (-2.2, -1.2), (2.2, -1.2), (2.2, 1.4)
    world = World(name="dpp_arena", size=(6.0, 4.0),
                  obstacles=(Cylinder(center=(0.0, 0.9), radius=0.25),),
                  start=(*start, 0.0), goal=goal)
    world_file = tmp_path / "dpp_arena.yaml"
    world.save(world_file)
    spawn("sim_bridge_node", "--ros-args", "-p", f"world:={world_file}",
          "-p", "publish_goal:=false", "-p", "camera_rate:=0.0")
    spawn("local_planner_node", "--ros-args", "-p", "planner:=rl",
          "-p", f"model:={SHIPPED_RL}", "-p", "lookahead_distance:=0.8")
    spawn("deceptive_planner_node", "--ros-args", "-p", f"world:={world_file}",
          "-p", f"decoys:=[{decoy[0]}, {decoy[1]}]")
    n = graph.node
    plans: list[PathMsg] = []
    n.create_subscription(PathMsg, "plan", plans.append, msgs.COMMAND_QOS)
    trail: list[tuple[float, float]] = []
    n.create_subscription(Odometry, "odom", lambda m: trail.append(
        (m.pose.pose.position.x, m.pose.pose.position.y)), msgs.SENSOR_QOS)
    status = graph.latest_json("sim_bridge_node/status")
    diag = graph.latest_json("local_planner_node/diagnostics")
    goal_pub = n.create_publisher(PoseStamped, "goal_pose", msgs.COMMAND_QOS)
    assert graph.spin_until(lambda: goal_pub.get_subscription_count() >= 2 and diag
                            and trail and n.count_publishers("plan") > 0, 60.0), \
        "the three nodes did not come up"
    graph.spin_for(0.5)
    # (re)send the goal until both planners have it
    assert resend_goal_until(graph, goal_pub, goal, lambda: bool(
        plans and diag.get("goal") and np.allclose(diag["goal"], goal)), 20.0), \
        f"no plan taken: {diag}"
    leg = len(trail) - 1  # the drive starts here
    reached = graph.spin_until(lambda: diag.get("goal_reached")
                               and status.get("distance_to_goal", 9) < 0.3, 60.0)
    assert reached, f"goal not reached: status {status}, diagnostics {diag}"
    assert status["collision_steps"] == 0

    roadmap = world_roadmap(world, 0.2, 0.25, 0.05)
    driven = dpn.route_deception(roadmap, trail[leg:], goal, [decoy])
    print(f"driven vs shortest: {driven}")
    assert driven["closest_decoy_m"][0] < driven["closest_decoy_m_shortest"][0] - 0.4, driven
    assert driven["deceptive_fraction"] > driven["deceptive_fraction_shortest"] + 0.1, driven
    assert driven["length_m"] > driven["length_m_shortest"] + 0.3, driven


def test_up_deceptive_runs_the_planner_in_one_process(graph: Graph, spawn, tmp_path: Path
                                                     ) -> None:
    """`nav-policy up --sim --deceptive`: the deceptive planner joins the composed process,
    builds its roadmap from the simulated world, plans the goal and the robot drives it."""
    import yaml

    cfg = yaml.safe_load((REPO / "config" / "nav_policy.yaml").read_text())
    sim = cfg["sim_bridge_node"]["ros__parameters"]
    sim.update(world=str(WORLD), publish_goal=False, camera_rate=0.0)
    cfg["local_planner_node"]["ros__parameters"]["planner"] = "dwa"
    cfg["deceptive_planner_node"]["ros__parameters"].update(world="", decoys=[1.0, 1.5])
    (tmp_path / "up.yaml").write_text(yaml.safe_dump(cfg))
    up = spawn("nav-policy", "up", "--sim", "--deceptive", "--config", str(tmp_path / "up.yaml"))
    n = graph.node
    plans: list[PathMsg] = []
    n.create_subscription(PathMsg, "plan", plans.append, msgs.COMMAND_QOS)
    dpp = graph.latest_json(STATUS.lstrip("/"))
    status = graph.latest_json("sim_bridge_node/status")
    diag = graph.latest_json("local_planner_node/diagnostics")
    goal_pub = n.create_publisher(PoseStamped, "goal_pose", msgs.COMMAND_QOS)
    assert graph.spin_until(lambda: goal_pub.get_subscription_count() >= 2 and diag, 60.0), \
        f"nav-policy up did not come up: {up.stderr()[-2000:]}"
    goal = (1.2, 0.0)
    assert resend_goal_until(graph, goal_pub, goal,
                             lambda: bool(plans and dpp.get("state") == "planned"), 30.0), \
        f"no deceptive plan: {dpp}"
    pts = plan_points(plans[-1])
    assert np.allclose(pts[-1], goal, atol=0.3), pts[-1]
    assert graph.spin_until(lambda: diag.get("goal_reached")
                            and status.get("distance_to_goal", 9) < 0.3, 60.0), (status, diag)
    assert status["collision_steps"] == 0
    assert up.stop(timeout=20.0) == 0
    assert "Traceback" not in up.stderr()
