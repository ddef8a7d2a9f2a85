"""`nav-policy bench`, `nav-policy metrics` and `nav-policy export-sdf`.

Heavy imports (PyBullet, matplotlib, mcap) happen inside the run functions. With `--json -`
stdout carries exactly one JSON object: file descriptor 1 points at stderr while the work runs
(PyBullet prints its banner from C), and the JSON goes to the real stdout afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nav_policy.bench.scenarios import WORLD_NAMING
from nav_policy.errors import ConfigError, ModelError
from nav_policy.planners import LEARNED_PLANNERS as LEARNED

# ---- shared helpers -----------------------------------------------------------------------------


def _flush_c_stdio() -> None:
    """Flush C stdio buffers (PyBullet's printf) so they land where fd 1 points now."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def stdout_to_stderr(enabled: bool) -> Iterator[None]:
    """While active (if enabled), anything written to fd 1 goes to stderr instead."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    _flush_c_stdio()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        _flush_c_stdio()
        os.dup2(saved, 1)
        os.close(saved)


def emit_json(payload: dict[str, Any], target: str | None) -> None:
    """Write the payload to stdout ('-') or a file (None: nowhere)."""
    if target is None:
        return
    from nav_policy.bench.report import jsonable

    text = json.dumps(jsonable(payload), indent=None if target == "-" else 2, allow_nan=False)
    if target == "-":
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    try:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(text + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from exc


def _text_out(json_target: str | None) -> Any:
    """Where human-readable output goes: stderr when stdout is reserved for JSON."""
    return sys.stderr if json_target == "-" else sys.stdout


def bench_command(cfg: Any, args: argparse.Namespace) -> str:
    """The canonical command line that reproduces this benchmark's episodes."""
    names = ",".join(p.name for p in cfg.planners)
    parts = ["nav-policy", "bench", "--compare" if args.compare else "--planner", names]
    parts += ["--tier", ",".join(cfg.tiers)] if cfg.tiers else []
    parts += ["--suite", ",".join(cfg.suites), "--protocol", cfg.protocol] if cfg.suites else []
    parts += [a for w in cfg.worlds for a in ("--world", w)]
    parts += ["--episodes", str(cfg.episodes), "--seed", str(cfg.seed)]
    parts += ["--robot", cfg.robot] if getattr(cfg, "robot", "") else []
    parts += [a for p in cfg.planners if p.model for a in ("--model", f"{p.name}={p.model}")]
    parts += ["--ray", cfg.ray] if cfg.ray else ["--workers", str(cfg.workers)]
    parts += ["--global-path"] if cfg.global_path else []
    parts += ["--safety-layer", cfg.safety_layer] if cfg.safety_layer else []
    return shlex.join(parts)


def _finite(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(f"{what} must be a number, got {text!r}") from exc
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be finite, got {text!r}")
    return value


# ---- bench --------------------------------------------------------------------------------------


def _planner_names(args: argparse.Namespace) -> list[str]:
    from nav_policy.bench.scenarios import split_list

    if args.planner and args.compare:
        raise ConfigError("give either --planner NAME or --compare A,B,..., not both")
    names = split_list([args.planner] if args.planner else args.compare)
    if not names:
        raise ConfigError("give --planner NAME or --compare A,B,... (planners: rl, ebm, dwa, mppi)")
    return names


def _models(values: list[str] | None, names: list[str]) -> dict[str, str]:
    """--model FILE (the one learned planner selected) or --model NAME=FILE, repeatable."""
    out: dict[str, str] = {}
    for value in values or []:
        name, sep, file = value.partition("=")
        if not sep:
            learned = [n for n in names if n in LEARNED]
            if len(learned) != 1:
                raise ConfigError(f"--model {value}: say which planner it is for (--model "
                                  "NAME=FILE); it applies to exactly one of rl, ebm")
            name, file = learned[0], value
        if name not in names:
            raise ConfigError(f"--model {value}: planner {name!r} is not being benchmarked")
        from nav_policy.paths import input_file_problem

        problem = input_file_problem(file)
        if problem:
            raise ModelError(f"--model {value}: {problem} (expected an exported .onnx file)")
        out[name] = file
    return out


def bench_config(args: argparse.Namespace) -> Any:
    """BenchConfig from parsed arguments (all validation that needs no simulation)."""
    from nav_policy.bench.barn import split_indices
    from nav_policy.bench.runner import (
        BenchConfig,
        PlannerSpec,
        check_planner_names,
        default_workers,
    )
    from nav_policy.bench.scenarios import parse_tiers, split_list

    names = _planner_names(args)
    check_planner_names(names)
    suites = split_list(args.suite)
    for suite in suites:
        split_indices(suite)  # ConfigError naming an unknown suite
    tiers = parse_tiers(args.tier) if args.tier or not (args.world or suites) else []
    models = _models(args.model, names)
    if args.episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {args.episodes}")
    if args.workers is not None and args.ray:
        raise ConfigError("give either --workers K or --ray ADDRESS, not both")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    workers = args.workers if args.workers is not None else default_workers()
    specs = tuple(PlannerSpec(n, models.get(n)) for n in names)
    worlds = tuple(str(Path(w).resolve()) for w in args.world or [])
    if worlds:
        from nav_policy.bench.scenarios import world_scenarios
        from nav_policy.sim.robot import load_robot_spec

        world_scenarios(worlds, 1, args.seed, load_robot_spec(args.robot or None).radius)
    return BenchConfig(planners=specs, tiers=tuple(tiers), episodes=args.episodes,
                       seed=args.seed, global_path=args.global_path, workers=workers,
                       ray=args.ray, worlds=worlds, safety_layer=args.safety_layer,
                       suites=tuple(suites), protocol=args.protocol,
                       backend=args.backend, robot=args.robot or "")


def _bench_args(cfg: Any, out_dir: Path, command: str, v_ref: float) -> dict[str, Any]:
    from nav_policy.envs.registration import LOCAL_NAV_MAX_STEPS

    return {"tiers": list(cfg.tiers), "worlds": list(cfg.worlds), "suites": list(cfg.suites),
            "protocol": cfg.protocol if cfg.suites else None, "episodes": cfg.episodes,
            "seed": cfg.seed, "world_naming": "hashed", "world_naming_rule": WORLD_NAMING["hashed"],
            "models": {p.name: p.model for p in cfg.planners if p.model},
            "workers": None if cfg.ray else cfg.workers, "ray": cfg.ray,
            "global_path": cfg.global_path, "safety_layer": cfg.safety_layer,
            "backend": cfg.backend,
            "robot": getattr(cfg, "robot", "") or "config/robot.yaml",
            "barn_v_ref": v_ref, "goal_tolerance": 0.25,
            "max_steps": LOCAL_NAV_MAX_STEPS, "control_hz": 10.0, "out_dir": str(out_dir),
            **({"suite_protocol": {"goal_tolerance": 1.0, "time_limit_s": 100.0,
                                   "barn_v_ref": 2.0, "clip": [2.0, 8.0],
                                   "clock": "from 0.1 m moved"}}
               if cfg.suites and cfg.protocol == "barn" else {}),
            "command": command}


def bench_payload(cfg: Any, grouped: dict[str, Any], out_dir: Path, command: str,
                  compare: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(JSON payload, per-planner summaries) of a finished benchmark."""
    from nav_policy.bench.report import compare_payload, planner_summary
    from nav_policy.bench.runner import barn_v_ref
    from nav_policy.sim.robot import load_robot_spec

    only_barn = cfg.suites and cfg.protocol == "barn" and not (cfg.tiers or cfg.worlds)
    v_ref = barn_v_ref("barn" if only_barn else "ours", load_robot_spec(getattr(cfg, "robot", "") or None))
    summaries = {name: planner_summary(res, v_ref) for name, res in grouped.items()}
    args = _bench_args(cfg, out_dir, command, v_ref)
    if compare:
        return compare_payload(summaries, {"compare": list(summaries), **args}), summaries
    (name, summary), = summaries.items()
    return {**summary, "planner": name, "model": cfg.planners[0].model, **args}, summaries


def run_bench(args: argparse.Namespace) -> int:
    """nav-policy bench: run, summarize, write the report, print the table (and JSON)."""
    from nav_policy.bench.report import report_text, write_report
    from nav_policy.bench.runner import BenchInterrupted, group_results, run_benchmark

    cfg = bench_config(args)
    out_dir = Path(args.out or Path("out") / "bench" / time.strftime("%Y%m%d-%H%M%S"))
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the report folder {out_dir}: "
                          f"{exc.strerror or exc}") from exc
    command = bench_command(cfg, args)
    interrupted: BenchInterrupted | None = None
    with stdout_to_stderr(args.json == "-"):
        try:
            grouped = run_benchmark(cfg, progress=not args.no_progress)
        except KeyboardInterrupt as exc:  # Ctrl-C: keep what finished
            results = exc.results if isinstance(exc, BenchInterrupted) else []
            total = exc.total if isinstance(exc, BenchInterrupted) else \
                len(cfg.planners) * cfg.episodes
            interrupted = BenchInterrupted(results, total)
            grouped = group_results(cfg, results, keep_empty=False)
            if not grouped:
                if created and not any(out_dir.iterdir()):
                    out_dir.rmdir()
                print("interrupted before any episode finished; nothing written",
                      file=sys.stderr)
                return 130
        payload, summaries = bench_payload(cfg, grouped, out_dir, command,
                                           bool(args.compare))
        if interrupted is not None:
            payload.update(partial=True, episodes_finished=len(interrupted.results),
                           episodes_planned=interrupted.total)
        write_report(out_dir, grouped, summaries, payload, plots=not args.no_plots)
    out = _text_out(args.json)
    print(report_text(summaries, payload), file=out)
    print(f"report: {out_dir}", file=out)
    emit_json(payload, args.json)
    if interrupted is not None:
        print(f"interrupted: {len(interrupted.results)} of {interrupted.total} episodes "
              f"finished; they are in {out_dir} (episodes.csv, results.json marked partial)",
              file=sys.stderr)
        return 130
    return 0


# ---- metrics ------------------------------------------------------------------------------------


def parse_goal(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise ConfigError(f"--goal must be X,Y (metres), got {text!r}")
    return _finite(parts[0], "--goal x"), _finite(parts[1], "--goal y")


def run_metrics(args: argparse.Namespace) -> int:
    """nav-policy metrics: score a recorded run from an MCAP bag."""
    from nav_policy.bench.bag import read_mission, score_bag
    from nav_policy.sim.robot import load_robot_spec
    from nav_policy.sim.world import load_world

    mission = read_mission(args.bag) if Path(args.bag).is_file() else None
    if args.goal is not None:
        goal, goal_source = parse_goal(args.goal), "--goal"
    elif mission is not None:
        goal, goal_source = (mission["goal"][0], mission["goal"][1]), "mission"
    else:
        raise ConfigError(f"{args.bag} records no mission (/mission_status); give --goal X,Y")
    if args.goal_tolerance is not None:
        tolerance, tol_source = args.goal_tolerance, "--goal-tolerance"
    elif mission is not None and mission.get("tolerance") and args.goal is None:
        tolerance, tol_source = float(mission["tolerance"]), "mission"
    elif mission is not None and args.goal is None:  # recorded before events named it
        tolerance = _executor_default_tolerance()
        tol_source = "the mission executor's default arrival_tolerance"
    else:
        tolerance, tol_source = 0.25, "default"
    if tolerance <= 0:
        raise ConfigError(f"--goal-tolerance must be positive, got {tolerance}")
    robot = load_robot_spec()
    radius = args.robot_radius if args.robot_radius is not None else robot.radius
    v_ref = args.v_ref if args.v_ref is not None else robot.v_max
    world = load_world(args.world) if args.world else None
    with stdout_to_stderr(args.json == "-"):
        result = score_bag(args.bag, goal, radius, v_ref, world, tolerance, args.odom_topic)
    payload = {**result, "bag": str(args.bag), "goal": list(goal), "goal_source": goal_source,
               "goal_tolerance": tolerance, "goal_tolerance_source": tol_source,
               "mission_state": mission.get("state") if mission else None,
               "world": args.world, "robot_radius": radius}
    out = _text_out(args.json)
    ep = result["per_episode"][0]
    print(f"{args.bag}: goal {goal[0]:.2f},{goal[1]:.2f} ({goal_source}), tolerance "
          f"{tolerance:g} m ({tol_source})", file=out)
    print(f"{args.bag}: {ep['outcome']} after {ep['time_s']:.1f} s, path {ep['path_length']:.2f} m"
          f" (shortest {ep['shortest_path']:.2f} m, {result['shortest_path_source']}), "
          f"SPL {ep['spl']:.3f}, BARN {ep['barn_score']:.3f} (v_ref {v_ref} m/s)", file=out)
    emit_json(payload, args.json)
    return 0


# ---- export-sdf ---------------------------------------------------------------------------------


def run_export_sdf(args: argparse.Namespace) -> int:
    """nav-policy export-sdf: benchmark worlds as SDF 1.9 plus world YAML sidecars."""
    from nav_policy.bench.scenarios import parse_tiers
    from nav_policy.bench.sdf import export_worlds
    from nav_policy.sim.robot import load_robot_spec

    tiers = parse_tiers(args.tier)
    if args.count < 1:
        raise ConfigError(f"--count must be at least 1, got {args.count}")
    entries = export_worlds(tiers, args.seed, args.count, Path(args.out),
                            load_robot_spec().radius)
    print(f"wrote {len(entries)} SDF worlds ({', '.join(tiers)}, seed {args.seed}) to "
          f"{args.out} (index: {Path(args.out) / 'worlds.json'})")
    return 0


# ---- parsers ------------------------------------------------------------------------------------


def _add_bench(sub: Any) -> None:
    p = sub.add_parser("bench", help="benchmark local planners on generated worlds",
                       description="Run planners on the same generated episodes and score them "
                                   "(success, SPL, BARN, path traits, compute time).")
    p.add_argument("--planner", help="one planner: rl, ebm, dwa or mppi")
    p.add_argument("--compare", action="append",
                   help="several planners on the same episodes, e.g. rl,dwa,mppi")
    p.add_argument("--tier", action="append",
                   help="easy, medium, hard, dynamic, crowd; repeat or comma-separate "
                        "(default: all)")
    p.add_argument("--world", action="append", metavar="FILE",
                   help="also run a world file (sim/worlds/*.yaml) from its start pose; "
                        "repeatable (with --world and no --tier, only the worlds run)")
    p.add_argument("--suite", action="append",
                   help="world suites: barn-test (BARN's 50 test worlds, i %% 6 == 0) or "
                        "barn-train (the other 250); with --suite and no --tier, only suites run")
    p.add_argument("--protocol", choices=["barn", "ours"], default="barn",
                   help="how suite episodes are judged: barn (1 m goal radius, 100 s, score "
                        "with v_ref 2 m/s; default) or ours (0.25 m, 50 s, v_ref = v_max)")
    p.add_argument("--episodes", type=int, default=20,
                   help="episodes per tier, per world file and per suite world (default 20)")
    p.add_argument("--seed", type=int, default=0, help="benchmark seed (default 0)")
    p.add_argument("--robot", metavar="PROFILE", default="",
                   help="robot profile (config/robots/NAME.yaml, or a YAML path) the env, "
                        "its simulated lidar and the planners use (default config/robot.yaml)")
    p.add_argument("--model", action="append",
                   help="ONNX model for the learned planner: FILE or NAME=FILE")
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default min(2, CPUs))")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run episodes on Ray: a cluster address, 'auto', or 'local'")
    p.add_argument("--global-path", action="store_true",
                   help="give planners the A* path to the goal (default: goal only)")
    p.add_argument("--safety-layer", nargs="?", const="approach", default="",
                   choices=["approach", "zones"], metavar="MODEL",
                   help="send every planner's command through the local planner node's safety "
                        "layer with collision model MODEL (approach, the node's default, or "
                        "zones; default margins), as a robot running the node executes it")
    p.add_argument("--backend", choices=["pybullet", "mujoco"], default="pybullet",
                   help="simulator backend of the episodes (default pybullet, the engine of the "
                        "published tables; mujoco gives the same episodes, faster)")
    p.add_argument("--json", metavar="FILE|-", help="write the results as JSON ('-' = stdout)")
    p.add_argument("--out", metavar="DIR", help="report folder (default out/bench/<timestamp>)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_bench)


def _add_metrics(sub: Any) -> None:
    p = sub.add_parser("metrics", help="score a recorded run (MCAP bag)",
                       description="Score a recorded run (Gazebo or a real robot) from an MCAP "
                                   "bag with the benchmark's metrics.")
    p.add_argument("--bag", required=True, help="ROS 2 MCAP file with nav_msgs/Odometry")
    p.add_argument("--goal", metavar="X,Y",
                   help="goal in the odometry frame (use --goal=-1,2 for negative x); default: "
                        "the last step goal of the mission the bag recorded (/mission_status)")
    p.add_argument("--world", help="world YAML (collisions by clearance, A* shortest path)")
    p.add_argument("--goal-tolerance", type=float, default=None,
                   help="metres (default: the mission executor's, from the bag, with the "
                        "mission's goal; else 0.25, the benchmark's)")
    p.add_argument("--odom-topic", help="odometry topic (default: the one ending in 'odom')")
    p.add_argument("--robot-radius", type=float, help="metres (default: config/robot.yaml)")
    p.add_argument("--v-ref", type=float, help="BARN reference speed (default: robot v_max)")
    p.add_argument("--json", metavar="FILE|-", help="write the metrics as JSON ('-' = stdout)")
    p.set_defaults(func=run_metrics)


def _add_export_sdf(sub: Any) -> None:
    p = sub.add_parser("export-sdf", help="benchmark worlds as Gazebo SDF 1.9",
                       description="Write the benchmark's worlds (same seeds as `bench`) as "
                                   "SDF 1.9 worlds with world YAML sidecars.")
    p.add_argument("--tier", action="append",
                   help="easy, medium, hard, dynamic, crowd; repeat or comma-separate "
                        "(default: all)")
    p.add_argument("--seed", type=int, default=0, help="benchmark seed (default 0)")
    p.add_argument("--count", type=int, default=20, help="worlds per tier (default 20)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.set_defaults(func=run_export_sdf)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register bench, metrics and export-sdf."""
    _add_bench(sub)
    _add_metrics(sub)
    _add_export_sdf(sub)


def _executor_default_tolerance() -> float:
    """mission_executor_node's arrival_tolerance in the shipped config/nav_policy.yaml (read
    from the file: the benchmark sits below nav_policy.ros in the package layers)."""
    import yaml

    from nav_policy.paths import config_path

    path = config_path("nav_policy.yaml")
    try:
        node = yaml.safe_load(path.read_text())["mission_executor_node"]["ros__parameters"]
        return float(node["arrival_tolerance"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"cannot read mission_executor_node.arrival_tolerance from {path}: "
                          f"{exc}; give --goal-tolerance") from exc
