"""`nav-policy up [--config FILE] [--sim] [--deceptive]`: the ROS 2 nodes in one process."""

from __future__ import annotations

import argparse
from pathlib import Path

from nav_policy.errors import ConfigError


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "up", help="run the navigation stack's ROS 2 nodes in one process",
        description="Run sensor_fusion_node, local_planner_node, instruction_node and "
                    "mission_executor_node (with --sim also sim_bridge_node, with --deceptive "
                    "also deceptive_planner_node) in one process, each on its own executor "
                    "thread, with parameters from a ROS 2 parameter YAML. Ctrl-C stops them "
                    "cleanly.")
    p.add_argument("--config", type=Path, default=None,
                   help="parameter YAML (node_name: ros__parameters:); default: the shipped "
                        "config/nav_policy.yaml")
    p.add_argument("--sim", action="store_true",
                   help="also run the PyBullet simulator bridge (world from the config)")
    p.add_argument("--deceptive", action="store_true",
                   help="also run deceptive_planner_node: every goal_pose is planned as a "
                        "deceptive route on plan (decoys from its section of the config, or the "
                        "decoys topic); the mission executor then sends goals only")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        import rclpy  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"ROS 2 (rclpy) is not installed: {exc}; install the wheels with "
                          "`pip install -e .[ros]` or source a ROS 2 install") from exc
    from nav_policy.ros.composed import run

    return run(args.config, args.sim, args.deceptive)
