"""`nav-policy up`: the nodes of launch/navigation_launch.py (and with --sim the simulator
bridge of launch/sim_launch.py) in one process, on a MultiThreadedExecutor, for machines that
only have the ROS 2 wheels and no `ros2 launch`.

Parameters come from the same YAML (config/nav_policy.yaml by default), read per node name;
the local planner reads scan_fused (remapped from scan), as in the launch files. With --sim
the fusion and planner nodes run on the simulator's /clock (use_sim_time true) unless the
file sets use_sim_time for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nav_policy.paths import config_path
from nav_policy.ros.params import load_param_file, overrides

PLANNER_REMAPS = ("scan:=scan_fused",)


def node_args(remaps: tuple[str, ...]) -> list[str]:
    out = ["--ros-args"]
    for r in remaps:
        out += ["-r", r]
    return out


def run(config: str | Path | None = None, sim: bool = False) -> int:
    """Build, start and spin the nodes until Ctrl-C (returns 0) or a start-up error
    (NavPolicyError, raised after a clean shutdown)."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    from nav_policy.ros import msgs
    from nav_policy.ros.instruction_node import InstructionNode
    from nav_policy.ros.local_planner_node import LocalPlannerNode
    from nav_policy.ros.mission_executor_node import MissionExecutorNode
    from nav_policy.ros.sensor_fusion_node import SensorFusionNode
    from nav_policy.ros.sim_bridge_node import SimBridgeNode

    path = Path(config) if config else config_path("nav_policy.yaml")
    params = load_param_file(path)
    if sim:  # the other nodes follow the simulator's /clock unless the file says otherwise
        for name in ("sensor_fusion_node", "local_planner_node", "mission_executor_node"):
            params.setdefault(name, {}).setdefault("use_sim_time", True)

    def opts(name: str) -> dict[str, Any]:
        return {"parameter_overrides": overrides(name, params.get(name, {}))}

    msgs.init_ros([])
    nodes: list[Any] = []
    planner: LocalPlannerNode | None = None
    executor: MultiThreadedExecutor | None = None
    try:
        if sim:
            nodes.append(SimBridgeNode(**opts("sim_bridge_node")))
        nodes.append(SensorFusionNode(**opts("sensor_fusion_node")))
        planner = LocalPlannerNode(cli_args=node_args(PLANNER_REMAPS),
                                   **opts("local_planner_node"))
        nodes.append(planner)
        planner.autostart_up()
        nodes.append(InstructionNode(**opts("instruction_node")))
        nodes.append(MissionExecutorNode(**opts("mission_executor_node")))
        executor = MultiThreadedExecutor(num_threads=len(nodes) + 1)
        for node in nodes:
            executor.add_node(node)
        names = ", ".join(n.get_name() for n in nodes)
        nodes[-1].get_logger().info(f"nav-policy up: {names} running (Ctrl-C to stop)")
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if planner is not None:
            planner.stop_motion()
        if executor is not None:
            executor.shutdown(timeout_sec=5.0)  # waits for callbacks in flight
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
