"""Robot bring-up: sensor fusion + local planner (`ros2 launch nav_policy navigation_launch.py`).

Arguments:
    namespace     robot namespace ('' = none); topics are relative, so everything moves under it
    params_file   parameter YAML (default: this package's config/nav_policy.yaml)
    use_sim_time  'true' to follow /clock (simulation or bag replay)
    model         ONNX model for planner rl/ebm ('' = the params file's, else the shipped one)
    planner       rl | ebm | dwa | mppi ('' = the params file's)
    deceptive     'true' to add deceptive_planner_node: it plans every goal_pose as a deceptive
                  route on `plan` (the mission executor's own grid route is then switched off)
    decoys        'x1,y1,x2,y2,...' decoy positions for it ('' = the params file's, or the
                  `decoys` topic at run time)
    world         world YAML of its roadmap ('' = the params file's, else the `map` topic)

The parameter file is read here and handed to each node as a dictionary, so its
`node_name: ros__parameters:` keys apply whatever the namespace. The local planner reads
scan_fused (the lidar merged with the depth camera). Instruction and mission nodes join this
file as their console scripts land (see docs/ROS.md).
"""

import os

import yaml
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

PACKAGE = "nav_policy"
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PARAMS = os.path.join(HERE, "..", "config", "nav_policy.yaml")
ARGUMENTS = {
    "namespace": ("", "robot namespace"),
    "params_file": (DEFAULT_PARAMS, "parameter YAML (node_name: ros__parameters:)"),
    "use_sim_time": ("false", "use /clock"),
    "model": ("", "ONNX model for planner rl/ebm; empty = from the params file"),
    "planner": ("", "rl | ebm | dwa | mppi; empty = from the params file"),
    "deceptive": ("false", "true: add deceptive_planner_node (deceptive routes on plan)"),
    "decoys": ("", "deceptive planner decoys x1,y1,x2,y2,...; empty = from the params file"),
    "world": ("", "deceptive planner roadmap world YAML; empty = params file, else map topic"),
}


def parse_decoys(text):
    """[x1, y1, x2, y2, ...] floats from 'x1,y1,x2,y2,...' (ValueError names the problem)."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ValueError(f"decoys:={text!r} must be numbers x1,y1,x2,y2,...") from None
    if len(values) % 2:
        raise ValueError(f"decoys:={text!r} needs pairs x1,y1,x2,y2,...")
    return values


def node_parameters(params_file, node_name):
    """The ros__parameters of `node_name` in `params_file` ({} when absent)."""
    with open(params_file) as f:
        data = yaml.safe_load(f) or {}
    for key, section in data.items():
        if str(key).rstrip("/").split("/")[-1] == node_name:
            return dict((section or {}).get("ros__parameters") or {})
    return {}


def _nodes(context, *args, **kwargs):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    params_file = arg("params_file")
    sim_time = arg("use_sim_time").lower() in ("true", "1")
    fusion = {**node_parameters(params_file, "sensor_fusion_node"), "use_sim_time": sim_time}
    planner = {**node_parameters(params_file, "local_planner_node"), "use_sim_time": sim_time}
    instruction = {**node_parameters(params_file, "instruction_node"), "use_sim_time": sim_time}
    executor = {**node_parameters(params_file, "mission_executor_node"), "use_sim_time": sim_time}
    for key in ("model", "planner"):
        if arg(key):
            planner[key] = arg(key)
    deceptive = arg("deceptive").lower() in ("true", "1")
    extra = []
    if deceptive:
        dpp = {**node_parameters(params_file, "deceptive_planner_node"),
               "use_sim_time": sim_time}
        if arg("world"):
            dpp["world"] = arg("world")
        if arg("decoys"):
            dpp["decoys"] = parse_decoys(arg("decoys"))
        executor["publish_plan"] = False  # the deceptive planner owns `plan`
        extra.append(Node(package=PACKAGE, executable="deceptive_planner_node",
                          name="deceptive_planner_node", namespace=arg("namespace"),
                          parameters=[dpp], output="screen"))
    return [
        Node(package=PACKAGE, executable="sensor_fusion_node", name="sensor_fusion_node",
             namespace=arg("namespace"), parameters=[fusion], output="screen"),
        Node(package=PACKAGE, executable="local_planner_node", name="local_planner_node",
             namespace=arg("namespace"), parameters=[planner],
             remappings=[("scan", "scan_fused")], output="screen"),
        Node(package=PACKAGE, executable="instruction_node", name="instruction_node",
             namespace=arg("namespace"), parameters=[instruction], output="screen"),
        Node(package=PACKAGE, executable="mission_executor_node", name="mission_executor_node",
             namespace=arg("namespace"), parameters=[executor], output="screen"),
        *extra,
    ]


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=description)
         for name, (default, description) in ARGUMENTS.items()]
        + [OpaqueFunction(function=_nodes)])
