"""deceptive_planner_node: true goal + decoys -> a deceptive route on `plan` (nav_msgs/Path).

Builds a free-space roadmap of the sim world (nav_policy.deception.graphs.world_roadmap) once,
snaps the robot (odom, sensor QoS), the true goal (goal_pose) and the decoys (parameter
`decoys`: x1, y1, x2, y2, ... as a double array) to their nearest roadmap nodes, plans with the
dpp ONNX policy (or the pi_d2 / shortest baselines) within `budget` x the shortest roadmap path
and publishes the node path on `plan` (frame `frame_id`). Re-plans when a goal arrives or
`decoys` / `budget` / `mode` / `policy` change. A goal or decoy that cannot be snapped, or a goal
the roadmap cannot reach, publishes no plan: a warning in the log and a JSON reason on
~/status (std_msgs/String: {"state": "rejected", "reason", "code"}); a plan publishes
{"state": "planned", ...} there.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path
from rclpy.node import Node
from std_msgs.msg import String

from nav_policy.errors import ConfigError, NavPolicyError
from nav_policy.ros import msgs, params

NODE = "deceptive_planner_node"
REPLAN_KEYS = ("decoys", "budget", "mode", "policy", "snap_tolerance")


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
                            description="decoy positions x1, y1, x2, y2, ... (m, plan frame)")
    param = node.declare_parameter("decoys", Parameter.Type.DOUBLE_ARRAY, d)
    return parse_decoys(param.value)


class DeceptivePlannerNode(Node):
    def __init__(self, node_name: str = NODE, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.p = params.declare(self, NODE)
        self.decoys = _declare_decoys(self)
        self.add_on_set_parameters_callback(self._on_set)
        self.graph = build_roadmap(self.p)
        self.rl: dict[str, Any] = {}
        if self.p["policy"] == "rl":
            self._rl_policy(self.p["mode"])
        self.start: tuple[float, float] | None = None
        self.goal: tuple[float, float, float] | None = None
        self.dirty = False
        self.plan_pub = self.create_publisher(Path, "plan", msgs.COMMAND_QOS)
        self.status_pub = self.create_publisher(String, "~/status", msgs.COMMAND_QOS)
        self.create_subscription(Odometry, "odom", self._on_odom, msgs.SENSOR_QOS)
        self.create_subscription(PoseStamped, "goal_pose", self._on_goal, msgs.COMMAND_QOS)
        self.create_timer(0.1, self._tick)  # re-plans after changes; also the Ctrl-C wake-up
        self.get_logger().info(f"roadmap of {self.graph.num_nodes} nodes, policy "
                               f"{self.p['policy']}, {len(self.decoys)} decoys")

    def _rl_policy(self, mode: str) -> Any:
        if mode not in self.rl:
            from nav_policy.deception.policy import OnnxPolicy, default_model

            self.rl[mode] = OnnxPolicy(self.p["model"] or default_model(mode))
        return self.rl[mode]

    def _on_set(self, changed: Any) -> Any:
        from rcl_interfaces.msg import SetParametersResult

        updates: dict[str, Any] = {}
        for prm in changed:
            if prm.name == "decoys":
                try:
                    updates["decoys"] = parse_decoys(prm.value)
                except ConfigError as exc:
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

    def _on_odom(self, msg: Odometry) -> None:
        self.start = (msg.pose.pose.position.x, msg.pose.pose.position.y)

    def _on_goal(self, msg: PoseStamped) -> None:
        q = msg.pose.orientation
        yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
        self.goal = (msg.pose.position.x, msg.pose.position.y, yaw)
        self.dirty = True
        if self.start is None:
            self.get_logger().info("goal received; waiting for odom to plan")

    def _tick(self) -> None:
        if self.dirty and self.goal is not None and self.start is not None:
            self.dirty = False
            self.replan()

    def replan(self) -> None:
        assert self.goal is not None and self.start is not None
        p = self.p
        req = Request(self.start, self.goal[:2], list(self.decoys), float(p["budget"]),
                      p["mode"], p["policy"], float(p["snap_tolerance"]))
        try:
            rl = self._rl_policy(p["mode"]) if p["policy"] == "rl" else None
            path, problem = plan_request(self.graph, req, rl)
        except PlanRejected as exc:
            self.get_logger().warning(f"no plan ({exc.code}): {exc}")
            self.status_pub.publish(msgs.json_msg({"state": "rejected", "reason": str(exc),
                                                   "code": exc.code}))
            return
        except NavPolicyError as exc:
            self.get_logger().error(f"no plan (error): {exc}")
            self.status_pub.publish(msgs.json_msg({"state": "rejected", "reason": str(exc),
                                                   "code": "error"}))
            return
        pts = path_points(self.graph, path, self.goal[:2])
        self.plan_pub.publish(path_msg(pts, msgs.now_s(self), p["frame_id"], self.goal[2]))
        optc = problem.optc if problem is not None else 0.0
        cost = path_length(pts)
        self.status_pub.publish(msgs.json_msg({"state": "planned", "nodes": len(path),
                                               "length": cost, "shortest": optc,
                                               "policy": p["policy"], "mode": p["mode"],
                                               "decoys": len(self.decoys)}))
        self.get_logger().info(f"plan: {len(path)} nodes, {cost:.2f} m (shortest {optc:.2f} m)")


def build_roadmap(p: dict[str, Any]) -> Any:
    from nav_policy.deception.graphs import world_roadmap

    if p["world"]:
        from nav_policy.sim.world import load_world

        world = load_world(p["world"])
    else:
        from nav_policy.sim.generate import generate_world

        world, _ = generate_world("easy", 0)
    return world_roadmap(world, p["robot_radius"], p["resolution"], p["margin"])


def main(args: list[str] | None = None) -> int:
    def factory() -> DeceptivePlannerNode:
        try:
            return DeceptivePlannerNode()
        except (OSError, ValueError) as exc:
            raise ConfigError(str(exc)) from exc

    return msgs.run_single(NODE, factory, args if args is not None else sys.argv)


if __name__ == "__main__":
    sys.exit(main())
