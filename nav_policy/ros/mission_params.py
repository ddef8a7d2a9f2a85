"""Parameter specs of instruction_node and mission_executor_node (checked without ROS 2).

Same ParamSpec form as nav_policy.ros.params (description, range or choices, read-only);
declare_specs() declares them on a node with ParameterDescriptors and refuses bad values at
start-up and at runtime.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nav_policy.errors import ConfigError
from nav_policy.ros.params import ParamSpec, descriptor


def _f(name: str, default: float, low: float, high: float, description: str,
       read_only: bool = False) -> ParamSpec:
    return ParamSpec(name, float(default), description, float(low), float(high),
                     read_only=read_only)


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

NODE_SPECS: dict[str, tuple[ParamSpec, ...]] = {
    "instruction_node": INSTRUCTION,
    "mission_executor_node": EXECUTOR,
}


def check_values(node: str, values: Mapping[str, Any]) -> str | None:
    """First problem with (a subset of) `node`'s values, or None."""
    specs = {s.name: s for s in NODE_SPECS[node]}
    for name, value in values.items():
        if name == "use_sim_time":
            continue
        spec = specs.get(name)
        if spec is None:
            return f"unknown parameter {name} for {node}; known: {', '.join(sorted(specs))}"
        problem = spec.check(value)
        if problem:
            return problem
    return None


def declare_specs(node: Any, name: str) -> dict[str, Any]:
    """Declare `name`'s parameters on an rclpy node; ConfigError on a bad value."""
    from rcl_interfaces.msg import SetParametersResult
    from rclpy.exceptions import (
        InvalidParameterTypeException,
        InvalidParameterValueException,
    )

    specs = NODE_SPECS[name]
    values: dict[str, Any] = {}
    for spec in specs:
        try:
            param = node.declare_parameter(spec.name, spec.default, descriptor(spec))
        except InvalidParameterValueException as exc:
            reason = str(exc).split("Reason: ", 1)[-1]
            raise ConfigError(f"parameter {spec.name} rejected: {reason}") from exc
        except InvalidParameterTypeException as exc:
            raise ConfigError(f"parameter {spec.name} must be {spec.kind.__name__}") from exc
        values[spec.name] = param.value
    problem = check_values(name, values)
    if problem:
        raise ConfigError(problem)

    def on_set(params: Iterable[Any]) -> SetParametersResult:
        changed = {p.name: p.value for p in params if p.name in values}
        problem = check_values(name, changed)
        if problem:
            return SetParametersResult(successful=False, reason=problem)
        values.update(changed)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    return values
