"""Simulation bring-up: the PyBullet simulator bridge + navigation_launch.py
(`ros2 launch nav_policy sim_launch.py`).

Arguments: those of navigation_launch.py (use_sim_time defaults to 'true' here: the bridge
publishes /clock) plus
    world   world YAML ('' = generated from tier and seed, or the params file's); also the
            deceptive planner's roadmap with deceptive:=true (which needs a world file: the
            bridge publishes no map)
    tier    easy | medium | hard | dynamic ('' = the params file's)
    seed    generated world seed ('' = the params file's)

The bridge publishes the world's goal on goal_pose, so the robot starts driving at once (with
deceptive:=true along the deceptive planner's route, e.g.
`ros2 launch nav_policy sim_launch.py world:=w.yaml deceptive:=true decoys:=2.0,1.5`).
"""

import os

from launch.actions import (
    DeclareLaunchArgument,
    IncludeLaunchDescription,
    OpaqueFunction,
)
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

PACKAGE = "nav_policy"
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PARAMS = os.path.join(HERE, "..", "config", "nav_policy.yaml")
ARGUMENTS = {
    "namespace": ("", "robot namespace"),
    "params_file": (DEFAULT_PARAMS, "parameter YAML (node_name: ros__parameters:)"),
    "use_sim_time": ("true", "follow the simulator's /clock"),
    "model": ("", "ONNX model for planner rl/ebm; empty = from the params file"),
    "planner": ("", "rl | ebm | dwa | mppi; empty = from the params file"),
    "world": ("", "world YAML; empty = from the params file (or tier + seed)"),
    "tier": ("", "easy | medium | hard | dynamic; empty = from the params file"),
    "seed": ("", "world seed; empty = from the params file"),
    "deceptive": ("false", "true: add deceptive_planner_node (deceptive routes on plan)"),
    "decoys": ("", "deceptive planner decoys x1,y1,x2,y2,...; empty = from the params file"),
}
NAVIGATION_ARGS = ("namespace", "params_file", "use_sim_time", "model", "planner", "deceptive",
                   "decoys", "world")


def _bridge(context, *args, **kwargs):
    import yaml

    def arg(name):
        return LaunchConfiguration(name).perform(context)

    with open(arg("params_file")) as f:
        data = yaml.safe_load(f) or {}
    params = {}
    for key, section in data.items():
        if str(key).rstrip("/").split("/")[-1] == "sim_bridge_node":
            params = dict((section or {}).get("ros__parameters") or {})
    for key in ("world", "tier"):
        if arg(key):
            params[key] = arg(key)
    if arg("seed"):
        params["seed"] = int(arg("seed"))
    return [Node(package=PACKAGE, executable="sim_bridge_node", name="sim_bridge_node",
                 namespace=arg("namespace"), parameters=[params], output="screen")]


def generate_launch_description():
    navigation = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(HERE, "navigation_launch.py")),
        launch_arguments={name: LaunchConfiguration(name) for name in NAVIGATION_ARGS}.items())
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=description)
         for name, (default, description) in ARGUMENTS.items()]
        + [OpaqueFunction(function=_bridge), navigation])
