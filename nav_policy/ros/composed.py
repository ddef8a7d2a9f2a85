"""`nav-policy up`: the nodes of launch/navigation_launch.py (and with --sim the simulator
bridge of launch/sim_launch.py) in one process, for machines that only have the ROS 2 wheels and
no `ros2 launch`.

Each node spins on its own SingleThreadedExecutor in its own thread, so a slow callback (a VLM
call in instruction_node) holds up only its node, as with separate processes. Not rclpy's
MultiThreadedExecutor: its Python dispatch loop polls its futures while callbacks are in flight,
keeps the GIL busy and, through the GIL hand-over, slowed numpy-heavy callbacks (DWA, about
8 ms alone) to about 0.5 s per tick inside this process (measured with py-spy, docs/ROS.md).

Parameters come from the same YAML (config/nav_policy.yaml by default), read per node name;
the local planner reads scan_fused (remapped from scan), as in the launch files. With --sim
the fusion and planner nodes run on the simulator's /clock (use_sim_time true) unless the
file sets use_sim_time for them.
"""

from __future__ import annotations

import threading
import time
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


def run(config: str | Path | None = None, sim: bool = False, deceptive: bool = False) -> int:
    """Build, start and spin the nodes until Ctrl-C (returns 0) or a start-up error
    (NavPolicyError, raised after a clean shutdown)."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

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
    if deceptive:  # as the launch files' deceptive:=true: the deceptive planner owns `plan`
        params.setdefault("mission_executor_node", {})["publish_plan"] = False
        dpp = params.setdefault("deceptive_planner_node", {})
        if sim and not dpp.get("world"):  # its roadmap: the simulated world
            dpp["world"] = params.get("sim_bridge_node", {}).get("world", "")

    def opts(name: str) -> dict[str, Any]:
        return {"parameter_overrides": overrides(name, params.get(name, {}))}

    msgs.init_ros([])
    nodes: list[Any] = []
    planner: LocalPlannerNode | None = None
    spinning: NodeThreads | None = None
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
        if deceptive:
            from nav_policy.ros.deceptive_planner_node import DeceptivePlannerNode

            nodes.append(DeceptivePlannerNode(**opts("deceptive_planner_node")))
        spinning = NodeThreads(nodes)
        names = ", ".join(n.get_name() for n in nodes)
        nodes[-1].get_logger().info(f"nav-policy up: {names} running (Ctrl-C to stop)")
        while spinning.dead() is None:
            time.sleep(0.2)  # Ctrl-C / SIGTERM arrive here as KeyboardInterrupt
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if planner is not None:
            planner.stop_motion()
        if spinning is not None:
            spinning.shutdown()
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    if spinning is not None and spinning.errors:
        raise spinning.errors[0]
    return 0


class NodeThreads:
    """Spin each node on its own SingleThreadedExecutor in its own daemon thread."""

    def __init__(self, nodes: list[Any]) -> None:
        from rclpy.executors import SingleThreadedExecutor

        self.errors: list[BaseException] = []
        self.executors = []
        self.threads = []
        for node in nodes:
            executor = SingleThreadedExecutor(context=node.context)
            executor.add_node(node)
            self.executors.append(executor)
            self.threads.append(threading.Thread(target=self._spin, args=(executor,),
                                                 daemon=True, name=f"spin-{node.get_name()}"))
        for t in self.threads:
            t.start()

    def _spin(self, executor: Any) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            executor.spin()
        except ExternalShutdownException:
            pass
        except Exception as exc:  # noqa: BLE001 - a callback raised: report it, stop
            self.errors.append(exc)

    def dead(self) -> str | None:
        """None while every node spins, else which stopped (and why)."""
        for t in self.threads:
            if not t.is_alive():
                why = f": {self.errors[0]!r}" if self.errors else ""
                return f"{t.name.removeprefix('spin-')} stopped spinning{why}"
        return None

    def shutdown(self, timeout_sec: float = 5.0) -> None:
        """Stop every executor and join its thread (before any node is destroyed: a node
        destroyed under a thread still waiting on it aborts the process)."""
        for executor in self.executors:
            executor.shutdown(timeout_sec=timeout_sec)  # waits for callbacks in flight
        for t in self.threads:
            t.join(timeout_sec)
