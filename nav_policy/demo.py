"""`nav-policy demo`: the whole stack end to end on one instruction, with pictures and a bag.

    nav-policy demo [--instruction TEXT] [--world FILE] [--landmarks FILE]
                    [--planner rl|ebm|dwa|mppi] [--composed] [--json FILE|-] [--out DIR]
                    [--deceptive [--decoy NAME ...] [--budget RATIO]]
    nav-policy demo --episode [--planner P] [--tier T] [--seed S]     one planner episode only

Builds the furnished home (sim/worlds/home.yaml, landmarks config/landmarks_demo.yaml), starts
sim_bridge_node, local_planner_node, instruction_node and mission_executor_node as separate
processes over DDS (or, with --composed, in this process, one executor thread per node), sends
the instruction, shows progress on stderr and writes into --out: trajectory.png, metrics.json
and run.mcap (scan, odom, cmd_vel, mission_status, diagnostics; Foxglove Studio opens it).

--deceptive adds deceptive_planner_node: every goal the executor sends on goal_pose is planned
as a deceptive route (dpp policy, decoys = the --decoy landmarks, default DEFAULT_DECOYS in the
shipped home) and published on `plan`, which the local planner follows; the executor's own grid
route is switched off. metrics.json then carries a "deception" block: per driven leg, the
observer's P(true goal) over the first half of the route and the closest approach to each
decoy, beside the same numbers for the shortest path (nav_policy.ros.deceptive_planner_node.
route_deception).
Exit code: 0 when the mission succeeded, 1 when it failed or timed out, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nav_policy.errors import ConfigError
from nav_policy.planners import LEARNED_PLANNERS, PLANNERS

DEFAULT_INSTRUCTION = ("go past the couch, then go to the kitchen door and wait 2 seconds, "
                       "then turn left")
TERMINAL = ("succeeded", "failed", "rejected", "cancelled")
SCAN_SNAPSHOTS = 4  # lidar drawn at this many instants
# decoys of the shipped home (config/landmarks_demo.yaml): a door on the far side of the living
# room and an object near the start, so most goals have one plausible alternative to hide among
DEFAULT_DECOYS = ("bedroom door", "tv")
DECOY_COLOUR = (230, 120, 0)
PLAN_COLOUR = (170, 170, 240)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "demo", help="end to end: sim + ROS nodes + an instruction; PNG, metrics, MCAP",
        description="Run the simulator, local planner, instruction and mission executor nodes "
                    "on one instruction in the furnished home world; write trajectory.png, "
                    "metrics.json and run.mcap into --out. Exit 1 if the mission fails, 130 on Ctrl-C (the "
                    "nodes stopped, the artefacts written).")
    p.add_argument("--instruction", default=DEFAULT_INSTRUCTION, help="what to do (English)")
    p.add_argument("--world", type=Path, default=None,
                   help="world YAML (default: the shipped sim/worlds/home.yaml)")
    p.add_argument("--landmarks", type=Path, default=None,
                   help="landmark YAML (default: the shipped config/landmarks_demo.yaml)")
    p.add_argument("--planner", choices=PLANNERS, default=None,
                   help="local planner (default: dwa, so the demo does not depend on a "
                        "learned model; the shipped rl and ebm policies pass the default "
                        "mission too, docs/DEMO.md)")
    p.add_argument("--model", type=Path, help="ONNX model file for rl/ebm (default: "
                   "models/local_<planner>.onnx)")
    p.add_argument("--deceptive", action="store_true",
                   help="plan every goal as a deceptive route (deceptive_planner_node) that "
                        "hides it among the --decoy landmarks")
    p.add_argument("--decoy", action="append", metavar="NAME",
                   help="--deceptive: a decoy landmark (name or alias; repeat for several); "
                        f"default with the shipped landmarks: {', '.join(DEFAULT_DECOYS)}")
    p.add_argument("--budget", type=float, default=1.5,
                   help="--deceptive: route cost at most this x the shortest (default 1.5)")
    p.add_argument("--composed", action="store_true",
                   help="run the nodes in this process (a thread each) instead of processes")
    p.add_argument("--gui", action="store_true", help="PyBullet window (not in this build)")
    p.add_argument("--headless", action="store_true", help="no GUI (the default)")
    p.add_argument("--timeout", type=float, default=150.0, help="wall-clock limit (s)")
    p.add_argument("--embeddings", action="store_true",
                   help="allow the embedding fallback for paraphrased landmark names (loads "
                        "the sentence model, ~10 s)")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="artefact folder")
    p.add_argument("--json", metavar="FILE", help="write the metrics JSON ('-' = stdout)")
    p.add_argument("--episode", action="store_true",
                   help="only one planner episode in a generated world (no ROS)")
    p.add_argument("--tier", default="medium", help="--episode: world tier")
    p.add_argument("--seed", type=int, default=0, help="--episode: world seed")
    p.set_defaults(func=run_demo)


# ---- choices ---------------------------------------------------------------------------------


# The demo's default local planner. Not the shipped rl policy: the default mission should not
# depend on the learned model of the day (one retrained rl model stalled beside the plant in the
# furnished home; the current one passes after an executor recovery, docs/DEMO.md);
# `--planner rl` runs it.
DEFAULT_PLANNER = "dwa"


def default_planner() -> str:
    return DEFAULT_PLANNER


def resolve_inputs(args: argparse.Namespace) -> tuple[Path, Path, str]:
    """(world, landmarks, planner), checked; ConfigError (exit 2) on a bad one."""
    from nav_policy.instruct import load_landmarks
    from nav_policy.paths import config_path, sim_path
    from nav_policy.sim.world import load_world

    world = args.world or sim_path("worlds/home.yaml")
    landmarks = args.landmarks or config_path("landmarks_demo.yaml")
    load_world(world)
    load_landmarks(landmarks)
    planner = args.planner or default_planner()
    check_model(planner, args.model)
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out} is a file; give a folder for the demo's artefacts")
    return Path(world).resolve(), Path(landmarks).resolve(), planner


def check_model(planner: str, model: Path | None) -> None:
    """The learned planner's model loads here, before any node starts (a bad path or file is
    exit 2 with its reason, not a node that dies with the reason in its log)."""
    from nav_policy.errors import ModelError
    from nav_policy.paths import input_file_problem, model_path

    if planner not in LEARNED_PLANNERS:
        if model is not None:
            raise ConfigError(f"--model applies to the learned planners (rl, ebm), not {planner}")
        return
    path = model if model is not None else model_path(f"local_{planner}.onnx")
    problem = input_file_problem(path)
    if problem:
        raise ModelError(f"--model: {problem} (expected an exported .onnx file)"
                         if model is not None else f"default model: {problem}")
    from nav_policy.planners import make_planner

    make_planner(planner, model=path)


def planner_note(args: argparse.Namespace, planner: str) -> str:
    """'planner P (...)': which planner runs and why, as the start of the demo says it."""
    if args.planner:
        model = f", model {args.model}" if args.model else ""
        return f"planner {planner}{model}"
    return (f"planner {planner} (the default; --planner rl or --planner ebm runs a shipped "
            "learned policy)")


def resolve_decoys(args: argparse.Namespace, landmarks: Path) -> dict[str, tuple[float, float]]:
    """{landmark name: position} of the decoys ({} without --deceptive); ConfigError (exit 2)
    for an unknown name, --decoy without --deceptive, or a budget below 1."""
    from nav_policy.instruct import load_landmarks

    if not args.deceptive:
        if args.decoy:
            raise ConfigError("--decoy needs --deceptive")
        return {}
    if not (math.isfinite(args.budget) and args.budget >= 1.0):
        raise ConfigError(f"--budget must be >= 1 (x the shortest route), got {args.budget}")
    lms = load_landmarks(landmarks)
    names = args.decoy or list(DEFAULT_DECOYS)
    out: dict[str, tuple[float, float]] = {}
    for name in names:
        lm = lms.lookup(name)
        if lm is None:
            hint = "" if args.decoy else " (the default decoys; give --decoy NAME)"
            raise ConfigError(f"decoy {name!r} is not a landmark of {landmarks}{hint}; known: "
                              f"{', '.join(lms.names)}")
        out[lm.name] = (float(lm.position[0]), float(lm.position[1]))
    return out


def node_params(world: Path, landmarks: Path, planner: str, model: Path | None,
                embeddings: bool, decoys: dict[str, tuple[float, float]] | None = None,
                budget: float = 1.5) -> dict[str, dict[str, Any]]:
    """Per-node parameter values of the demo (with decoys: + deceptive_planner_node)."""
    # a short carrot keeps the planner on the executor's grid route around furniture corners
    planner_p: dict[str, Any] = {"planner": planner, "lookahead_distance": 0.8}
    if model is not None:
        planner_p["model"] = str(model.resolve())
    out: dict[str, dict[str, Any]] = {
        "sim_bridge_node": {"world": str(world), "publish_goal": False, "camera_rate": 0.0},
        "local_planner_node": planner_p,
        "instruction_node": {"landmarks": str(landmarks), "use_embeddings": embeddings},
        "mission_executor_node": {"landmarks": str(landmarks), "world": str(world)},
    }
    if decoys:
        from nav_policy.sim.robot import load_robot_spec

        # the deceptive planner owns `plan`: the executor sends goals only
        out["mission_executor_node"]["publish_plan"] = False
        out["deceptive_planner_node"] = {
            "world": str(world), "robot_radius": float(load_robot_spec().radius),
            "budget": float(budget), "snap_tolerance": 1.5,  # objects' centres sit in furniture
            "decoys": [float(v) for xy in decoys.values() for v in xy]}
    return out


# ---- running the nodes -------------------------------------------------------------------------

NODE_COMMANDS = {
    "sim_bridge_node": ["-m", "nav_policy.ros.sim_bridge_node"],
    "local_planner_node": ["-m", "nav_policy.ros.local_planner_node"],
    "instruction_node": ["-m", "nav_policy.ros.instruction_node"],
    "mission_executor_node": ["-m", "nav_policy.ros.mission_executor_node"],
    "deceptive_planner_node": ["-m", "nav_policy.ros.deceptive_planner_node"],
}


def ros_args(values: dict[str, Any]) -> list[str]:
    out = ["--ros-args"]
    for k, v in values.items():
        text = ("true" if v else "false") if isinstance(v, bool) else str(v)  # a list: [a, b]
        out += ["-p", f"{k}:={text}"]
    return out


def ros_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Processes:
    """The nodes as child processes; logs in the output folder."""

    def __init__(self, params: dict[str, dict[str, Any]], log_dir: Path) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        env = ros_environment()
        for name, values in params.items():
            log = (log_dir / f"{name}.log").open("wb")
            argv = [sys.executable, *NODE_COMMANDS[name], *ros_args(values)]
            self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, env=env)

        self.log_dir = log_dir

    def dead(self) -> str | None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                reason = last_log_line(self.log_dir / f"{name}.log")
                return f"{name} exited with code {p.returncode}" + (
                    f": {reason}" if reason else "")
        return None

    def stop(self, grace: float = 8.0) -> None:
        """SIGINT to every node, then SIGKILL to those still up after `grace` seconds in all."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        end = time.monotonic() + grace
        for p in self.procs.values():
            try:
                p.wait(max(end - time.monotonic(), 0.05))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def last_log_line(path: Path, limit: int = 300) -> str:
    """The line of a node's log that says why it stopped: its last error line, else its last
    non-empty line."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    errors = [ln for ln in lines if "Error" in ln or "error" in ln]
    return (errors or lines or [""])[-1][:limit]


class Composed:
    """The nodes in this process, each on its own executor thread (as `nav-policy up`)."""

    def __init__(self, params: dict[str, dict[str, Any]]) -> None:
        from nav_policy.ros.composed import NodeThreads
        from nav_policy.ros.deceptive_planner_node import DeceptivePlannerNode
        from nav_policy.ros.instruction_node import InstructionNode
        from nav_policy.ros.local_planner_node import LocalPlannerNode
        from nav_policy.ros.mission_executor_node import MissionExecutorNode
        from nav_policy.ros.params import overrides
        from nav_policy.ros.sim_bridge_node import SimBridgeNode

        def plain(values: dict[str, Any]) -> list[Any]:
            from rclpy.parameter import Parameter

            return [Parameter(k, value=v) for k, v in values.items()]

        self.nodes: list[Any] = [
            SimBridgeNode(parameter_overrides=overrides("sim_bridge_node",
                                                         params["sim_bridge_node"])),
            LocalPlannerNode(parameter_overrides=overrides("local_planner_node",
                                                           params["local_planner_node"])),
            InstructionNode(parameter_overrides=plain(params["instruction_node"])),
            MissionExecutorNode(parameter_overrides=plain(params["mission_executor_node"])),
        ]
        if "deceptive_planner_node" in params:
            self.nodes.append(DeceptivePlannerNode(parameter_overrides=overrides(
                "deceptive_planner_node", params["deceptive_planner_node"])))
        self.nodes[1].autostart_up()
        self.spinning = NodeThreads(self.nodes)

    def dead(self) -> str | None:
        return self.spinning.dead()

    def stop(self) -> None:
        self.nodes[1].stop_motion()
        self.spinning.shutdown()
        for n in self.nodes:
            n.destroy_node()


# ---- watching the run --------------------------------------------------------------------------


@dataclass
class Record:
    """What the monitor saw (sim time from the odometry stamps)."""

    poses: list[tuple[float, float, float, float]] = field(default_factory=list)  # t, x, y, yaw
    speeds: list[float] = field(default_factory=list)
    scans: list[tuple[float, list[float], float, float]] = field(default_factory=list)
    status: list[dict[str, Any]] = field(default_factory=list)
    sim_status: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    mission: dict[str, Any] | None = None
    goals: list[tuple[float, float, float]] = field(default_factory=list)  # t, x, y (goal_pose)
    plans: list[list[tuple[float, float]]] = field(default_factory=list)  # non-empty `plan`s
    deceptive: list[dict[str, Any]] = field(default_factory=list)  # deceptive planner ~/status


class Monitor:
    """A node in the demo process: records topics (MCAP + memory) and sends the instruction."""

    def __init__(self, context: Any, bag: Any, deceptive: bool = False) -> None:
        from geometry_msgs.msg import PoseStamped, Twist
        from nav_msgs.msg import Odometry, Path
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from sensor_msgs.msg import LaserScan
        from std_msgs.msg import String

        from nav_policy.ros import msgs

        self.rec = Record()
        self.bag = bag
        self.lock = threading.Lock()
        self.node = Node("nav_policy_demo", context=context)
        n = self.node
        self.instruction_pub = n.create_publisher(String, "instruction", msgs.COMMAND_QOS)
        n.create_subscription(Odometry, "odom", self._on_odom, msgs.SENSOR_QOS)
        n.create_subscription(LaserScan, "scan", self._on_scan, msgs.SENSOR_QOS)
        n.create_subscription(Twist, "cmd_vel", self._on_cmd, msgs.COMMAND_QOS)
        n.create_subscription(String, "mission_status", self._on_status, msgs.COMMAND_QOS)
        n.create_subscription(String, "mission", self._on_mission, msgs.COMMAND_QOS)
        n.create_subscription(String, "local_planner_node/diagnostics", self._on_diag, 10)
        n.create_subscription(String, "sim_bridge_node/status", self._on_sim, 10)
        if deceptive:
            n.create_subscription(PoseStamped, "goal_pose", self._on_goal, msgs.COMMAND_QOS)
            n.create_subscription(Path, "plan", self._on_plan, msgs.COMMAND_QOS)
            n.create_subscription(String, "deceptive_planner_node/status", self._on_deceptive,
                                  msgs.COMMAND_QOS)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(n)
        self.t = 0.0

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.02)

    def _on_odom(self, msg: Any) -> None:
        from nav_policy.ros.convert import stamp_to_sec, yaw_from_quaternion

        t = stamp_to_sec(msg.header.stamp)
        p, o = msg.pose.pose.position, msg.pose.pose.orientation
        yaw = yaw_from_quaternion(o.x, o.y, o.z, o.w)
        v, w = msg.twist.twist.linear.x, msg.twist.twist.angular.z
        self.t = t
        self.rec.poses.append((t, p.x, p.y, yaw))
        self.rec.speeds.append(abs(v))
        self.bag.odometry(t, (p.x, p.y, yaw), (v, w))

    def _on_scan(self, msg: Any) -> None:
        from nav_policy.ros.convert import stamp_to_sec

        t = stamp_to_sec(msg.header.stamp)
        ranges = list(msg.ranges)
        self.bag.scan(t, ranges, msg.angle_min, msg.angle_increment, msg.range_min,
                      msg.range_max, msg.header.frame_id or "base_scan", msg.scan_time)
        self.rec.scans.append((t, ranges, msg.angle_min, msg.angle_increment))
        if len(self.rec.scans) > 4000:  # keep memory bounded on long runs
            del self.rec.scans[1:-2000:2]

    def _on_cmd(self, msg: Any) -> None:
        self.bag.cmd_vel(self.t, msg.linear.x, msg.angular.z)

    def _string(self, topic: str, data: str) -> None:
        self.bag.write(topic, "std_msgs/msg/String", {"data": data}, self.t)

    def _on_status(self, msg: Any) -> None:
        self._string("/mission_status", msg.data)
        self.rec.status.append(json.loads(msg.data))

    def _on_mission(self, msg: Any) -> None:
        self._string("/mission", msg.data)
        self.rec.mission = json.loads(msg.data)

    def _on_diag(self, msg: Any) -> None:
        self._string("/local_planner_node/diagnostics", msg.data)
        self.rec.diagnostics = json.loads(msg.data)

    def _on_sim(self, msg: Any) -> None:
        self._string("/sim_bridge_node/status", msg.data)
        self.rec.sim_status = json.loads(msg.data)

    def _on_goal(self, msg: Any) -> None:
        p = msg.pose.position
        self.rec.goals.append((self.t, p.x, p.y))

    def _on_plan(self, msg: Any) -> None:
        from nav_policy.bench.bag import yaw_quaternion

        pts = [(q.pose.position.x, q.pose.position.y) for q in msg.poses]
        if pts:  # an empty plan is the executor's cancel
            self.rec.plans.append(pts)
        stamp = {"sec": msg.header.stamp.sec, "nanosec": msg.header.stamp.nanosec}
        header = {"stamp": stamp, "frame_id": msg.header.frame_id}
        self.bag.write("/plan", "nav_msgs/msg/Path", {"header": header, "poses": [
            {"header": header, "pose": {"position": {"x": x, "y": y, "z": 0.0},
                                        "orientation": yaw_quaternion(0.0)}}
            for x, y in pts]}, self.t)

    def _on_deceptive(self, msg: Any) -> None:
        self._string("/deceptive_planner_node/status", msg.data)
        self.rec.deceptive.append(json.loads(msg.data))

    def last_state(self) -> str | None:
        return self.rec.status[-1].get("state") if self.rec.status else None


class Progress:
    """One live line on stderr (rich), or a line per step change when stderr is not a TTY."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.live: Any = None
        self.last_key: tuple[Any, ...] | None = None
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(console=self.console, refresh_per_second=4, transient=False)
            self.live.start()

    def update(self, ev: dict[str, Any], speed: float) -> None:
        step = f"step {ev.get('step', 0) + 1}/{ev.get('steps', '?')}"
        what = f"{ev.get('action') or ''} {ev.get('target') or ''}".strip()
        dist = ev.get("distance_m")
        unit = "rad" if ev.get("action") == "turn" else "m"
        text = (f"{step} {what:<22} {ev.get('state', ''):<9} to target "
                f"{'-' if dist is None else f'{dist:.2f} {unit}'}  speed {speed:.2f} m/s  "
                f"t {ev.get('elapsed_s', 0):.1f} s")
        if self.live is not None:
            self.live.update(text)
            return
        key = (ev.get("step"), ev.get("state"))
        if key != self.last_key and ev.get("state") != "running" or self.last_key is None \
                or key[0] != self.last_key[0]:
            self.console.print(text, highlight=False)
        self.last_key = key

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()


def wait_for_graph(mon: Monitor, deadline: float, runtime: Any, deceptive: bool = False
                   ) -> None:
    """Until the instruction and executor nodes (and the deceptive planner) are up and
    odometry flows."""
    while time.monotonic() < deadline:
        mon.spin(0.2)
        problem = runtime.dead()
        if problem:
            raise RuntimeError(problem)
        deceptive_up = not deceptive or (
            mon.node.count_publishers("deceptive_planner_node/status") > 0
            and mon.node.count_subscribers("goal_pose") >= 3)  # + planner, this node
        if mon.instruction_pub.get_subscription_count() > 0 and mon.rec.poses and \
                mon.node.count_publishers("goal_pose") > 0 and mon.rec.diagnostics and \
                mon.node.count_subscribers("mission") >= 2 and deceptive_up:
            mon.spin(1.0)  # let discovery settle on the nodes' side too
            return
    raise RuntimeError("the nodes did not come up in time")


def run_mission(mon: Monitor, runtime: Any, instruction: str, deadline: float) -> str:
    """Send the instruction and watch until a terminal mission state; returns that state."""
    from std_msgs.msg import String

    progress = Progress()
    try:
        mon.instruction_pub.publish(String(data=instruction))
        seen, sent_at, resends = 0, time.monotonic(), 0
        while time.monotonic() < deadline:
            mon.spin(0.1)
            # a loaded machine can drop the very first message after discovery: resend while
            # no node has answered (the executor replaces a mission by an identical one)
            if not mon.rec.status and resends < 3 and time.monotonic() - sent_at > 10.0:
                mon.instruction_pub.publish(String(data=instruction))
                sent_at, resends = time.monotonic(), resends + 1
            for ev in mon.rec.status[seen:]:
                progress.update(ev, mon.rec.speeds[-1] if mon.rec.speeds else 0.0)
                if ev.get("state") in TERMINAL and ev.get("state") != "cancelled":
                    return str(ev["state"])
            seen = len(mon.rec.status)
            problem = runtime.dead()
            if problem:
                raise RuntimeError(problem)
        return "timeout"
    finally:
        progress.close()


# ---- results -----------------------------------------------------------------------------------


def step_goals(status: list[dict[str, Any]]) -> list[tuple[int, str, list[float]]]:
    """Distinct (step, label, goal) of the run, in order."""
    out: list[tuple[int, str, list[float]]] = []
    for ev in status:
        g = ev.get("goal")
        if g and (not out or out[-1][2] != g):
            out.append((int(ev["step"]), f"{ev.get('action')} {ev.get('target') or ''}", g))
    return out


def final_target(status: list[dict[str, Any]]) -> list[float] | None:
    goals = step_goals(status)
    return goals[-1][2] if goals else None


def summarize_run(rec: Record, state: str, instruction: str, planner: str, world: Path,
                  wall_s: float) -> dict[str, Any]:
    """The metrics JSON of the run."""
    import numpy as np

    poses = np.array([p[1:3] for p in rec.poses]) if rec.poses else np.zeros((0, 2))
    length = float(np.hypot(*np.diff(poses, axis=0).T).sum()) if len(poses) > 1 else 0.0
    done = [e for e in rec.status if e.get("state") == "step_done"]
    last = rec.status[-1] if rec.status else {}
    target = final_target(rec.status)
    error = (math.dist(poses[-1], target) if target is not None and len(poses) else None)
    steps = len(rec.mission["steps"]) if rec.mission else 0
    return {
        "instruction": instruction, "planner": planner, "world": str(world),
        "mission_state": state, "success": state == "succeeded",
        "reason": last.get("reason", ""), "steps": steps, "steps_done": len(done),
        "plan": rec.mission, "time_s": round(float(last.get("elapsed_s") or 0.0), 2),
        "path_length_m": round(length, 3),
        "collisions": int(rec.sim_status.get("collision_steps", 0)),
        "final_target": target, "final_error_m": None if error is None else round(error, 3),
        "wall_s": round(wall_s, 1),
        "planner_tick_ms_p50": rec.diagnostics.get("tick_ms_p50"),
    }


def deception_legs(rec: Record, min_length: float = 0.5) -> list[tuple[tuple[float, float],
                                                                     list[tuple[float, float]]]]:
    """(goal, driven points) per distinct goal_pose of the run: the odometry from the goal's
    arrival until the next different goal (or the end); legs shorter than min_length dropped."""
    goals: list[tuple[float, float, float]] = []
    for t, x, y in rec.goals:  # a resent goal (executor recovery) continues its leg
        if not goals or math.dist(goals[-1][1:], (x, y)) > 1e-3:
            goals.append((t, x, y))
    legs = []
    for k, (t0, x, y) in enumerate(goals):
        t1 = goals[k + 1][0] if k + 1 < len(goals) else math.inf
        pts = [(p[1], p[2]) for p in rec.poses if t0 <= p[0] < t1]
        if len(pts) > 1 and sum(math.dist(a, b) for a, b in zip(pts, pts[1:])) >= min_length:
            legs.append(((x, y), pts))
    return legs


def deception_report(rec: Record, world: Path, decoys: dict[str, tuple[float, float]],
                     params: dict[str, Any]) -> dict[str, Any]:
    """The "deception" block of metrics.json: per driven leg, how well the goal stayed hidden
    from a roadmap observer (route_deception), beside the shortest path between the same ends."""
    from nav_policy.deception.graphs import GraphError
    from nav_policy.ros.deceptive_planner_node import build_roadmap, route_deception

    p = {"robot_radius": 0.2, "resolution": 0.25, "margin": 0.05, **params}
    graph = build_roadmap(p)
    legs = []
    for goal, pts in deception_legs(rec):
        entry: dict[str, Any] = {"goal": [round(goal[0], 3), round(goal[1], 3)],
                                 "reached": math.dist(pts[-1], goal) <= 0.5}
        try:
            entry.update(route_deception(graph, pts, goal, list(decoys.values())))
        except GraphError as exc:
            entry["error"] = str(exc)
        legs.append(entry)
    scored = [leg for leg in legs if "p_true_goal_prefix" in leg]

    def mean(key: str) -> float | None:
        return round(sum(leg[key] for leg in scored) / len(scored), 4) if scored else None

    planned = [d for d in rec.deceptive if d.get("state") == "planned"]
    return {
        "decoys": {k: list(v) for k, v in decoys.items()},
        "budget": p.get("budget", 1.5), "policy": p.get("policy", "rl"),
        "mode": p.get("mode", "ambiguity"),
        "plans": len(planned),
        "rejections": [{k: d.get(k) for k in ("code", "reason")} for d in rec.deceptive
                       if d.get("state") == "rejected"],
        "planned_cost_ratio": [round(d["cost_ratio"], 3) for d in planned if "cost_ratio" in d],
        "legs": legs,
        "p_true_goal_prefix": mean("p_true_goal_prefix"),
        "p_true_goal_prefix_shortest": mean("p_true_goal_prefix_shortest"),
        "deceptive_fraction": mean("deceptive_fraction"),
        "deceptive_fraction_shortest": mean("deceptive_fraction_shortest"),
        "note": "observer on the planner's roadmap (costdif, beta = 1 / median edge); a leg "
                "runs from its goal_pose until the executor moves on (within its pass or "
                "arrival tolerance of the goal); the prefix is the first half of each leg's "
                "length; lower P(true goal) = better hidden",
    }


LANDMARK_COLOURS = {"area": (120, 120, 200), "door": (200, 140, 40), "object": (60, 60, 60)}
SNAPSHOT_COLOUR = (150, 150, 220)


def picture(rec: Record, world_file: Path, landmarks_file: Path, path: Path,
            v_max: float, radius: float,
            decoys: dict[str, tuple[float, float]] | None = None, title: str = "") -> None:
    """Top-down PNG: world, landmarks labelled, step goals, path by speed, lidar snapshots;
    with a title, axes in metres, a legend of every mark and the speed colour bar."""
    import cv2
    import numpy as np

    from nav_policy.instruct import load_landmarks
    from nav_policy.sim.render import (
        GOAL,
        HITS,
        OBSTACLE,
        ROBOT,
        TopDown,
        legend_marker,
        save_annotated,
    )
    from nav_policy.sim.world import load_world

    view = TopDown(load_world(world_file), 800)
    for lm in load_landmarks(landmarks_file):
        colour = LANDMARK_COLOURS.get(lm.kind, LANDMARK_COLOURS["object"])
        cv2.circle(view.img, view.px(*lm.position), 3, colour, -1)
        cv2.putText(view.img, lm.name, view.px(lm.position[0] + 0.08, lm.position[1] + 0.08),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.38, colour, 1, cv2.LINE_AA)
    for plan in rec.plans:  # deceptive routes as planned, under the driven path
        view.polyline(plan, PLAN_COLOUR, 1)
    for name, (x, y) in (decoys or {}).items():
        cv2.drawMarker(view.img, view.px(x, y), DECOY_COLOUR, cv2.MARKER_TILTED_CROSS, 14, 2)
        cv2.putText(view.img, f"decoy: {name}", view.px(x + 0.1, y - 0.25),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, DECOY_COLOUR, 1, cv2.LINE_AA)
    for k, (_, _label, g) in enumerate(step_goals(rec.status)):
        view.goal((g[0], g[1]), 0.3)
        cv2.putText(view.img, str(k + 1), view.px(g[0] - 0.1, g[1] - 0.3),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, GOAL, 1, cv2.LINE_AA)
    if rec.poses:
        pts = np.array([p[1:3] for p in rec.poses])
        view.speed_path(pts, np.array(rec.speeds), v_max)
        _lidar_snapshots(view, rec, HITS)
        view.robot(rec.poses[-1][1:], radius)
    legend = [legend_marker("wall or furniture", OBSTACLE, "s", size=10),
              *[legend_marker(f"landmark: {kind}", c, size=6)
                for kind, c in LANDMARK_COLOURS.items()],
              legend_marker("mission step goal (number = step; circle 0.3 m)", GOAL, "o",
                            size=13, filled=False),
              legend_marker("driven path (colour = speed)", (200, 60, 60), "", "-"),
              legend_marker(f"robot at {SCAN_SNAPSHOTS} instants", SNAPSHOT_COLOUR, "o", size=12,
                            filled=False),
              legend_marker("lidar returns at those instants", HITS, ".", size=8),
              legend_marker("robot at the end (line = heading)", ROBOT, "o", size=12,
                            filled=False)]
    if decoys:
        legend.append(legend_marker("decoy landmark", DECOY_COLOUR, "x", size=10))
    if rec.plans:
        legend.append(legend_marker("deceptive route as planned", PLAN_COLOUR, "", "-"))
    save_annotated(view, str(path), title or "demo run", legend, v_max=v_max,
                   note=f"world {Path(world_file).name}, landmarks {Path(landmarks_file).name}")


def _lidar_snapshots(view: Any, rec: Record, colour: tuple[int, int, int]) -> None:
    import numpy as np

    if not rec.scans:
        return
    times = np.array([p[0] for p in rec.poses])
    picks = np.linspace(0, len(rec.scans) - 1, SCAN_SNAPSHOTS).round().astype(int)
    for k in sorted(set(picks.tolist())):
        t, ranges, a0, da = rec.scans[k]
        i = int(np.clip(np.searchsorted(times, t), 0, len(times) - 1))
        pose = rec.poses[i][1:]
        r = np.asarray(ranges, dtype=float)
        view.lidar(pose, r[::3], (a0 + da * np.arange(len(r)))[::3])
        view.robot(pose, 0.2, SNAPSHOT_COLOUR)


def print_summary(m: dict[str, Any], out: Path) -> None:
    outcome = "succeeded" if m["success"] else f"{m['mission_state']} ({m['reason']})"
    err = "-" if m["final_error_m"] is None else f"{m['final_error_m']:.2f} m"
    print(f"nav-policy demo: mission {outcome}: {m['steps_done']}/{m['steps']} steps in "
          f"{m['time_s']:.1f} s (sim), path {m['path_length_m']:.2f} m, collisions "
          f"{m['collisions']}, final error {err}, planner {m['planner']}; wall "
          f"{m['wall_s']:.0f} s", file=sys.stderr)
    d = m.get("deception")
    if d is not None:
        def num(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f}"

        print(f"  deception ({', '.join(d['decoys'])}; budget {d['budget']:g}): {d['plans']} "
              f"plans, {len(d['legs'])} legs; observer P(true goal) over the first half "
              f"{num(d['p_true_goal_prefix'])} (shortest path "
              f"{num(d['p_true_goal_prefix_shortest'])}), on deceptive nodes "
              f"{num(d['deceptive_fraction'])} of the length (shortest "
              f"{num(d['deceptive_fraction_shortest'])})", file=sys.stderr)
    print(f"  artefacts: {out / 'trajectory.png'}, {out / 'metrics.json'}, "
          f"{out / 'run.mcap'}", file=sys.stderr)


# ---- entry points ------------------------------------------------------------------------------


def run_demo(args: argparse.Namespace) -> int:
    if args.episode:
        return run_episode_demo(args)
    world, landmarks, planner = resolve_inputs(args)
    decoys = resolve_decoys(args, landmarks)
    try:
        import rclpy  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"ROS 2 (rclpy) is not installed: {exc}; `pip install -e .[ros]`") \
            from exc
    if args.gui:
        print("nav-policy demo: --gui is not supported by sim_bridge_node yet; running headless",
              file=sys.stderr)
    print(f"nav-policy demo: {planner_note(args, planner)}; instruction: {args.instruction!r}",
          file=sys.stderr)
    if decoys:
        print(f"nav-policy demo: deceptive routes, decoys {', '.join(decoys)}, budget "
              f"{args.budget:g}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    params = node_params(world, landmarks, planner, args.model, args.embeddings, decoys,
                         args.budget)
    metrics = execute(args, params, world, landmarks, planner, decoys)
    if metrics["mission_state"] == "interrupted":
        metrics["interrupted"] = True
    text = json.dumps(metrics)
    (args.out / "metrics.json").write_text(text + "\n")
    if args.json == "-":
        print(text)
    elif args.json:
        Path(args.json).write_text(text + "\n")
    print_summary(metrics, args.out)
    if metrics.get("interrupted"):
        print(f"nav-policy demo: interrupted; the nodes are stopped and what ran is in "
              f"{args.out}", file=sys.stderr)
        return 130
    return 0 if metrics["success"] else 1


def execute(args: argparse.Namespace, params: dict[str, dict[str, Any]], world: Path,
            landmarks: Path, planner: str,
            decoys: dict[str, tuple[float, float]] | None = None) -> dict[str, Any]:
    """Start the nodes, run the mission, stop them; the metrics (artefacts written)."""
    import rclpy

    from nav_policy.bench.bag import BagWriter
    from nav_policy.ros import msgs
    from nav_policy.sim.robot import load_robot_spec

    for key, value in ros_environment().items():
        os.environ.setdefault(key, value)
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    msgs.init_ros([])
    context = rclpy.get_default_context()
    runtime: Any = None
    state = "error"
    with BagWriter(args.out / "run.mcap") as bag:
        mon = Monitor(context, bag, deceptive=bool(decoys))
        try:
            runtime = Composed(params) if args.composed else Processes(params, args.out)
            wait_for_graph(mon, min(deadline, t0 + 60.0), runtime, deceptive=bool(decoys))
            state = run_mission(mon, runtime, args.instruction, deadline)
            mon.spin(0.5)  # the last status and odometry
        except RuntimeError as exc:
            state = "error"
            mon.rec.status.append({"state": "error", "reason": str(exc)})
            print(f"nav-policy demo: {exc} (logs in {args.out})", file=sys.stderr)
        except KeyboardInterrupt:
            from nav_policy.interrupts import hold_interrupts

            hold_interrupts("stopping the nodes, writing the picture and metrics")
            state = "interrupted"
        finally:
            if runtime is not None:
                runtime.stop()
            mon.node.destroy_node()
            rclpy.try_shutdown()
    metrics = summarize_run(mon.rec, state, args.instruction, planner, world,
                            time.monotonic() - t0)
    if decoys:
        metrics["deception"] = deception_report(mon.rec, world, decoys,
                                                params["deceptive_planner_node"])
    robot = load_robot_spec()
    outcome = "succeeded" if metrics["success"] else metrics["mission_state"]
    title = (f"{args.instruction!r}\nplanner {planner}: mission {outcome}, "
             f"{metrics['steps_done']}/{metrics['steps']} steps, {metrics['time_s']:.1f} s (sim), "
             f"path {metrics['path_length_m']:.2f} m, collisions {metrics['collisions']}")
    picture(mon.rec, world, landmarks, args.out / "trajectory.png", robot.v_max, robot.radius,
            decoys, title=title)
    metrics["artefacts"] = {k: str(args.out / f) for k, f in (
        ("picture", "trajectory.png"), ("metrics", "metrics.json"), ("bag", "run.mcap"))}
    return metrics


# ---- --episode: one planner episode, no ROS ------------------------------------------------


def run_episode(planner_name: str, tier: str, seed: int, model: Path | None = None
                ) -> dict[str, Any]:
    """One LocalNav-v0 episode with a planner (no ROS); metrics plus drawing data."""
    import gymnasium as gym
    import numpy as np

    from nav_policy.planners import make_planner
    from nav_policy.planners.episode import drive

    env = gym.make("nav_policy/LocalNav-v0", tier=tier)
    base = env.unwrapped
    planner = make_planner(planner_name, robot=base.robot, model=model, seed=seed)
    env.reset(seed=seed, options={"tier": tier, "world_seed": seed})
    t0 = time.perf_counter()
    info = drive(env, planner).info
    traj = np.array(base.trajectory)
    # ground speed per control step (m/s), from the poses the robot actually took
    speeds = np.concatenate([[0.0], np.hypot(*np.diff(traj[:, :2], axis=0).T) / base.sim.dt])
    result = {
        "planner": planner_name, "tier": tier, "seed": seed, "world": base.world.name,
        "success": bool(info["is_success"]), "collision": bool(info["collision"]),
        "time_s": round(base.sim.t, 2),
        "path_length_m": round(float(np.hypot(*np.diff(traj[:, :2], axis=0).T).sum()), 3),
        "shortest_path_m": base.world.shortest_path, "wall_s": round(time.perf_counter() - t0, 2),
    }
    result["_render"] = (base.world, base.maps, traj, np.array(speeds), base.robot,
                         base.sensors())
    env.close()
    return result


def _episode_picture(result: dict[str, Any], path: Path) -> None:
    from nav_policy.sim.render import (
        GOAL,
        HITS,
        MOVING,
        OBSTACLE,
        REF_PATH,
        ROBOT,
        TopDown,
        legend_marker,
        save_annotated,
    )

    world, maps, traj, speeds, robot, frame = result["_render"]
    view = TopDown(world, 600).moving([m.position(result["time_s"]) for m in world.moving])
    view.polyline(maps.path, REF_PATH, 1).goal(world.goal)
    view.speed_path(traj, speeds, robot.v_max)
    view.lidar(traj[-1], frame.ranges, frame.beam_angles())
    view.robot(traj[-1], robot.radius)
    outcome = "reached the goal" if result["success"] else (
        "collided" if result["collision"] else "timed out")
    legend = [legend_marker("obstacle or wall", OBSTACLE, "s", size=10),
              legend_marker("shortest path (A*)", REF_PATH, "", "-"),
              legend_marker("goal (circle: 0.25 m tolerance)", GOAL, "+", size=10),
              legend_marker("driven path (colour = speed)", (200, 60, 60), "", "-"),
              legend_marker("lidar returns at the end", HITS, ".", size=8),
              legend_marker("robot at the end (line = heading)", ROBOT, "o", size=12,
                            filled=False)]
    if world.moving:
        legend.insert(1, legend_marker("moving obstacle at the end", MOVING, "o", size=9))
    save_annotated(view, str(path), f"{result['planner']} on {result['world']} (tier "
                   f"{result['tier']}, seed {result['seed']}): {outcome} in {result['time_s']} s, "
                   f"path {result['path_length_m']} m (shortest {result['shortest_path_m']} m)",
                   legend, v_max=robot.v_max)


def run_episode_demo(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    planner = args.planner or default_planner()
    result = run_episode(planner, args.tier, args.seed, args.model)
    png = args.out / "episode.png"
    _episode_picture(result, png)
    result.pop("_render")
    result["picture"] = str(png)
    text = json.dumps(result)
    if args.json == "-":
        print(text)
    elif args.json:
        Path(args.json).write_text(text + "\n")
    outcome = "reached the goal" if result["success"] else (
        "collided" if result["collision"] else "timed out")
    print(f"{planner} on {result['world']}: {outcome} in {result['time_s']} s, "
          f"path {result['path_length_m']} m (shortest {result['shortest_path_m']} m); "
          f"picture: {png}", file=sys.stderr)
    return 0 if result["success"] else 1
