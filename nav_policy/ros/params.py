"""Parameter specs of the nav_policy nodes: one table per node, checked without ROS 2.

Each ParamSpec carries the default, a description, a range or a set of choices, and whether
it may change at runtime. The nodes declare them with ParameterDescriptor (declare()), the
same specs check values at start-up and in the on-set-parameters callback, and
config/nav_policy.yaml holds exactly these keys under `node_name: ros__parameters:`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nav_policy.errors import ConfigError
from nav_policy.planners import PLANNERS
from nav_policy.sim.generate import KNOWN_TIERS

Value = bool | int | float | str

PLANNER_CHOICES = PLANNERS
TIER_CHOICES = KNOWN_TIERS


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its type is the type of `default`."""

    name: str
    default: Value
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False

    @property
    def kind(self) -> type:
        return type(self.default)

    def coerce(self, value: Any) -> Any:
        """YAML writes 20 for 20.0: an int becomes a float for a float parameter."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    def check(self, value: Any) -> str | None:
        """Why `value` is not acceptable, or None."""
        value = self.coerce(value)
        kind: Any = self.kind
        if type(value) is not kind:
            return (f"parameter {self.name} must be {self.kind.__name__}, "
                    f"got {type(value).__name__} {value!r}")
        if self.kind is float and not math.isfinite(float(value)):
            return f"parameter {self.name} must be finite, got {value}"
        number = float(value) if self.kind in (int, float) else 0.0
        if (self.low is not None and number < self.low
                or self.high is not None and number > self.high):
            return f"parameter {self.name}={value} is out of range [{self.low}, {self.high}]"
        if self.choices and value not in self.choices:
            return f"parameter {self.name}={value!r} must be one of {', '.join(self.choices)}"
        return None


def _f(name: str, default: float, low: float, high: float, description: str,
       read_only: bool = False) -> ParamSpec:
    return ParamSpec(name, float(default), description, float(low), float(high),
                     read_only=read_only)


LOCAL_PLANNER: tuple[ParamSpec, ...] = (
    ParamSpec("planner", "rl", "local planner: a learned ONNX policy (rl, ebm) or a classical "
              "baseline (dwa, mppi)", choices=PLANNER_CHOICES, read_only=True),
    ParamSpec("model", "", "ONNX model file for planner rl or ebm; empty = the shipped "
              "models/local_<planner>.onnx", read_only=True),
    ParamSpec("robot_config", "", "robot profile name (config/robots/NAME.yaml: diffbot, "
              "jackal, ...) or a robot YAML path (limits, lidar and its mount, footprint); empty "
              "= the shipped config/robot.yaml", read_only=True),
    ParamSpec("energy_gate", True, "planner ebm: where the model's energy is above its "
              "ebm.energy_high (metadata), cap v to energy_speed_factor x v_max", read_only=True),
    _f("energy_speed_factor", 0.5, 0.0, 1.0, "planner ebm: the speed cap at high energy, as a "
       "fraction of v_max", read_only=True),
    ParamSpec("autostart", True, "configure and activate at start-up; false = wait for a "
              "lifecycle manager", read_only=True),
    _f("control_rate", 20.0, 1.0, 50.0, "control timer rate (Hz): safety layer and watchdog run "
       "on every tick; a learned policy runs at its model's control_hz", read_only=True),
    ParamSpec("control_trigger", "timer", "timer: tick at control_rate; scan: tick on every "
              "scan (the timer still enforces the watchdog)", choices=("timer", "scan"),
              read_only=True),
    ParamSpec("cmd_vel_stamped", False, "publish geometry_msgs/TwistStamped instead of Twist",
              read_only=True),
    ParamSpec("base_frame", "base_link", "frame_id of TwistStamped commands", read_only=True),
    _f("watchdog_timeout", 0.25, 0.02, 5.0, "scan or odom older than this (s) -> zero velocity"),
    _f("goal_tolerance", 0.25, 0.01, 5.0, "goal reached within this distance (m)"),
    _f("lookahead_distance", 1.5, 0.2, 10.0, "carrot distance (m) along a received plan"),
    _f("footprint_radius", 0.0, 0.0, 2.0, "robot radius (m) for the safety zones; 0 = the "
       "robot profile's footprint (circle or rectangle)"),
    _f("stop_margin", 0.10, 0.0, 2.0, "stop zone: obstacle within radius + this (m) in the "
       "direction of motion -> zero linear velocity"),
    _f("slow_margin", 0.25, 0.0, 3.0, "slow zone: obstacle within radius + this (m) in the "
       "direction of motion -> linear velocity x slow_factor"),
    _f("lateral_margin", 0.05, 0.0, 1.0, "half-width of the zones beyond the radius (m)"),
    _f("slow_factor", 0.5, 0.0, 1.0, "linear velocity scale inside the slow zone"),
    ParamSpec("collision_model", "approach", "safety layer: approach (the footprint swept along "
              "the commanded arc; slows to keep time_before_collision, stops on contact) or "
              "zones (stop/slow boxes ahead)", choices=("approach", "zones")),
    _f("time_before_collision", 1.0, 0.1, 10.0, "collision_model approach: horizon of the swept "
       "arc (s); a collision sooner scales (v, w) by its time / this"),
    _f("approach_margin", 0.02, 0.0, 0.5, "collision_model approach: margin added to the "
       "footprint radius (m)"),
    _f("max_vel_x", 0.5, 0.0, 5.0, "linear velocity limit (m/s)"),
    _f("min_vel_x", 0.0, -5.0, 0.0, "lowest linear velocity (m/s); negative allows reversing"),
    _f("max_vel_theta", 2.0, 0.0, 10.0, "angular velocity limit (rad/s)"),
    _f("acc_lim_x", 2.5, 0.01, 20.0, "linear acceleration limit (m/s^2)"),
    _f("acc_lim_theta", 3.2, 0.01, 50.0, "angular acceleration limit (rad/s^2)"),
    _f("max_invalid_fraction", 0.5, 0.0, 1.0, "scans with more NaN/-inf/below-range_min beams "
       "than this fraction -> zero velocity"),
    _f("diagnostics_period", 1.0, 0.1, 60.0, "~/diagnostics publishing period (s)"),
    ParamSpec("publish_timing", False, "publish ~/timing per tick (scan stamp, evaluated, "
              "compute s) for latency_bench", read_only=True),
    # the follow_path action (nav2_msgs/action/FollowPath), as Nav2's controller_server
    ParamSpec("controller_id", "FollowPath", "follow_path: the controller name goals may ask "
              "for (an empty controller_id also takes it); another -> INVALID_CONTROLLER",
              read_only=True),
    ParamSpec("goal_checker_id", "general_goal_checker", "follow_path: the goal checker name "
              "goals may ask for (or empty); it checks xy within goal_tolerance",
              read_only=True),
    ParamSpec("progress_checker_id", "progress_checker", "follow_path: the progress checker "
              "name goals may ask for (or empty)", read_only=True),
    _f("transform_timeout", 0.5, 0.0, 30.0, "a goal or path in another frame than odometry's "
       "waits this long (s) for its transform, then fails (follow_path: TF_ERROR)"),
    _f("failure_tolerance", 0.5, -1.0, 600.0, "follow_path: the controller may stop (safety "
       "stop, invalid or stale scan, planner stop) this long (s) before the goal aborts with "
       "NO_VALID_CONTROL; -1 = never"),
    _f("sensor_data_timeout", 10.0, 0.1, 600.0, "follow_path: scan or odometry missing or "
       "stale this long (s) -> CONTROLLER_TIMED_OUT (Nav2's costmap_update_timeout)"),
    _f("required_movement_radius", 0.5, 0.0, 10.0, "follow_path progress checker: move this "
       "far (m) ..."),
    _f("movement_time_allowance", 10.0, 0.0, 3600.0, "... within this long (s), else the goal "
       "aborts with FAILED_TO_MAKE_PROGRESS; 0 = no progress check"),
)

SIM_BRIDGE: tuple[ParamSpec, ...] = (
    ParamSpec("world", "", "world YAML; empty = generate from tier and seed", read_only=True),
    ParamSpec("tier", "easy", "generated world tier (when world is empty)",
              choices=TIER_CHOICES, read_only=True),
    ParamSpec("seed", 0, "generated world seed (when world is empty)", 0, 2**31 - 1,
              read_only=True),
    ParamSpec("robot_config", "", "robot YAML; empty = the shipped config/robot.yaml",
              read_only=True),
    _f("rate", 20.0, 1.0, 100.0, "simulation step and scan/odom/imu/clock rate (Hz)",
       read_only=True),
    _f("camera_rate", 10.0, 0.0, 60.0, "depth image rate (Hz); 0 = no depth camera",
       read_only=True),
    ParamSpec("backend", "pybullet", "simulator backend; mujoco is faster and has no depth "
              "camera (needs camera_rate 0)", choices=("pybullet", "mujoco"), read_only=True),
    ParamSpec("cmd_vel_stamped", False, "subscribe geometry_msgs/TwistStamped on cmd_vel",
              read_only=True),
    _f("cmd_vel_timeout", 0.5, 0.05, 10.0, "no cmd_vel for this long (s, wall) -> stop"),
    ParamSpec("publish_clock", True, "publish /clock (sim time) for use_sim_time nodes",
              read_only=True),
    ParamSpec("publish_goal", True, "publish the world's goal on goal_pose at start, after a "
              "reset and to each new subscriber"),
    ParamSpec("odom_frame", "odom", "odometry frame id", read_only=True),
    ParamSpec("base_frame", "base_link", "robot frame id", read_only=True),
    ParamSpec("scan_frame", "base_scan", "lidar frame id", read_only=True),
    ParamSpec("camera_frame", "camera_depth_optical_frame", "depth camera optical frame id",
              read_only=True),
    ParamSpec("map_frame", "map", "global frame of the map -> odom transform", read_only=True),
    ParamSpec("publish_map_odom", True, "publish map -> odom on /tf (no localiser in the "
              "simulation); false when a localiser publishes it", read_only=True),
    _f("map_odom_x", 0.0, -1e4, 1e4, "map -> odom translation x (m)", read_only=True),
    _f("map_odom_y", 0.0, -1e4, 1e4, "map -> odom translation y (m)", read_only=True),
    _f("map_odom_yaw", 0.0, -math.pi, math.pi, "map -> odom rotation (rad)", read_only=True),
)

# planner_server_node (compute_path_to_pose) and navigator_node (navigate_to_pose)
PLANNER_SERVER: tuple[ParamSpec, ...] = (
    ParamSpec("world", "", "world YAML the global path is planned on; empty = the "
              "OccupancyGrid on `map` (reliable, transient local)", read_only=True),
    ParamSpec("world_frame", "odom", "frame of the world file's coordinates (the simulator's "
              "odometry frame)", read_only=True),
    ParamSpec("robot_config", "", "robot YAML (radius); empty = the shipped config/robot.yaml",
              read_only=True),
    ParamSpec("robot_base_frame", "base_link", "robot frame (the path's start)",
              read_only=True),
    _f("inflation_margin", 0.1, 0.0, 2.0, "the path keeps robot radius + this (m) from "
       "obstacles where it can (else the bare radius)"),
    _f("resolution", 0.05, 0.01, 1.0, "planning grid cell (m) for a world file",
       read_only=True),
    ParamSpec("occupied_threshold", 50, "map cells with this occupancy (0-100) or more are "
              "obstacles", 1, 100),
    ParamSpec("unknown_is_obstacle", True, "unknown map cells (-1) are obstacles"),
    _f("transform_timeout", 1.0, 0.0, 30.0, "wait this long (s) for a goal's or the robot's "
       "transform, then fail with TF_ERROR"),
    ParamSpec("planner_id", "GridBased", "the planner name goals may ask for (or empty)",
              read_only=True),
    ParamSpec("autostart", True, "configure and activate at start-up; false = wait for a "
              "lifecycle manager", read_only=True),
)
NAVIGATOR: tuple[ParamSpec, ...] = (
    *PLANNER_SERVER,
    ParamSpec("global_frame", "map", "frame of the feedback's current_pose", read_only=True),
    ParamSpec("follow_path_action", "follow_path", "the FollowPath action server to drive "
              "with", read_only=True),
    _f("server_timeout", 10.0, 0.1, 300.0, "wait this long (s) for the FollowPath server"),
    ParamSpec("controller_id", "", "controller_id of the FollowPath goals", read_only=True),
    ParamSpec("goal_checker_id", "", "goal_checker_id of the FollowPath goals",
              read_only=True),
)

SENSOR_FUSION: tuple[ParamSpec, ...] = (
    ParamSpec("use_depth", True, "merge the depth camera's virtual scan into scan_fused"),
    _f("depth_min_height", 0.03, -1.0, 3.0, "lowest point (m above base_link) kept from depth; "
       "below is floor"),
    _f("depth_max_height", 0.6, 0.0, 5.0, "highest point (m above base_link) kept from depth"),
    _f("camera_x", 0.15, -5.0, 5.0, "camera position in base_link (m), looking along +x, level",
       read_only=True),
    _f("camera_y", 0.0, -5.0, 5.0, "camera position in base_link (m)", read_only=True),
    _f("camera_z", 0.12, 0.0, 5.0, "camera height in base_link (m)", read_only=True),
    ParamSpec("depth_stride", 1, "use every n-th depth pixel in both axes", 1, 16),
    _f("max_time_offset", 0.15, 0.001, 5.0, "depth (or IMU) stamped more than this (s) away "
       "from the scan (or odom) -> lidar (or wheel odometry) only, flagged"),
    _f("alpha", 0.98, 0.0, 1.0, "complementary filter weight of the IMU-integrated heading"),
    ParamSpec("odom_frame", "odom", "frame id of odom_fused", read_only=True),
    ParamSpec("base_frame", "base_link", "child frame id of odom_fused", read_only=True),
    _f("diagnostics_period", 1.0, 0.1, 60.0, "~/diagnostics publishing period (s)"),
)


# instruction_node and mission_executor_node
INSTRUCTION: tuple[ParamSpec, ...] = (
    ParamSpec("landmarks", "", "landmark YAML; empty = the shipped config/landmarks_demo.yaml",
              read_only=True),
    ParamSpec("backend", "embedded", "embedded (regex parser, no server) or vlm (an "
              "OpenAI-compatible chat-completions server)", choices=("embedded", "vlm"),
              read_only=True),
    ParamSpec("use_embeddings", True, "ground paraphrases with the shipped sentence-embedding "
              "model (loaded on first need); false = exact names and aliases only",
              read_only=True),
    ParamSpec("vlm_url", "http://127.0.0.1:8000/v1", "VLM server base URL", read_only=True),
    ParamSpec("vlm_model", "default", "VLM model name", read_only=True),
    ParamSpec("vlm_api_key_env", "NAV_POLICY_VLM_API_KEY", "environment variable holding the "
              "VLM API key (never a parameter)", read_only=True),
    _f("vlm_timeout", 10.0, 0.1, 300.0, "VLM request timeout (s)", read_only=True),
    ParamSpec("vlm_fallback", "embedded", "on a VLM failure: embedded parser or reject",
              choices=("embedded", "reject"), read_only=True),
    ParamSpec("use_image", True, "send the latest camera image (image topic) to the VLM",
              read_only=True),
    _f("image_max_age", 2.0, 0.0, 60.0, "an image older than this (s) is not sent"),
)

EXECUTOR: tuple[ParamSpec, ...] = (
    ParamSpec("landmarks", "", "landmark YAML; empty = the shipped config/landmarks_demo.yaml",
              read_only=True),
    ParamSpec("world", "", "world YAML for free-space checks and grid routes; empty = none "
              "(goals straight from the landmark geometry)", read_only=True),
    ParamSpec("robot_config", "", "robot YAML (radius); empty = the shipped config/robot.yaml",
              read_only=True),
    ParamSpec("publish_plan", True, "with a world: also publish the grid route on plan",
              read_only=True),
    ParamSpec("frame_id", "odom", "frame of goal_pose and plan (the landmarks' frame)",
              read_only=True),
    _f("rate", 10.0, 1.0, 50.0, "executor tick rate (Hz)", read_only=True),
    _f("status_period", 0.5, 0.05, 10.0, "mission_status progress period (s) while running"),
    _f("arrival_tolerance", 0.3, 0.05, 3.0, "a step's final point counts as reached within "
       "this (m); keep it >= the planner's goal_tolerance"),
    _f("pass_tolerance", 0.5, 0.05, 3.0, "intermediate points (go_past, door approach) count "
       "as passed within this (m)"),
    _f("heading_tolerance_deg", 4.0, 0.5, 45.0, "turn steps end within this (deg)"),
    _f("step_timeout", 120.0, 1.0, 3600.0, "a step not done after this (s) fails the mission"),
    _f("stall_timeout", 20.0, 1.0, 600.0, "no progress toward the current point for this long "
       "(s): unreachable, the mission fails"),
    _f("stall_progress", 0.15, 0.01, 2.0, "progress (m) that resets the stall timer"),
    _f("turn_speed", 1.0, 0.05, 5.0, "in-place rotation rate limit (rad/s)"),
    _f("standoff", 0.6, 0.1, 3.0, "go_to an object: nearest approach to its centre (m)"),
    _f("clearance_margin", 0.15, 0.0, 1.0, "goal points keep robot radius + this (m) from "
       "obstacles"),
    _f("pass_beyond", 1.0, 0.0, 5.0, "go_past: distance beyond the abreast point (m)"),
    _f("door_depth", 0.7, 0.2, 3.0, "go_through: before/after points from the door (m)"),
    _f("area_radius", 1.5, 0.2, 10.0, "exit: area extent when the map does not close it (m)"),
)

# deceptive_planner_node; its `decoys` (a ROS double array x1,y1,x2,y2,...) is declared by the
# node itself: the table holds scalar parameters only
DECEPTIVE_PLANNER: tuple[ParamSpec, ...] = (
    ParamSpec("world", "", "world YAML the roadmap is built from; empty = the occupancy grid "
              "on `map`", read_only=True),
    ParamSpec("use_map", False, "build the roadmap from the `map` topic (nav_msgs/"
              "OccupancyGrid, transient local) even when `world` is set", read_only=True),
    ParamSpec("occupied_threshold", 50, "map cells with this occupancy (0-100) or more are "
              "obstacles", 1, 100, read_only=True),
    ParamSpec("unknown_is_obstacle", True, "unknown map cells (-1) and the outside of the map "
              "are obstacles", read_only=True),
    _f("robot_radius", 0.2, 0.0, 2.0, "roadmap cells keep more than this clearance (m)",
       read_only=True),
    _f("resolution", 0.25, 0.02, 2.0, "roadmap cell size (m)", read_only=True),
    _f("margin", 0.05, 0.0, 2.0, "extra clearance beyond robot_radius (m)", read_only=True),
    _f("snap_tolerance", 1.0, 0.0, 10.0, "start, goal or decoy farther than this (m) from "
       "every roadmap node cannot be snapped"),
    _f("goal_tolerance", 0.3, 0.01, 5.0, "robot within this (m) of the goal: the goal is done "
       "and later decoy or parameter changes no longer re-plan it"),
    _f("budget", 1.5, 1.0, 10.0, "path cost budget as a multiple of the shortest roadmap path"),
    ParamSpec("mode", "ambiguity", "deception bonus of the rl policy",
              choices=("ambiguity", "exaggeration")),
    ParamSpec("policy", "rl", "rl (ONNX GNN policy), pi_d2 or shortest",
              choices=("rl", "pi_d2", "shortest")),
    ParamSpec("model", "", "dpp ONNX model; empty = the shipped models/dpp_<mode>.onnx",
              read_only=True),
    ParamSpec("frame_id", "odom", "frame of the published plan", read_only=True),
)


def _local_planner_cross(v: Mapping[str, Any]) -> str | None:
    if v["slow_margin"] < v["stop_margin"]:
        return (f"slow_margin ({v['slow_margin']}) must be >= stop_margin ({v['stop_margin']})")
    return None


def _sim_bridge_cross(v: Mapping[str, Any]) -> str | None:
    if v["camera_rate"] > v["rate"]:
        return f"camera_rate ({v['camera_rate']}) must be <= rate ({v['rate']})"
    if v.get("backend") == "mujoco" and v["camera_rate"] > 0:
        return (f"backend mujoco has no depth camera: set camera_rate 0 (got "
                f"{v['camera_rate']}) or use backend pybullet")
    return None


def _fusion_cross(v: Mapping[str, Any]) -> str | None:
    if v["depth_max_height"] <= v["depth_min_height"]:
        return (f"depth_max_height ({v['depth_max_height']}) must be > depth_min_height "
                f"({v['depth_min_height']})")
    return None


NODE_PARAMS: dict[str, tuple[ParamSpec, ...]] = {
    "local_planner_node": LOCAL_PLANNER,
    "sim_bridge_node": SIM_BRIDGE,
    "sensor_fusion_node": SENSOR_FUSION,
    "instruction_node": INSTRUCTION,
    "mission_executor_node": EXECUTOR,
    "deceptive_planner_node": DECEPTIVE_PLANNER,
    "planner_server_node": PLANNER_SERVER,
    "navigator_node": NAVIGATOR,
}
CROSS_CHECKS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "local_planner_node": _local_planner_cross,
    "sim_bridge_node": _sim_bridge_cross,
    "sensor_fusion_node": _fusion_cross,
    "instruction_node": lambda _v: None,
    "mission_executor_node": lambda _v: None,
    "deceptive_planner_node": lambda _v: None,
    "planner_server_node": lambda _v: None,
    "navigator_node": lambda _v: None,
}


def _decoys_problem(value: Any) -> str | None:
    if not isinstance(value, (list, tuple)) or len(value) % 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return f"parameter decoys={value!r} must be a flat list x1, y1, x2, y2, ... of numbers"
    return None


# parameters a node declares itself (arrays the scalar table does not hold), with their check
NODE_EXTRAS: dict[str, dict[str, Callable[[Any], str | None]]] = {
    "deceptive_planner_node": {"decoys": _decoys_problem},
}


def defaults(node: str) -> dict[str, Value]:
    return {s.name: s.default for s in NODE_PARAMS[node]}


def check_values(node: str, values: Mapping[str, Any]) -> str | None:
    """First problem with a complete or partial set of `node`'s values (defaults fill the rest)."""
    specs = {s.name: s for s in NODE_PARAMS[node]}
    for name, value in values.items():
        if name in ("use_sim_time",):
            continue
        spec = specs.get(name)
        extra = NODE_EXTRAS.get(node, {}).get(name)
        if spec is None and extra is not None:
            problem = extra(value)
            if problem:
                return problem
            continue
        if spec is None:
            from nav_policy.yamlcheck import closest

            known = sorted([*specs, *NODE_EXTRAS.get(node, {})])
            best = closest(name, known)
            hint = f" (did you mean {best}?)" if best else ""
            return f"unknown parameter {name} for {node}{hint}; known: {', '.join(known)}"
        problem = spec.check(value)
        if problem:
            return problem
    merged = {**defaults(node), **{k: specs[k].coerce(v) for k, v in values.items()
                                   if k in specs}}
    return CROSS_CHECKS[node](merged)


def load_param_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """{node_name: {param: value}} from a ROS 2 parameter YAML, checked against the specs.

    Accepts `node:` and `/**/node:` / `/ns/node:` keys (the last path element names the node);
    nodes this package does not know are kept unchecked (other concerns' nodes).
    """
    from nav_policy.yamlcheck import check_keys, closest

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read parameter file {p}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"parameter file {p}: expected `node_name: ros__parameters:` mappings")
    out: dict[str, dict[str, Any]] = {}
    for key, section in data.items():
        node = str(key).rstrip("/").split("/")[-1]
        near = closest(node, NODE_PARAMS) if node not in NODE_PARAMS else None
        if near is not None:  # other packages' nodes pass unchecked; a near miss is a typo
            raise ConfigError(f"parameter file {p}: unknown node {node!r} (did you mean "
                              f"{near!r}?); this package's nodes: {', '.join(NODE_PARAMS)}")
        if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"), dict):
            raise ConfigError(f"parameter file {p}: {key} needs a ros__parameters: mapping")
        check_keys(section, ("ros__parameters",), f"parameter file {p}: {key}")
        values = dict(section["ros__parameters"])
        if node in NODE_PARAMS:
            problem = check_values(node, values)
            if problem:
                raise ConfigError(f"parameter file {p}: {node}: {problem}")
            specs = {s.name: s for s in NODE_PARAMS[node]}
            values = {k: specs[k].coerce(v) if k in specs else v for k, v in values.items()}
        out.setdefault(node, {}).update(values)
    return out


# ---- rclpy glue (imports ROS only when called) ---------------------------------------------


def descriptor(spec: ParamSpec) -> Any:
    """rcl_interfaces ParameterDescriptor for `spec`."""
    from rcl_interfaces.msg import (
        FloatingPointRange,
        IntegerRange,
        ParameterDescriptor,
        ParameterType,
    )

    types = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
             float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
    d = ParameterDescriptor(name=spec.name, type=types[spec.kind], description=spec.description,
                            read_only=spec.read_only)
    if spec.kind is float and spec.low is not None and spec.high is not None:
        d.floating_point_range = [FloatingPointRange(from_value=spec.low, to_value=spec.high,
                                                     step=0.0)]
    if spec.kind is int and spec.low is not None and spec.high is not None:
        d.integer_range = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high),
                                        step=1)]
    if spec.choices:
        d.additional_constraints = f"one of: {', '.join(spec.choices)}"
    return d


def overrides(node: str, values: Mapping[str, Any]) -> list[Any]:
    """rclpy Parameter overrides from plain values (coerced to the specs' types)."""
    from rclpy.parameter import Parameter

    specs = {s.name: s for s in NODE_PARAMS[node]}
    floats = NODE_EXTRAS.get(node, {})  # the extras are double arrays: 1 -> 1.0

    def value(k: str, v: Any) -> Any:
        if k in specs:
            return specs[k].coerce(v)
        if k in floats and isinstance(v, (list, tuple)):
            return [float(x) for x in v]
        return v

    return [Parameter(k, value=value(k, v)) for k, v in values.items()]


def declare(node: Any, name: str) -> dict[str, Any]:
    """Declare `name`'s parameters on rclpy `node`; returns their values.

    Raises ConfigError (one line naming the parameter) for a value outside its range, of the
    wrong type, not among its choices, or failing a cross-parameter check. Registers an
    on-set-parameters callback that refuses the same at runtime.
    """
    from rclpy.exceptions import (
        InvalidParameterTypeException,
        InvalidParameterValueException,
    )

    values: dict[str, Any] = {}
    for spec in NODE_PARAMS[name]:
        try:
            param = node.declare_parameter(spec.name, spec.default, descriptor(spec))
        except InvalidParameterValueException as exc:
            reason = str(exc).split("Reason: ", 1)[-1]
            raise ConfigError(f"parameter {spec.name} rejected: {reason}") from exc
        except InvalidParameterTypeException as exc:
            raise ConfigError(f"parameter {spec.name} must be {spec.kind.__name__}: {exc}") \
                from exc
        values[spec.name] = param.value
    problem = check_values(name, values)
    if problem:
        raise ConfigError(problem)
    node.add_on_set_parameters_callback(make_on_set_callback(node, name))
    return values


def make_on_set_callback(node: Any, name: str) -> Callable[[Iterable[Any]], Any]:
    """add_on_set_parameters_callback body: the specs' checks plus the cross checks."""
    from rcl_interfaces.msg import SetParametersResult

    specs = {s.name: s for s in NODE_PARAMS[name]}

    def callback(params: Iterable[Any]) -> SetParametersResult:
        params = list(params)
        changed = {p.name: p.value for p in params if p.name in specs}
        current = {k: node.get_parameter(k).value for k in specs}
        problem = check_values(name, {**current, **changed})
        if problem:
            node.get_logger().warning(f"refused parameter change: {problem}")
            return SetParametersResult(successful=False, reason=problem)
        return SetParametersResult(successful=True)

    return callback
