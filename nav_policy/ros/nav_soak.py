"""Navigation soak (a benchmark, not a test): the full stack driven through Nav2's actions.

    python -m nav_policy.ros.nav_soak [--seconds 600] [--window 60] [--tier easy] [--seed 0]
           [--json FILE] [--markdown]

Starts sim_bridge_node (a generated world, map -> odom offset (0.5, -0.3, 0.2 rad)),
local_planner_node (the shipped rl policy, control_trigger scan, ~/timing on) and navigator_node
(the same world file) as separate processes (rmw_fastrtps_cpp, localhost only, ROS_DOMAIN_ID
from the environment, else 189). This process is the Nav2 client: it sends NavigateToPose goals
in `map` to random free points of the world (seeded), in cycles of five: three goals each
waited on until they end (at most `--goal-timeout` s, then canceled), one preempted after 2 s by
the next, which is canceled after 2 s. Every `--window` seconds it records:

- rss_mib of each process (VmRSS) and the summed growth since the first window;
- scans published by the bridge while a goal ran (0.5 s after its start to 0.5 s before its
  end) that got no control tick (no ~/timing entry with that scan's stamp): missed ticks;
- scan -> cmd_vel latency (the ~/timing entry's arrival minus the scan's, both here) p50/p99;
- goals sent, succeeded, aborted (with codes), canceled, preempted.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from nav_policy.sim.generate import KNOWN_TIERS

REPO = Path(__file__).resolve().parents[2]
SHIPPED_RL = REPO / "models" / "local_rl.onnx"
MAP_ODOM = (0.5, -0.3, 0.2)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return math.nan


def _pct(xs: list[float], q: float) -> float | None:
    return round(float(np.percentile(np.asarray(xs) * 1e3, q)), 2) if xs else None


def _exe(name: str) -> list[str]:
    b = Path(sys.executable).parent / name
    if b.is_file():
        return [str(b)]
    fn = "planner_main" if name == "planner_server_node" else "main"
    mod = {"navigator_node": "navigator_node", "local_planner_node": "local_planner_node",
           "sim_bridge_node": "sim_bridge_node"}[name]
    return [sys.executable, "-c", f"import sys; from nav_policy.ros.{mod} import {fn}; "
            f"sys.exit({fn}(sys.argv))"]


def free_points(world: Any, radius: float, n: int, rng: random.Random) -> list[tuple]:
    hx, hy = world.half
    out: list[tuple[float, float]] = []
    while len(out) < n:
        x, y = rng.uniform(-hx + 0.5, hx - 0.5), rng.uniform(-hy + 0.5, hy - 0.5)
        if float(world.clearance(np.array([x]), np.array([y]))[0]) > radius + 0.35:
            out.append((x, y))
    return out


def soak(seconds: float, window: float, tier: str, seed: int, goal_timeout: float,
         log: Any = None) -> dict[str, Any]:
    import rclpy
    from action_msgs.msg import GoalStatus
    from nav2_msgs.action import NavigateToPose
    from rclpy.action import ActionClient
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import LaserScan
    from std_msgs.msg import Float64MultiArray

    from nav_policy.ros import msgs
    from nav_policy.ros.convert import stamp_to_sec
    from nav_policy.ros.tf import Transform
    from nav_policy.sim.generate import generate_world
    from nav_policy.sim.robot import load_robot_spec

    robot = load_robot_spec()
    world = generate_world(tier, seed, radius=robot.radius)[0]
    tmp = Path(tempfile.mkdtemp(prefix="nav_soak_"))
    wfile = tmp / "world.yaml"
    world.save(wfile)
    logs = {k: open(tmp / f"{k}.err", "w") for k in ("sim", "planner", "navigator")}
    argv = {
        "sim": [*_exe("sim_bridge_node"), "--ros-args", "-p", f"world:={wfile}",
                "-p", "publish_goal:=false", "-p", "camera_rate:=0.0",
                "-p", f"map_odom_x:={MAP_ODOM[0]}", "-p", f"map_odom_y:={MAP_ODOM[1]}",
                "-p", f"map_odom_yaw:={MAP_ODOM[2]}"],
        "planner": [*_exe("local_planner_node"), "--ros-args", "-p", "planner:=rl",
                    "-p", f"model:={SHIPPED_RL}", "-p", "control_trigger:=scan",
                    "-p", "publish_timing:=true"],
        "navigator": [*_exe("navigator_node"), "--ros-args", "-p", f"world:={wfile}"],
    }
    procs = {k: subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=logs[k],
                                 stdin=subprocess.DEVNULL) for k, a in argv.items()}
    ctx = rclpy.Context()
    rclpy.init(context=ctx, signal_handler_options=SignalHandlerOptions.NO)
    node = Node("nav_soak", context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    scans: dict[float, float] = {}  # stamp -> arrival
    ticks: dict[float, float] = {}
    node.create_subscription(LaserScan, "scan", lambda m: scans.__setitem__(
        round(stamp_to_sec(m.header.stamp), 4), time.monotonic()), msgs.SENSOR_QOS)
    node.create_subscription(Float64MultiArray, "local_planner_node/timing", lambda m: ticks.
                             setdefault(round(m.data[0], 4), time.monotonic()), 1000)
    client = ActionClient(node, NavigateToPose, "navigate_to_pose")
    rng = random.Random(seed)
    to_map = Transform.from_2d(*MAP_ODOM)
    counts: collections.Counter[str] = collections.Counter()
    active: list[tuple[float, float]] = []  # (start, end) monotonic of goals
    samples: list[dict[str, Any]] = []

    def spin_until(cond: Any, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=0.01)
            if cond():
                return True
        return False

    def send(x: float, y: float) -> Any:
        mx, my = to_map.apply(np.array([[x, y]]))[0]
        fut = client.send_goal_async(NavigateToPose.Goal(
            pose=msgs.pose_stamped(float(mx), float(my), 0.0, 0.0, "map")))
        spin_until(fut.done, 10.0)
        gh = fut.result()
        counts["sent"] += 1
        if gh is None or not gh.accepted:
            counts["rejected"] += 1
            return None
        gh.t0 = time.monotonic()
        gh.res = gh.get_result_async()
        return gh

    def close(gh: Any) -> None:
        if gh is None:
            return
        spin_until(gh.res.done, 10.0)
        active.append((gh.t0, time.monotonic()))
        if not gh.res.done():
            counts["no_result"] += 1
            return
        r = gh.res.result()
        name = {GoalStatus.STATUS_SUCCEEDED: "succeeded", GoalStatus.STATUS_ABORTED: "aborted",
                GoalStatus.STATUS_CANCELED: "canceled"}.get(r.status, f"status_{r.status}")
        if name == "aborted" and "preempted" in r.result.error_msg:
            name = "preempted"
        elif name == "aborted":
            counts[f"aborted_{r.result.error_code}"] += 1
        counts[name] += 1

    def sample(t_start: float, last_n: int) -> None:
        now = time.monotonic()
        lat, missed, considered = [], 0, 0
        for stamp, t_scan in list(scans.items()):
            if t_scan < now - window:
                continue
            t_tick = ticks.get(stamp)
            if t_tick is not None:
                lat.append(t_tick - t_scan)
            elif any(a + 0.5 <= t_scan <= b - 0.5 for a, b in active):
                missed += 1
            if any(a + 0.5 <= t_scan <= b - 0.5 for a, b in active):
                considered += 1
        for d in (scans, ticks):  # keep memory bounded: drop what is two windows old
            for k in [k for k, v in d.items() if v < now - 2 * window]:
                del d[k]
        s = {"t_s": round(now - t_start, 1),
             **{f"rss_{k}_mib": round(_rss_mib(p.pid), 1) for k, p in procs.items()},
             "scans_in_goals": considered, "missed_ticks": missed,
             "p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99),
             "goals": dict(counts)}
        samples.append(s)
        if log is not None:
            print(json.dumps(s), file=log, flush=True)

    try:
        if not spin_until(client.server_is_ready, 90.0):
            raise RuntimeError("navigate_to_pose never appeared")
        spin_until(lambda: len(scans) > 20, 30.0)
        t_start = time.monotonic()
        next_sample = t_start + window
        k = 0
        while time.monotonic() - t_start < seconds:
            for p in procs.values():
                if p.poll() is not None:
                    raise RuntimeError(f"a node exited with {p.returncode}; logs in {tmp}")
            x, y = free_points(world, robot.radius, 1, rng)[0]
            phase = k % 5
            gh = send(x, y)
            if phase < 3 and gh is not None:
                spin_until(gh.res.done, goal_timeout)
                if not gh.res.done():
                    gh.cancel_goal_async()
                    counts["timed_out"] += 1
                close(gh)
            elif phase == 3:
                spin_until(lambda: False, 2.0)
                x2, y2 = free_points(world, robot.radius, 1, rng)[0]
                gh2 = send(x2, y2)  # preempts gh
                close(gh)
                spin_until(lambda: False, 2.0)
                if gh2 is not None:
                    gh2.cancel_goal_async()
                close(gh2)
                k += 1
            k += 1
            while time.monotonic() >= next_sample:
                sample(t_start, 0)
                next_sample += window
        if not samples or time.monotonic() - t_start - samples[-1]["t_s"] > 1.0:
            sample(t_start, 0)
        rss0 = sum(v for key, v in samples[0].items() if key.startswith("rss_"))
        rss1 = sum(v for key, v in samples[-1].items() if key.startswith("rss_"))
        summary = {"seconds": round(time.monotonic() - t_start, 1), "tier": tier, "seed": seed,
                   "rss_growth_mib": round(rss1 - rss0, 1),
                   "missed_ticks": sum(s["missed_ticks"] for s in samples),
                   "scans_in_goals": sum(s["scans_in_goals"] for s in samples),
                   "p99_max_ms": max((s["p99_ms"] for s in samples if s["p99_ms"]), default=None),
                   "goals": dict(counts)}
        return {"samples": samples, "summary": summary}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(2)
        for p in procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs.values():
            f.close()
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)


def markdown(result: dict[str, Any], command: str) -> str:
    out = ["| t (s) | RSS sim / planner / navigator (MiB) | missed ticks / scans in goals | "
           "scan->cmd_vel p50 / p99 (ms) | goals so far |", "|---|---|---|---|---|"]
    for s in result["samples"]:
        g = s["goals"]
        out.append(f"| {s['t_s']:g} | {s['rss_sim_mib']} / {s['rss_planner_mib']} / "
                   f"{s['rss_navigator_mib']} | {s['missed_ticks']} / {s['scans_in_goals']} | "
                   f"{s['p50_ms']} / {s['p99_ms']} | "
                   + ", ".join(f"{k} {v}" for k, v in sorted(g.items())) + " |")
    return "\n".join(out) + f"\n\n{json.dumps(result['summary'])}\n\nCommand: `{command}`\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("--tier", default="easy", choices=KNOWN_TIERS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--goal-timeout", type=float, default=40.0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args(argv)
    if a.seconds <= 0 or a.window <= 0:
        print("nav_soak: --seconds and --window must be positive", file=sys.stderr)
        return 2
    os.environ.setdefault("ROS_DOMAIN_ID", "189")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    result = soak(a.seconds, a.window, a.tier, a.seed, a.goal_timeout, log=sys.stderr)
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))
    print(json.dumps(result["summary"]), file=sys.stderr)
    if a.markdown:
        print(markdown(result, "python -m nav_policy.ros.nav_soak " +
                       " ".join(argv if argv is not None else sys.argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
