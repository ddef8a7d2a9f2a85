"""Benchmark (not a test): local_planner_node's scan -> cmd_vel latency across processes, and
its CPU use, for several planners.

    python -m nav_policy.ros.latency_bench --planners rl,dwa,mppi [--model FILE]
           [--seconds 10] [--json FILE] [--markdown]

For each planner a local_planner_node process is started (rmw_fastrtps_cpp, localhost only,
ROS_DOMAIN_ID from the environment, else 87). This process plays the robot with a fixed
scan from a generated medium world (seed 0, at its start pose), odometry at rest and a goal
on the far side of the world, so every tick plans:

- latency: control_trigger scan, control_rate 50; one scan every 20 ms (50 Hz); latency =
  receipt of the cmd_vel computed from a scan - publication of that scan, both on this
  process's monotonic clock (the node's ~/timing, published right after each command, tells
  which scan it used and whether the planner ran on that tick: a learned policy runs at its model's control_hz and
  holds its command on the other ticks). p50 / p99 over all ticks and over planner ticks.
- CPU: control_trigger timer at 20 Hz, scans and odometry at 20 Hz; utime + stime of the
  node process from /proc over the window, as % of one core.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from nav_policy.planners import LEARNED_PLANNERS


def _scene() -> tuple[np.ndarray, Any, tuple[float, float, float], tuple[float, float]]:
    from nav_policy.sim.generate import generate_world
    from nav_policy.sim.robot import load_robot_spec
    from nav_policy.sim.simulator import Simulator

    robot = load_robot_spec()
    world, _ = generate_world("medium", 0, radius=robot.radius)
    sim = Simulator(robot)
    sim.load_world(world)
    sim.reset()
    ranges = sim.scan()
    sim.close()
    return ranges, robot.lidar, world.start, world.goal


class Bench:
    """The robot side: publishes scan/odom/goal, records cmd_vel and ~/timing."""

    def __init__(self) -> None:
        import rclpy
        from geometry_msgs.msg import PoseStamped, Twist
        from nav_msgs.msg import Odometry
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from sensor_msgs.msg import LaserScan
        from std_msgs.msg import Float64MultiArray, String

        from nav_policy.ros import msgs

        self.msgs = msgs
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node("latency_bench", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        n = self.node
        self.scan_pub = n.create_publisher(LaserScan, "scan", msgs.SENSOR_PUB_QOS)
        self.odom_pub = n.create_publisher(Odometry, "odom", msgs.SENSOR_PUB_QOS)
        self.goal_pub = n.create_publisher(PoseStamped, "goal_pose", msgs.COMMAND_QOS)
        self.cmd_times: list[float] = []
        self.timing: list[list[float]] = []
        self.diag: dict[str, Any] = {}
        n.create_subscription(Twist, "cmd_vel", lambda m: self.cmd_times.append(
            time.monotonic()), 1000)
        n.create_subscription(Float64MultiArray, "local_planner_node/timing",
                              lambda m: self.timing.append([time.monotonic(), *m.data]), 1000)
        n.create_subscription(String, "local_planner_node/diagnostics",
                              lambda m: self.diag.update(json.loads(m.data)), 10)
        self.ranges, self.lidar, self.start, self.goal = _scene()

    def spin_until(self, cond: Any, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.005)
            if cond():
                return True
        return False

    def publish(self, stamp: float) -> None:
        m, lid = self.msgs, self.lidar
        x, y, yaw = self.start
        self.odom_pub.publish(m.odometry(x, y, yaw, 0.0, 0.0, stamp, "odom", "base_link"))
        self.scan_pub.publish(m.laser_scan(self.ranges, lid.angle_min, lid.angle_increment,
                                           lid.range_min, lid.range_max, stamp, "base_scan"))

    def wait_for_planner(self, timeout: float = 60.0) -> None:
        """Feed scans until the node drives on our goal."""
        last = [0.0]
        k = [0]

        def ready() -> bool:
            now = time.monotonic()
            if now - last[0] > 0.05:
                k[0] += 1
                self.publish(1e6 + k[0] * 0.05)
                if self.goal_pub.get_subscription_count() and not self.diag.get("goal"):
                    self.goal_pub.publish(self.msgs.pose_stamped(*self.goal, 0.0, 0.0, "odom"))
                last[0] = now
            return bool(self.diag.get("goal")) and len(self.cmd_times) > 5

        if not self.spin_until(ready, timeout):
            raise RuntimeError(f"planner node never came up (diagnostics: {self.diag})")

    def run(self, rate: float, seconds: float, stamp0: float) -> dict[int, float]:
        """Publish at `rate` for `seconds`; {stamp key: publish time}."""
        sent: dict[int, float] = {}
        period = 1.0 / rate
        t_next = time.monotonic()
        end = t_next + seconds
        k = 0
        while time.monotonic() < end:
            stamp = stamp0 + k * period
            t = time.monotonic()
            self.publish(stamp)
            sent[round(stamp * 1e6)] = t
            k += 1
            t_next += period
            while time.monotonic() < t_next:
                self.executor.spin_once(timeout_sec=max(t_next - time.monotonic(), 0.0))
        self.spin_until(lambda: False, 0.5)  # drain replies
        return sent

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


ECHO = """
import rclpy, time
from rclpy.node import Node
from geometry_msgs.msg import Twist
from sensor_msgs.msg import LaserScan
from std_msgs.msg import Float64MultiArray, String
from nav_policy.ros import msgs
rclpy.init()
n = Node("local_planner_node")
cmd = n.create_publisher(Twist, "cmd_vel", msgs.COMMAND_QOS)
tim = n.create_publisher(Float64MultiArray, "~/timing", 100)
diag = n.create_publisher(String, "~/diagnostics", 10)
def on_scan(m):
    cmd.publish(Twist())
    tim.publish(Float64MultiArray(data=[m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec,
                                        1.0, 0.0, 0.0]))
n.create_subscription(LaserScan, "scan", on_scan, msgs.SENSOR_QOS)
n.create_timer(0.5, lambda: diag.publish(msgs.json_msg({"goal": [0, 0], "model_kind": "echo"})))
try:
    rclpy.spin(n)
except KeyboardInterrupt:
    pass
"""


def _spawn(planner: str, model: str | None, rate: float, trigger: str) -> subprocess.Popen:
    if planner == "echo":  # transport floor: a bare rclpy node answering each scan
        return subprocess.Popen([sys.executable, "-c", ECHO], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    args = [str(Path(sys.executable).parent / "local_planner_node"), "--ros-args",
            "-p", f"planner:={planner}", "-p", f"control_rate:={rate}",
            "-p", f"control_trigger:={trigger}", "-p", "publish_timing:=true",
            "-p", "diagnostics_period:=0.5"]
    if model and planner in LEARNED_PLANNERS:
        args += ["-p", f"model:={model}"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(xs: list[float], q: float) -> float | None:
    return round(float(np.percentile(xs, q)) * 1e3, 2) if xs else None


def match_latencies(bench: Bench, sent: dict[int, float], n_tim: int
                    ) -> list[tuple[float, bool]]:
    """(scan -> cmd_vel latency, planner ran on that tick) for timing entries from n_tim on.

    A tick publishes cmd_vel then ~/timing (scan stamp, planner ran?): each timing entry is
    paired with the command received closest to it (ticks are >= 20 ms apart)."""
    cmds = np.asarray(bench.cmd_times)
    out: list[tuple[float, bool]] = []
    seen: set[int] = set()
    for t_timing, stamp, evaluated, *_rest in bench.timing[n_tim:]:
        key = round(stamp * 1e6)
        if key not in sent or key in seen or not len(cmds):
            continue
        t_recv = float(cmds[np.argmin(np.abs(cmds - t_timing))])
        if abs(t_recv - t_timing) > 0.01:
            continue
        seen.add(key)
        out.append((t_recv - sent[key], bool(evaluated)))
    return out


def latency(planner: str, model: str | None, seconds: float) -> dict[str, Any]:
    bench = Bench()
    proc = _spawn(planner, model, 50.0, "scan")
    try:
        bench.wait_for_planner()
        n_tim = len(bench.timing)
        sent = bench.run(50.0, seconds, 2e6)
        pairs = match_latencies(bench, sent, n_tim)
        lat_all = [lat for lat, _ in pairs]
        lat_eval = [lat for lat, evaluated in pairs if evaluated]
        return {"planner": planner, "model_kind": bench.diag.get("model_kind"),
                "policy_hz": bench.diag.get("policy_hz"), "scans": len(sent),
                "answered": len(lat_all), "p50_ms": _pct(lat_all, 50),
                "p99_ms": _pct(lat_all, 99), "planner_ticks": len(lat_eval),
                "planner_tick_p50_ms": _pct(lat_eval, 50),
                "planner_tick_p99_ms": _pct(lat_eval, 99),
                "in_node_policy_p50_ms": bench.diag.get("policy_ms_p50"),
                "in_node_policy_p99_ms": bench.diag.get("policy_ms_p99"),
                "in_node_tick_p50_ms": bench.diag.get("tick_ms_p50"),
                "in_node_tick_p99_ms": bench.diag.get("tick_ms_p99")}
    finally:
        _stop(proc)
        bench.close()


def cpu(planner: str, model: str | None, seconds: float) -> dict[str, Any]:
    bench = Bench()
    proc = _spawn(planner, model, 20.0, "timer")
    try:
        bench.wait_for_planner()
        c0, t0 = _cpu_seconds(proc.pid), time.monotonic()
        bench.run(20.0, seconds, 3e6)
        c1, t1 = _cpu_seconds(proc.pid), time.monotonic()
        return {"planner": planner, "cpu_pct_20hz": round(100.0 * (c1 - c0) / (t1 - t0), 1),
                "control_rate_hz": bench.diag.get("control_rate_hz")}
    finally:
        _stop(proc)
        bench.close()


def markdown(rows: list[dict[str, Any]], command: str) -> str:
    header = ("| planner | policy rate | scans answered | scan->cmd_vel p50 / p99 (ms) | "
              "planner ticks p50 / p99 (ms) | in-node tick p50 / p99 (ms) | in-node planner "
              "p50 / p99 (ms) | CPU at 20 Hz (% of a core) |")
    out = [header, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["planner"] == "echo":
            rate = "- (bare rclpy echo)"
        else:
            rate = f"{r['policy_hz']:g} Hz (model)" if r.get("policy_hz") else "every tick"
        out.append(f"| {r['planner']} | {rate} | {r['answered']}/{r['scans']} | "
                   f"{_fmt(r['p50_ms'])} / {_fmt(r['p99_ms'])} | "
                   f"{_fmt(r['planner_tick_p50_ms'])} / {_fmt(r['planner_tick_p99_ms'])} | "
                   f"{_fmt(r.get('in_node_tick_p50_ms'))} / {_fmt(r.get('in_node_tick_p99_ms'))} | "
                   f"{_fmt(r.get('in_node_policy_p50_ms'))} / "
                   f"{_fmt(r.get('in_node_policy_p99_ms'))} | {r.get('cpu_pct_20hz', '-')} |")
    return "\n".join(out) + f"\n\nCommand: `{command}`\n"


def _fmt(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--planners", default="echo,rl,dwa,mppi",
                    help="comma list of rl, ebm, dwa, mppi and echo (a bare rclpy node "
                         "answering each scan: the transport floor)")
    ap.add_argument("--model", default=None, help="ONNX for rl/ebm (default: shipped model)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("ROS_DOMAIN_ID", "87")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    rows = []
    for planner in args.planners.split(","):
        row = latency(planner, args.model, args.seconds)
        if planner != "echo":
            row.update(cpu(planner, args.model, args.seconds))
        print(json.dumps(row), file=sys.stderr)
        rows.append(row)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=2))
    if args.markdown:
        cmd = "python -m nav_policy.ros.latency_bench " + " ".join(argv or sys.argv[1:])
        print(markdown(rows, cmd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
