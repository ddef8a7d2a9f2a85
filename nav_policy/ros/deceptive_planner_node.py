"""deceptive_planner_node: true goal + decoys -> a deceptive route on `plan` (nav_msgs/Path).

Roadmap: a free-space grid (cells of `resolution` m with more than `robot_radius` + `margin`
clearance, 8-connected) built once from the sim world (`world`, via
nav_policy.deception.graphs.world_roadmap), or, when `world` is empty or `use_map` is true,
from the occupancy grid on `map` (nav_msgs/OccupancyGrid, reliable + transient local like a
map server; occupancy_roadmap: cells >= `occupied_threshold` and, with `unknown_is_obstacle`,
unknown cells are obstacles, the same clearance rule as for a world). A new map replaces the
roadmap and re-plans the current goal. A goal with no roadmap yet (no world, no map) is
rejected on ~/status with code `no_map` and planned as soon as a map arrives.

Decoys: the parameter `decoys` (x1, y1, x2, y2, ... as a double array), or the topic `decoys`
(geometry_msgs/PoseArray, positions in the plan frame, orientations ignored): a message
replaces the whole set by setting that parameter, so both paths share one validation (pairs,
finite numbers) and `ros2 param get` always shows the decoys in use. A malformed set is refused
(the previous set stays) with {"state": "rejected", "code": "invalid_decoys"} on ~/status; an
empty PoseArray clears the decoys (the next plan is then rejected with `no_decoys`).

Planning: snaps the robot (odom, sensor QoS), the true goal (goal_pose) and the decoys to their
nearest roadmap nodes, plans with the dpp ONNX policy (or the pi_d2 / shortest baselines)
within `budget` x the shortest roadmap path from where the robot is, and publishes the node
path (plus the exact goal) on `plan` in `frame_id`. Re-plans when a goal arrives, the decoys
change (parameter or topic), `budget` / `mode` / `policy` / `snap_tolerance` change, or a new
map arrives; each re-plan starts from the robot's current position with a fresh budget. Once
the robot is within `goal_tolerance` of the goal the goal is done ({"state": "reached"}) and
nothing re-plans it, so a decoy moved after arrival never sends the robot off again.

A goal, start or decoy that cannot be snapped, a goal the roadmap cannot reach, no decoy
distinct from the goal, or no roadmap yet: no route, but an empty plan, which makes the local
planner cancel the goal_pose it got directly (a robot that cannot hide its goal waits rather
than driving straight to it), a warning in the log and {"state": "rejected", "reason", "code",
"stopped": true} on ~/status (std_msgs/String, JSON). Refused decoys or a refused map change
nothing ("stopped": false). A plan publishes {"state": "planned", "length", "shortest",
"cost_ratio", "ldp_completion", "deceptive_density", ...} there.
There is no TF here: a map, decoys or goal in another frame than `frame_id` are used as they
are, with a warning.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseArray, PoseStamped
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from nav_policy.errors import ConfigError, NavPolicyError
from nav_policy.ros import msgs, params

NODE = "deceptive_planner_node"
REPLAN_KEYS = ("decoys", "budget", "mode", "policy", "snap_tolerance")
# what a map server offers (nav2 map_server, slam_toolbox): the last map to late joiners
MAP_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


class PlanRejected(NavPolicyError):
    """No plan for this request; `code` names the reason for ~/status."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.code = code


# ---- pure helpers (no ROS graph needed) ------------------------------------------------------


def parse_decoys(values: Sequence[float] | None) -> list[tuple[float, float]]:
    """[(x, y), ...] from a flat x1, y1, x2, y2, ... list; ConfigError when malformed."""
    if values is None:
        return []
    flat = list(values)
    if len(flat) % 2:
        raise ConfigError(f"parameter decoys needs pairs x1, y1, x2, y2, ...; got {len(flat)} "
                          "values")
    out = []
    for k in range(0, len(flat), 2):
        x, y = flat[k], flat[k + 1]
        if isinstance(x, bool) or isinstance(y, bool) or not all(
                isinstance(v, (int, float)) for v in (x, y)):
            raise ConfigError(f"parameter decoys: decoy {k // 2} is not numeric: {x!r}, {y!r}")
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ConfigError(f"parameter decoys: decoy {k // 2} is not finite: {x}, {y}")
        out.append((float(x), float(y)))
    return out


def flat_decoys(msg: PoseArray) -> list[float]:
    """x1, y1, x2, y2, ... of a PoseArray's positions (the `decoys` parameter's layout)."""
    return [float(v) for pose in msg.poses for v in (pose.position.x, pose.position.y)]


def grid_from_msg(msg: OccupancyGrid) -> tuple[np.ndarray, float, tuple[float, float, float]]:
    """(occupancy (height, width) int8, resolution, origin (x, y, yaw)) of an OccupancyGrid;
    ConfigError naming the problem when it is malformed."""
    info = msg.info
    w, h, res = int(info.width), int(info.height), float(info.resolution)
    if w <= 0 or h <= 0:
        raise ConfigError(f"map is empty ({w} x {h} cells)")
    if not (math.isfinite(res) and res > 0):
        raise ConfigError(f"map resolution must be > 0, got {res}")
    if len(msg.data) != w * h:
        raise ConfigError(f"map has {len(msg.data)} cells, its info says {w} x {h} = {w * h}")
    o = info.origin
    ox, oy = float(o.position.x), float(o.position.y)
    q = o.orientation
    yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
    if not all(math.isfinite(v) for v in (ox, oy, yaw)):
        raise ConfigError("map origin is not finite")
    return np.asarray(msg.data, dtype=np.int8).reshape(h, w), res, (ox, oy, yaw)


def snap(graph: Any, x: float, y: float, tolerance: float) -> int | None:
    """Internal index of the roadmap node nearest (x, y), or None if farther than tolerance."""
    if not (math.isfinite(x) and math.isfinite(y)) or graph.num_nodes == 0:
        return None
    d = np.hypot(graph.pos[:, 0] - x, graph.pos[:, 1] - y)
    i = int(np.argmin(d))
    return i if d[i] <= tolerance else None


def path_points(graph: Any, path: Sequence[int],
                goal: tuple[float, float] | None = None) -> list[tuple[float, float]]:
    """Node positions along `path`, plus the exact goal when it is off the last node."""
    pts = [(float(graph.pos[i, 0]), float(graph.pos[i, 1])) for i in path]
    if goal is not None and pts and math.hypot(goal[0] - pts[-1][0], goal[1] - pts[-1][1]) > 1e-3:
        pts.append((float(goal[0]), float(goal[1])))
    return pts


def path_msg(points: Sequence[tuple[float, float]], t: float, frame_id: str,
             final_yaw: float | None = None) -> Path:
    """nav_msgs/Path through `points`, each pose facing the next (the last keeps the heading of
    the last segment, or final_yaw)."""
    out = Path()
    msgs.set_stamp(out.header, t, frame_id)
    yaw = 0.0
    for k, (x, y) in enumerate(points):
        if k + 1 < len(points):
            nx, ny = points[k + 1]
            if (nx, ny) != (x, y):
                yaw = math.atan2(ny - y, nx - x)
        elif final_yaw is not None:
            yaw = final_yaw
        out.poses.append(msgs.pose_stamped(x, y, yaw, t, frame_id))
    return out


def path_length(points: Sequence[tuple[float, float]]) -> float:
    return float(sum(math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in pairwise(points)))


def resample(points: Any, step: float) -> np.ndarray:
    """Points every `step` m along a polyline (its first and last point kept)."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(pts) < 2:
        return pts
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
    if cum[-1] <= 0:
        return pts[:1]
    s = np.append(np.arange(0.0, cum[-1], step), cum[-1])
    return np.stack([np.interp(s, cum, pts[:, 0]), np.interp(s, cum, pts[:, 1])], axis=1)


def route_deception(graph: Any, route: Any, goal: tuple[float, float],
                    decoys: Sequence[tuple[float, float]], prefix: float = 0.5,
                    beta_per_edge: float = 1.0) -> dict[str, Any]:
    """How deceptive a driven (or planned) route in metres was, next to the shortest roadmap
    path between the same ends, for an observer on the roadmap (nav_policy.deception: costdif
    observer, beta per median edge; route points snapped to their nearest nodes, sampled every
    2 cm so that both routes are weighed by length).

    Returns, for the route and (suffix `_shortest`) the shortest path: `p_true_goal_prefix`,
    the mean P(true goal) over the first `prefix` of the length (lower = the goal stayed
    hidden longer); `deceptive_fraction`, the share of the length on deceptive nodes;
    `closest_decoy_m`, the closest approach to each decoy; and both lengths. GraphError when
    the goal or a decoy does not connect to the route's start.
    """
    from nav_policy.deception.graphs import nearest_node
    from nav_policy.deception.metrics import default_observer
    from nav_policy.deception.observers import costdif
    from nav_policy.deception.problem import Problem

    pts = np.asarray(route, dtype=float).reshape(-1, 2)
    s = nearest_node(graph, *pts[0])
    g = nearest_node(graph, *goal)
    ds = [k for k in dict.fromkeys(nearest_node(graph, *d) for d in decoys) if k != g]
    problem = Problem.build(graph, s, g, ds, 1.0)
    observer = default_observer(problem, beta_per_edge)
    _, pred = graph.shortest_path_tree(g)
    nodes = [s]
    while nodes[-1] != g:
        nodes.append(int(pred[nodes[-1]]))
    shortest = np.vstack([graph.pos[nodes], [goal]])
    truthful = problem.truthful()

    def measure(line: np.ndarray) -> dict[str, Any]:
        dense = resample(line, 0.02)
        n = len(dense)
        near = np.array([nearest_node(graph, x, y) for x, y in dense])
        p_true = observer.probabilities(costdif(problem.dist, s, near))[0]
        head = max(int(np.ceil(prefix * n)), 1)
        return {"length_m": round(path_length([tuple(p) for p in line]), 3),
                "p_true_goal_prefix": round(float(p_true[:head].mean()), 4),
                "deceptive_fraction": round(float(np.mean(~truthful[near])), 4),
                "closest_decoy_m": [round(float(np.hypot(*(dense - d).T).min()), 3)
                                    for d in np.asarray(decoys, dtype=float).reshape(-1, 2)]}

    ours, ref = measure(pts), measure(shortest)
    return {**ours, **{f"{k}_shortest": v for k, v in ref.items()},
            "prefix": prefix, "observer": {"kind": observer.kind, "beta": observer.beta}}


@dataclass
class Request:
    start: tuple[float, float]
    goal: tuple[float, float]
    decoys: list[tuple[float, float]]
    budget: float
    mode: str
    policy: str
    snap_tolerance: float


def plan_request(graph: Any, req: Request, rl_policy: Any = None) -> tuple[list[int], Any]:
    """(node path, Problem) for `req`; PlanRejected with a code when there is none."""
    from nav_policy.deception.baselines import plan_within_budget, shortest
    from nav_policy.deception.graphs import GraphError
    from nav_policy.deception.problem import Problem

    s = snap(graph, *req.start, req.snap_tolerance)
    if s is None:
        raise PlanRejected(f"start {req.start} is off the roadmap", "start_off_roadmap")
    g = snap(graph, *req.goal, req.snap_tolerance)
    if g is None:
        raise PlanRejected(f"goal {req.goal} is off the roadmap (no node within "
                           f"{req.snap_tolerance} m)", "goal_off_roadmap")
    decoys: list[int] = []
    for d in req.decoys:
        k = snap(graph, *d, req.snap_tolerance)
        if k is None:
            raise PlanRejected(f"decoy {d} is off the roadmap", "decoy_off_roadmap")
        if k != g and k not in decoys:
            decoys.append(k)
    if s == g:
        return [s], None
    if not math.isfinite(float(graph.distances(g)[s])):
        raise PlanRejected(f"goal {req.goal} cannot be reached from {req.start}", "unreachable")
    if not decoys:
        raise PlanRejected("no decoy distinct from the goal", "no_decoys")
    try:
        problem = Problem.build(graph, s, g, decoys, req.budget)
    except GraphError as exc:
        raise PlanRejected(str(exc), "invalid_problem") from exc
    if req.policy == "rl":
        from nav_policy.deception.policy import run_policy

        path = run_policy(problem, rl_policy, req.mode).path
    elif req.policy == "shortest":
        path = shortest(problem)
    else:
        path = plan_within_budget(problem, req.policy).path
    return list(path), problem


# ---- the node -----------------------------------------------------------------------------


def _declare_decoys(node: Node) -> list[tuple[float, float]]:
    from rcl_interfaces.msg import ParameterDescriptor, ParameterType
    from rclpy.parameter import Parameter

    d = ParameterDescriptor(name="decoys", type=ParameterType.PARAMETER_DOUBLE_ARRAY,
                            description="decoy positions x1, y1, x2, y2, ... (m, plan frame); "
                                        "the `decoys` topic (PoseArray) sets it too")
    param = node.declare_parameter("decoys", Parameter.Type.DOUBLE_ARRAY, d)
    return parse_decoys(param.value)


class DeceptivePlannerNode(Node):
    def __init__(self, node_name: str = NODE, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.p = params.declare(self, NODE)
        self.decoys = _declare_decoys(self)
        self.plan_pub = self.create_publisher(Path, "plan", msgs.COMMAND_QOS)
        self.status_pub = self.create_publisher(String, "~/status", msgs.COMMAND_QOS)
        self.add_on_set_parameters_callback(self._on_set)
        self.use_map = bool(self.p["use_map"] or not self.p["world"])
        self.graph: Any = None if self.use_map else build_roadmap(self.p)
        self.rl: dict[str, Any] = {}
        if self.p["policy"] == "rl":
            self._rl_policy(self.p["mode"])
        self.start: tuple[float, float] | None = None
        self.goal: tuple[float, float, float] | None = None
        self.dirty = False
        self.create_subscription(Odometry, "odom", self._on_odom, msgs.SENSOR_QOS)
        self.create_subscription(PoseStamped, "goal_pose", self._on_goal, msgs.COMMAND_QOS)
        self.create_subscription(PoseArray, "decoys", self._on_decoys, msgs.COMMAND_QOS)
        if self.use_map:
            self.create_subscription(OccupancyGrid, "map", self._on_map, MAP_QOS)
        self.create_timer(0.1, self._tick)  # re-plans after changes; also the Ctrl-C wake-up
        source = ("the occupancy grid on map (waiting for it)" if self.use_map
                  else f"{self.graph.num_nodes} nodes from {self.p['world']}")
        self.get_logger().info(f"roadmap: {source}; policy {self.p['policy']}, "
                               f"{len(self.decoys)} decoys")

    def _rl_policy(self, mode: str) -> Any:
        if mode not in self.rl:
            from nav_policy.deception.policy import OnnxPolicy, default_model

            self.rl[mode] = OnnxPolicy(self.p["model"] or default_model(mode))
        return self.rl[mode]

    def _reject(self, reason: str, code: str, level: str = "warning",
                stop: bool = False) -> None:
        """Log and report on ~/status; with stop, also publish an empty plan: the local planner
        cancels its goal instead of driving straight to the goal_pose it got (and revealing
        it), and the robot waits."""
        getattr(self.get_logger(), level)(f"no plan ({code}): {reason}"
                                          + ("; empty plan: the robot stops" if stop else ""))
        if stop:
            self.plan_pub.publish(path_msg([], msgs.now_s(self), self.p["frame_id"]))
        self.status_pub.publish(msgs.json_msg({"state": "rejected", "reason": reason,
                                               "code": code, "stopped": stop}))

    def _on_set(self, changed: Any) -> Any:
        from rcl_interfaces.msg import SetParametersResult

        updates: dict[str, Any] = {}
        for prm in changed:
            if prm.name == "decoys":
                try:
                    updates["decoys"] = parse_decoys(prm.value)
                except ConfigError as exc:
                    self._reject(f"decoys refused, the previous {len(self.decoys)} kept: {exc}",
                                 "invalid_decoys")
                    return SetParametersResult(successful=False, reason=str(exc))
            elif prm.name in self.p:
                updates[prm.name] = prm.value
        scalar = {k: v for k, v in updates.items() if k != "decoys"}
        problem = params.check_values(NODE, {**self.p, **scalar}) if scalar else None
        if problem:  # params.declare's callback refuses the same; nothing is applied
            return SetParametersResult(successful=False, reason=problem)
        if "decoys" in updates:
            self.decoys = updates.pop("decoys")
            self.dirty = True
        for k, v in updates.items():
            self.p[k] = v
            self.dirty = self.dirty or k in REPLAN_KEYS
        return SetParametersResult(successful=True)

    def _on_decoys(self, msg: PoseArray) -> None:
        from rclpy.parameter import Parameter

        self._check_frame(msg.header.frame_id, "decoys")
        # through the parameter: one validation, and `ros2 param get` shows what is in use
        self.set_parameters([Parameter("decoys", Parameter.Type.DOUBLE_ARRAY, flat_decoys(msg))])

    def _on_map(self, msg: OccupancyGrid) -> None:
        from nav_policy.deception.graphs import GraphError, occupancy_roadmap

        self._check_frame(msg.header.frame_id, "map")
        p = self.p
        try:
            occ, res, origin = grid_from_msg(msg)
            graph = occupancy_roadmap(occ, res, origin, p["robot_radius"], p["resolution"],
                                      p["margin"], int(p["occupied_threshold"]),
                                      bool(p["unknown_is_obstacle"]))
        except (ConfigError, GraphError) as exc:
            kept = "the previous roadmap kept" if self.graph is not None else "no roadmap yet"
            self._reject(f"map refused ({kept}): {exc}", "invalid_map", "error")
            return
        self.graph = graph
        self.get_logger().info(f"roadmap from a {occ.shape[1]} x {occ.shape[0]} map at {res:g} m:"
                               f" {graph.num_nodes} nodes")
        self.dirty = self.goal is not None

    def _check_frame(self, frame_id: str, what: str) -> None:
        if frame_id and frame_id != self.p["frame_id"]:
            self.get_logger().warning(f"{what} is in frame {frame_id!r}, plans in "
                                      f"{self.p['frame_id']!r}; no TF here: used as is",
                                      throttle_duration_sec=10.0)

    def _on_odom(self, msg: Odometry) -> None:
        self.start = (msg.pose.pose.position.x, msg.pose.pose.position.y)
        if self.goal is not None and not self.dirty and \
                math.dist(self.start, self.goal[:2]) <= self.p["goal_tolerance"]:
            self.get_logger().info("goal reached; no more re-plans for it")
            self.status_pub.publish(msgs.json_msg({"state": "reached",
                                                   "goal": list(self.goal[:2])}))
            self.goal = None

    def _on_goal(self, msg: PoseStamped) -> None:
        q = msg.pose.orientation
        yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
        x, y = msg.pose.position.x, msg.pose.position.y
        self._check_frame(msg.header.frame_id, "goal_pose")
        if not all(math.isfinite(v) for v in (x, y, yaw)):
            self._reject(f"goal ({x}, {y}, yaw {yaw}) is not finite", "invalid_goal")
            return
        self.goal = (x, y, yaw)
        self.dirty = True
        if self.graph is None:
            self._reject("no roadmap: `world` is empty and no map has arrived on `map` yet "
                         "(the goal is planned when one does)", "no_map", stop=True)
        elif self.start is None:
            self.get_logger().info("goal received; waiting for odom to plan")

    def _tick(self) -> None:
        if self.dirty and self.goal is not None and self.start is not None \
                and self.graph is not None:
            self.dirty = False
            self.replan()

    def replan(self) -> None:
        assert self.goal is not None and self.start is not None and self.graph is not None
        p = self.p
        req = Request(self.start, self.goal[:2], list(self.decoys), float(p["budget"]),
                      p["mode"], p["policy"], float(p["snap_tolerance"]))
        try:
            rl = self._rl_policy(p["mode"]) if p["policy"] == "rl" else None
            path, problem = plan_request(self.graph, req, rl)
        except PlanRejected as exc:
            self._reject(str(exc), exc.code, stop=True)
            return
        except NavPolicyError as exc:
            self._reject(str(exc), "error", "error", stop=True)
            return
        pts = path_points(self.graph, path, self.goal[:2])
        self.plan_pub.publish(path_msg(pts, msgs.now_s(self), p["frame_id"], self.goal[2]))
        self.status_pub.publish(msgs.json_msg(plan_status(self.graph, path, problem, pts, req)))
        optc = problem.optc if problem is not None else 0.0
        self.get_logger().info(f"plan: {len(path)} nodes, {path_length(pts):.2f} m (shortest "
                               f"{optc:.2f} m)")


def plan_status(graph: Any, path: list[int], problem: Any, pts: Sequence[tuple[float, float]],
                req: Request) -> dict[str, Any]:
    """The ~/status JSON of a published plan, with the deception metrics of the node path."""
    out: dict[str, Any] = {"state": "planned", "nodes": len(path), "length": path_length(pts),
                           "policy": req.policy, "mode": req.mode, "budget": req.budget,
                           "start": list(pts[0]), "goal": list(req.goal),
                           "decoys": [list(d) for d in req.decoys]}
    if problem is None:  # already at the goal's node
        return {**out, "shortest": 0.0}
    from nav_policy.deception.metrics import evaluate_path

    m = evaluate_path(problem, path)
    out.update(shortest=problem.optc, cost_ratio=m["cost_ratio"],
               within_budget=m["within_budget"], ldp_completion=m["ldp_completion"],
               deceptive_density=m["deceptive_density"])
    return out


def build_roadmap(p: dict[str, Any]) -> Any:
    """The roadmap of the world file in p["world"] (ConfigError without one)."""
    from nav_policy.deception.graphs import GraphError, world_roadmap
    from nav_policy.sim.world import load_world

    if not p["world"]:
        raise ConfigError("no world file to build the roadmap from")
    try:
        return world_roadmap(load_world(p["world"]), p["robot_radius"], p["resolution"],
                             p["margin"])
    except GraphError as exc:
        raise ConfigError(f"roadmap of {p['world']}: {exc}") from exc


def main(args: list[str] | None = None) -> int:
    def factory() -> DeceptivePlannerNode:
        try:
            return DeceptivePlannerNode()
        except (OSError, ValueError) as exc:
            raise ConfigError(str(exc)) from exc

    return msgs.run_single(NODE, factory, args if args is not None else sys.argv)


if __name__ == "__main__":
    sys.exit(main())
