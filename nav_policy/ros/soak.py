"""Soak benchmark (not a test): local_planner_node at 50 Hz for a long run, memory and latency
over time.

    python -m nav_policy.ros.soak [--seconds 600] [--window 30] [--planner auto|rl|ebm|dwa|mppi]
           [--model FILE] [--json FILE] [--markdown]

A local_planner_node process is started (control_trigger scan, control_rate 50, ~/timing on;
rmw_fastrtps_cpp, localhost only, ROS_DOMAIN_ID from the environment, else 188, outside the
1-100 range the test suite claims). This process plays the robot exactly as
nav_policy.ros.latency_bench does (a fixed scan of a generated medium world at 50 Hz,
odometry at rest, a goal across the world, so every tick plans) and every `--window` seconds
records:

- rss_mib: the node's resident memory (VmRSS from /proc), and its peak (VmHWM);
- scan -> cmd_vel latency p50 / p99 in the window (same pairing as latency_bench);
- commands received, and the largest |v| and |w| commanded.

The summary reports the RSS growth from the end of the first window (warm-up: imports, ONNX
session, DDS buffers) to the end of the run, its slope (MiB/min, least squares over the
windows after the first), the latency drift (last window p50 - first window p50) and whether
every command stayed within the node's velocity limits. `--planner auto` uses rl with the
shipped model when models/local_rl.onnx exists and dwa otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from nav_policy.planners import LEARNED_PLANNERS, PLANNERS
from nav_policy.ros.latency_bench import Bench, _pct, _stop, match_latencies

REPO = Path(__file__).resolve().parents[2]
SHIPPED_RL = REPO / "models" / "local_rl.onnx"
MAX_V, MAX_W = 0.5, 2.0  # the node's default limits (config/nav_policy.yaml)


def _mem_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(rest.split()[0]) / 1024.0
    return fields.get("VmRSS", math.nan), fields.get("VmHWM", math.nan)


def _latencies(bench: Bench, sent: dict[int, float], n_tim: int) -> list[float]:
    """scan -> cmd_vel latencies of the timing entries from index n_tim on."""
    return [lat for lat, _ in match_latencies(bench, sent, n_tim)]


def _spawn(planner: str, model: str | None, rate: float, log: Any) -> subprocess.Popen:
    """The node under test; stderr to a file (a pipe nobody reads fills up on a long run)."""
    args = [str(Path(sys.executable).parent / "local_planner_node"), "--ros-args",
            "-p", f"planner:={planner}", "-p", f"control_rate:={rate}",
            "-p", "control_trigger:=scan", "-p", "publish_timing:=true",
            "-p", "diagnostics_period:=0.5"]
    if model and planner in LEARNED_PLANNERS:
        args += ["-p", f"model:={model}"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log,
                            stdin=subprocess.DEVNULL)


def resolve_planner(planner: str, model: str | None) -> tuple[str, str | None]:
    if planner != "auto":
        return planner, model
    if model or SHIPPED_RL.is_file():
        return "rl", model or str(SHIPPED_RL)
    return "dwa", None


def soak(planner: str = "auto", model: str | None = None, seconds: float = 600.0,
         window: float = 30.0, rate: float = 50.0, log: Any = None) -> dict[str, Any]:
    """Run the soak; returns {"planner", "samples": [...], "summary": {...}}."""
    from geometry_msgs.msg import Twist

    planner, model = resolve_planner(planner, model)
    bench = Bench()
    values: list[tuple[float, float]] = []
    bench.node.create_subscription(Twist, "cmd_vel", lambda m: values.append(
        (m.linear.x, m.angular.z)), 1000)
    err = tempfile.TemporaryFile(mode="w+")
    proc = _spawn(planner, model, rate, err)
    samples: list[dict[str, Any]] = []
    try:
        bench.wait_for_planner()
        t_start = time.monotonic()
        stamp0 = 4e6
        elapsed = 0.0
        k = 0
        while elapsed < seconds - 1e-6:
            span = min(window, seconds - elapsed)
            n_tim, n_val = len(bench.timing), len(values)
            sent = bench.run(rate, span, stamp0 + k * (window + 10.0))
            if proc.poll() is not None:
                err.seek(0)
                raise RuntimeError(f"local_planner_node exited with {proc.returncode}: "
                                   f"{err.read()[-2000:]}")
            rss, hwm = _mem_mib(proc.pid)
            lat = _latencies(bench, sent, n_tim)
            win = values[n_val:]
            elapsed = time.monotonic() - t_start
            sample = {"t_s": round(elapsed, 1), "rss_mib": round(rss, 2),
                      "hwm_mib": round(hwm, 2), "scans": len(sent), "answered": len(lat),
                      "commands": len(win), "p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99),
                      "max_abs_v": max((abs(v) for v, _ in win), default=0.0),
                      "max_abs_w": max((abs(w) for _, w in win), default=0.0),
                      "in_node_tick_p99_ms": bench.diag.get("tick_ms_p99")}
            samples.append(sample)
            if log is not None:
                print(json.dumps(sample), file=log, flush=True)
            k += 1
        summary = summarize(samples, values)
        summary.update(planner=planner, model_kind=bench.diag.get("model_kind"),
                       control_rate_hz=bench.diag.get("control_rate_hz"),
                       seconds=round(time.monotonic() - t_start, 1), window_s=window)
        return {"planner": planner, "samples": samples, "summary": summary}
    finally:
        _stop(proc)
        bench.close()
        err.close()


def summarize(samples: list[dict[str, Any]], values: list[tuple[float, float]]
              ) -> dict[str, Any]:
    rss = [s["rss_mib"] for s in samples]
    t = [s["t_s"] for s in samples]
    slope = None
    if len(samples) >= 3:  # least squares over the windows after the warm-up one
        slope = float(np.polyfit(np.asarray(t[1:]) / 60.0, np.asarray(rss[1:]), 1)[0])
    p50 = [s["p50_ms"] for s in samples if s["p50_ms"] is not None]
    finite = all(math.isfinite(v) and math.isfinite(w) for v, w in values)
    return {
        "windows": len(samples),
        "rss_first_mib": rss[0] if rss else None,
        "rss_last_mib": rss[-1] if rss else None,
        "rss_growth_mib": round(rss[-1] - rss[0], 2) if rss else None,
        "rss_slope_mib_per_min": None if slope is None else round(slope, 3),
        "p50_first_ms": p50[0] if p50 else None, "p50_last_ms": p50[-1] if p50 else None,
        "p99_max_ms": max((s["p99_ms"] for s in samples if s["p99_ms"] is not None),
                          default=None),
        "commands": len(values),
        "within_limits": finite and all(0.0 <= v <= MAX_V + 1e-6 and abs(w) <= MAX_W + 1e-6
                                        for v, w in values),
        "answered_fraction": round(sum(s["answered"] for s in samples)
                                   / max(1, sum(s["scans"] for s in samples)), 4),
    }


def markdown(result: dict[str, Any], command: str) -> str:
    out = ["| t (s) | RSS (MiB) | scans answered | scan->cmd_vel p50 / p99 (ms) | "
           "max abs v / w |", "|---|---|---|---|---|"]
    for s in result["samples"]:
        out.append(f"| {s['t_s']:g} | {s['rss_mib']:.1f} | {s['answered']}/{s['scans']} | "
                   f"{s['p50_ms']} / {s['p99_ms']} | {s['max_abs_v']:.3f} / "
                   f"{s['max_abs_w']:.3f} |")
    sm = result["summary"]
    out.append(f"\nplanner {sm['planner']} ({sm['model_kind']}), {sm['seconds']} s; RSS "
               f"growth after the first window {sm['rss_growth_mib']} MiB (slope "
               f"{sm['rss_slope_mib_per_min']} MiB/min); every command within limits: "
               f"{sm['within_limits']}")
    return "\n".join(out) + f"\n\nCommand: `{command}`\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--window", type=float, default=30.0, help="sampling window (s)")
    ap.add_argument("--planner", default="auto", choices=("auto", *PLANNERS))
    ap.add_argument("--model", default=None, help="ONNX for rl/ebm")
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    if args.seconds <= 0 or args.window <= 0:
        print("soak: --seconds and --window must be positive", file=sys.stderr)
        return 2
    os.environ.setdefault("ROS_DOMAIN_ID", "188")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    result = soak(args.planner, args.model, args.seconds, min(args.window, args.seconds),
                  log=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    print(json.dumps(result["summary"]), file=sys.stderr)
    if args.markdown:
        print(markdown(result, "python -m nav_policy.ros.soak " +
                       " ".join(argv if argv is not None else sys.argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
