"""Run benchmark episodes: one planner in one generated world per task, locally or on Ray.

A task (EpisodeTask) is plain picklable data; `run_episode` executes it in whatever process
gets it (the caller, a process-pool worker or a Ray worker) and returns an EpisodeResult whose
metrics are already computed, so the backends cannot change a number. Each episode builds its
planner with seed = the episode's world seed, so results do not depend on which worker ran
which episode. Only `planner.compute` is timed.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np

from nav_policy.bench.metrics import Track, barn_term, clearance_along, episode_metrics
from nav_policy.bench.scenarios import (
    Scenario,
    scenarios,
    suite_scenarios,
    world_scenarios,
)
from nav_policy.distributed import import_ray, ray_start
from nav_policy.errors import ConfigError, ModelError, NavPolicyError
from nav_policy.interrupts import hold_interrupts, ignore_sigint, sigint_blocked
from nav_policy.planners import LEARNED_PLANNERS, PLANNERS
from nav_policy.planners.episode import drive
from nav_policy.sim.robot import RobotSpec, load_robot_spec
from nav_policy.sim.world import World

ENV_ID = "nav_policy/LocalNav-v0"


@dataclass(frozen=True)
class PlannerSpec:
    """A planner to build in a worker: registry name, optional model file, extra parameters."""

    name: str
    model: str | None = None
    params: tuple[tuple[str, Any], ...] = ()


# A factory builds a planner from (spec, robot, seed); the default uses nav_policy.planners.
PlannerFactory = Callable[[PlannerSpec, RobotSpec, int], Any]


@dataclass(frozen=True)
class EpisodeTask:
    planner: PlannerSpec
    scenario: Scenario
    global_path: bool = False
    factory: PlannerFactory | None = None
    safety_layer: str = ""  # "" = off, else the safety layer's collision model (zones, approach)
    trace: bool = False  # keep per-step (v, w, clearance, bearing) in EpisodeResult.trace
    backend: str = "pybullet"  # simulator backend (pybullet | mujoco)
    robot: str = ""  # robot profile name or YAML path; "" = config/robot.yaml


@dataclass
class EpisodeResult:
    """One finished episode: its scores and what the report draws."""

    planner: str
    scenario: Scenario
    world: World
    metrics: dict[str, Any]
    poses: np.ndarray  # (N, 3) x, y, yaw per control step, start included
    compute_us: np.ndarray  # (steps,) planner.compute time per step
    reference_path: np.ndarray  # (K, 2) shortest path (A*, string-pulled)
    # (steps, 4) when the task asked for it: executed v (m/s), w (rad/s), then the clearance
    # (closest lidar return minus the radius, m) and that return's bearing (rad, robot frame)
    # in the frame the command was computed on
    trace: np.ndarray | None = None

    def row(self) -> dict[str, Any]:
        """Flat per-episode record (CSV row, JSON per_episode entry)."""
        sc = self.scenario
        return {"planner": self.planner, "tier": sc.tier, "index": sc.index,
                "world_seed": sc.world_seed, "world": self.world.name, **self.metrics}


@dataclass(frozen=True)
class BenchConfig:
    """Everything that decides a benchmark's episodes and where they run."""

    planners: tuple[PlannerSpec, ...]
    tiers: tuple[str, ...]
    episodes: int
    seed: int
    global_path: bool = False
    workers: int = 1
    ray: str | None = None
    worlds: tuple[str, ...] = ()  # world files, run in addition to the tiers
    safety_layer: str = ""  # every command through the node's SafetyLayer (as served) with
    # this collision model (zones, approach); "" = off
    suites: tuple[str, ...] = ()  # barn-test, barn-train: the converted BARN worlds
    protocol: str = "barn"  # how suite episodes are judged: barn (1 m, 100 s, v_ref 2) or ours
    backend: str = "pybullet"  # simulator backend of the episodes (pybullet | mujoco)
    robot: str = ""  # robot profile (config/robots/NAME.yaml) or YAML path; "" = robot.yaml


# ---- planners ---------------------------------------------------------------------------------


def registered_planners() -> tuple[str, ...]:
    """Names nav_policy.planners can build."""
    return PLANNERS


def check_planner_names(names: Sequence[str]) -> None:
    """Raise ConfigError naming the first unknown planner."""
    known = registered_planners()
    for name in names:
        if name not in known:
            raise ConfigError(f"unknown planner {name!r}; expected one of {', '.join(known)}")


def default_factory(spec: PlannerSpec, robot: RobotSpec, seed: int) -> Any:
    """make_planner(spec.name, robot, model, seed, **params), with a clear error for models."""
    try:
        from nav_policy.planners import make_planner
    except ImportError as exc:
        raise ConfigError(f"planners are not available ({exc})") from exc
    try:
        return make_planner(spec.name, robot=robot, model=spec.model, seed=seed,
                            **dict(spec.params))
    except (NavPolicyError, ImportError) as exc:
        if spec.name not in LEARNED_PLANNERS:
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if reason.startswith(f"planner '{spec.name}'"):
            raise ModelError(reason) from exc
        where = f"model {spec.model}" if spec.model else "no --model given"
        raise ModelError(f"planner '{spec.name}' is not trained yet or its model cannot be "
                         f"loaded ({where}): {reason}") from exc


def build_planner(task: EpisodeTask, robot: RobotSpec) -> Any:
    factory = task.factory or default_factory
    return factory(task.planner, robot, task.scenario.world_seed)


def preflight(specs: Sequence[PlannerSpec], robot: RobotSpec,
              factory: PlannerFactory | None = None) -> None:
    """Build each planner once here, so a missing model fails before any episode runs."""
    for spec in specs:
        (factory or default_factory)(spec, robot, 0)


# ---- one episode (runs in a worker) -----------------------------------------------------------

_WORKER: dict[str, Any] = {}


def protocol_env_kwargs(protocol: str) -> dict[str, Any]:
    """gym.make kwargs of a protocol: ours = the env's defaults (0.25 m, 500 steps = 50 s);
    barn = BARN's goal radius (1 m) and time limit (100 s of simulated time at 10 Hz)."""
    if protocol == "barn":
        from nav_policy.bench.barn import GOAL_RADIUS, TIME_LIMIT_S

        return {"goal_tolerance": GOAL_RADIUS, "max_episode_steps": int(TIME_LIMIT_S * 10)}
    return {}


def _worker_env(protocol: str = "ours", backend: str = "pybullet", robot: str = "") -> Any:
    """This process's env for a protocol on `backend` with a robot profile (built once per
    process and reused across episodes)."""
    key = f"env:{protocol}:{backend}:{robot}"
    if key not in _WORKER:
        import gymnasium as gym

        from nav_policy.envs.registration import register_envs

        register_envs()  # the ids, also in a fresh worker process

        extra = {"robot": _worker_robot(robot)} if robot else {}
        _WORKER[key] = gym.make(ENV_ID, backend=backend, **protocol_env_kwargs(protocol), **extra)
    return _WORKER[key]


def _worker_robot(robot: str = "") -> RobotSpec:
    key = f"robot:{robot}" if robot else "robot"
    if key not in _WORKER:
        _WORKER[key] = load_robot_spec(robot or None)
    return _WORKER[key]


def run_episode(task: EpisodeTask) -> EpisodeResult:
    """Drive one episode to its end (goal, collision or the env's 500-step limit)."""
    sc = task.scenario
    env, robot = _worker_env(sc.protocol, task.backend, task.robot), _worker_robot(task.robot)
    env.reset(seed=sc.world_seed, options=sc.reset_options())
    base = env.unwrapped
    world, maps = base.world, base.maps
    path = maps.path if task.global_path else None
    planner = build_planner(task, robot)
    safety = served_safety_layer(robot, task.safety_layer) if task.safety_layer else None
    trace: list[tuple[float, float, float, float]] = []

    def record(frame: Any, v: float, w: float) -> None:
        trace.append((v, w, *_closest_return(frame, robot.radius)))

    run = drive(env, planner, path=path, command_filter=safety,
                on_step=record if task.trace else None)
    world = base.sim.executed_world()  # pedestrians where they walked (reactive crowds)
    result = _result(task, world, maps.path, np.asarray(base.trajectory, dtype=np.float64),
                     base.sim.dt, run.info, run.compute_ns / 1e3, robot)
    if task.trace:
        result.trace = np.asarray(trace, dtype=np.float64).reshape(-1, 4)
    return result


def _closest_return(frame: Any, radius: float) -> tuple[float, float]:
    """(clearance m, bearing rad) of the frame's closest finite return; (inf, nan) if none."""
    r = np.asarray(frame.ranges, dtype=np.float64)
    finite = np.isfinite(r)
    if not finite.any():
        return math.inf, math.nan
    k = int(np.argmin(np.where(finite, r, np.inf)))
    return float(r[k]) - radius, float(frame.angle_min + k * frame.angle_increment)


def served_safety_layer(robot: RobotSpec, collision_model: str = "approach") -> Any:
    """(frame, v, w, dt) -> (v, w) through the local planner node's SafetyLayer with the node's
    default margins (config/nav_policy.yaml: approach 1.0 s, 0.02 m; zones stop 0.10 m, slow
    0.25 m, 0.05 m lateral margin), the given collision model and the robot's limits: what a
    robot running the node would execute. Not timed as compute."""
    from nav_policy.planners.safety import SafetyConfig, SafetyLayer, ScanGeometry

    layer = SafetyLayer(SafetyConfig(radius=robot.radius, footprint=robot.footprint,
                                     max_vel_x=robot.v_max,
                                     max_vel_theta=robot.w_max, acc_lim_x=robot.acc_v,
                                     acc_lim_theta=robot.acc_w,
                                     collision_model=collision_model))
    geometry = ScanGeometry()

    def apply(frame: Any, v: float, w: float, dt: float) -> tuple[float, float]:
        points = geometry.points(frame.ranges, frame.angle_min, frame.angle_increment,
                                 frame.range_min, frame.range_max, frame.mount)
        out = layer.filter(v, w, points, dt)
        return out.v, out.w

    return apply


def _result(task: EpisodeTask, world: World, ref_path: np.ndarray, traj: np.ndarray, dt: float,
            info: dict[str, Any], compute_us: np.ndarray, robot: RobotSpec) -> EpisodeResult:
    track = Track(t=np.round(np.arange(len(traj)) * dt, 9), xy=traj[:, :2], v=traj[:, 3])
    shortest = world.shortest_path if world.shortest_path is not None else float(
        np.hypot(*np.diff(ref_path, axis=0).T).sum())
    barn = task.scenario.protocol == "barn"
    v_ref = barn_v_ref(task.scenario.protocol, robot)
    metrics = episode_metrics(
        track, success=bool(info.get("is_success")), collision=bool(info.get("collision")),
        shortest_path=float(shortest), clearance=clearance_along(world, track, robot.radius),
        v_ref=v_ref, compute_us=compute_us)
    if barn:  # BARN's clock starts when the robot has moved 0.1 m (run.py)
        moved = np.flatnonzero(np.hypot(*(track.xy - track.xy[0]).T) >= 0.1)
        t_nav = track.duration - (float(track.t[moved[0]] - track.t[0]) if moved.size else 0.0)
        metrics["barn_time_s"] = t_nav
        metrics["barn_score"] = barn_term(metrics["success"], float(shortest), t_nav, v_ref)
        metrics["barn_score_4x"] = barn_term(metrics["success"], float(shortest), t_nav, v_ref,
                                             clip_low=4.0)
    return EpisodeResult(planner=task.planner.name, scenario=task.scenario, world=world,
                         metrics=metrics, poses=traj[:, :3].copy(), compute_us=compute_us,
                         reference_path=np.asarray(ref_path, dtype=np.float64))


# ---- interrupts -------------------------------------------------------------------------------


class BenchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a benchmark: the episodes that had finished (in task order) and how many
    were planned. A KeyboardInterrupt, so code that does not know it still stops."""

    def __init__(self, results: Sequence[EpisodeResult], total: int) -> None:
        super().__init__(f"interrupted after {len(results)} of {total} episodes")
        self.results = list(results)
        self.total = total


def _kill_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a process pool now: queued episodes dropped, running workers terminated."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(3.0)
        if p.is_alive():
            p.kill()
            p.join(1.0)


# ---- backends ---------------------------------------------------------------------------------


class _Progress:
    """A tqdm bar on stderr (or nothing)."""

    def __init__(self, total: int, enabled: bool, desc: str = "bench") -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="ep", file=sys.stderr,
                            dynamic_ncols=True, mininterval=0.5)

    def update(self, result: EpisodeResult) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{result.planner} {result.scenario.key} "
                                     f"{result.metrics['outcome']}", refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _run_inline(tasks: Sequence[EpisodeTask], bar: _Progress,
                done: dict[int, EpisodeResult]) -> None:
    for i, task in enumerate(tasks):
        done[i] = run_episode(task)
        bar.update(done[i])


def _run_pool(tasks: Sequence[EpisodeTask], workers: int, bar: _Progress,
              done: dict[int, EpisodeResult]) -> None:
    ctx = mp.get_context("spawn")  # no fork after torch/onnxruntime threads start
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=ignore_sigint)
    try:
        with sigint_blocked():  # submit spawns the workers: a Ctrl-C mid-spawn would orphan one
            futures = {pool.submit(run_episode, task): i for i, task in enumerate(tasks)}
        for fut in as_completed(futures):
            done[futures[fut]] = fut.result()
            bar.update(done[futures[fut]])
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):  # a second Ctrl-C must not cut the cleanup
            hold_interrupts("writing the finished episodes")
        _kill_pool(pool)  # fail fast, Ctrl-C included: no worker outlives the benchmark
        raise
    pool.shutdown(wait=True)


def _run_ray(tasks: Sequence[EpisodeTask], address: str, num_cpus: int, bar: _Progress,
             done: dict[int, EpisodeResult]) -> None:
    ray = import_ray()
    started = ray_start(ray, address, num_cpus)
    pending: list[Any] = []
    try:
        remote = ray.remote(num_cpus=1)(run_episode)
        refs = [remote.remote(task) for task in tasks]
        index = {ref: i for i, ref in enumerate(refs)}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    done[index[ref]] = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    raise exc.as_instanceof_cause() from None
                bar.update(done[index[ref]])
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            hold_interrupts("writing the finished episodes")
        for ref in pending:  # a shared cluster keeps running: stop this run's episodes there
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


def run_tasks(tasks: Sequence[EpisodeTask], workers: int = 1, ray: str | None = None,
              progress: bool = True) -> list[EpisodeResult]:
    """Run tasks on Ray (`ray` = address, 'auto' or 'local'), a process pool, or inline.

    Ctrl-C stops every backend within seconds (workers included) and raises BenchInterrupted
    with the episodes that had finished."""
    bar = _Progress(len(tasks), progress)
    done: dict[int, EpisodeResult] = {}
    try:
        if ray:
            _run_ray(tasks, ray, max(workers, 1), bar, done)
        elif workers > 1 and len(tasks) > 1:
            _run_pool(tasks, min(workers, len(tasks)), bar, done)
        else:
            _run_inline(tasks, bar, done)
    except KeyboardInterrupt:
        hold_interrupts("writing the finished episodes")
        bar.close()
        raise BenchInterrupted([done[i] for i in sorted(done)], len(tasks)) from None
    finally:
        bar.close()
    return [done[i] for i in range(len(tasks))]


def barn_v_ref(protocol: str, robot: RobotSpec) -> float:
    """The BARN score's reference speed: 2 m/s under the barn protocol, else the robot's v_max."""
    if protocol == "barn":
        from nav_policy.bench.barn import V_REF

        return V_REF
    return robot.v_max


def make_tasks(cfg: BenchConfig, factory: PlannerFactory | None = None) -> list[EpisodeTask]:
    """Every planner on the same scenarios, planner by planner."""
    scs = scenarios(cfg.tiers, cfg.episodes, cfg.seed) if cfg.tiers else []
    if cfg.suites:
        scs += suite_scenarios(cfg.suites, cfg.episodes, cfg.seed, cfg.protocol)
    if cfg.worlds:
        scs += world_scenarios(cfg.worlds, cfg.episodes, cfg.seed, load_robot_spec(cfg.robot or None).radius)
    return [EpisodeTask(spec, sc, cfg.global_path, factory, cfg.safety_layer,
                        backend=cfg.backend, robot=cfg.robot)
            for spec in cfg.planners for sc in scs]


def run_benchmark(cfg: BenchConfig, factory: PlannerFactory | None = None,
                  progress: bool = True) -> dict[str, list[EpisodeResult]]:
    """Run every planner of `cfg` on the same episodes; results grouped by planner name."""
    if factory is None:
        check_planner_names([p.name for p in cfg.planners])
    preflight(cfg.planners, load_robot_spec(cfg.robot or None), factory)
    return group_results(cfg, run_tasks(make_tasks(cfg, factory), cfg.workers, cfg.ray,
                                        progress))


def group_results(cfg: BenchConfig, results: Sequence[EpisodeResult],
                  keep_empty: bool = True) -> dict[str, list[EpisodeResult]]:
    """Results by planner name in cfg's order (without planners that have none, unless
    keep_empty: an interrupted run reports only planners with finished episodes)."""
    grouped: dict[str, list[EpisodeResult]] = {p.name: [] for p in cfg.planners}
    for res in results:
        grouped[res.planner].append(res)
    return grouped if keep_empty else {k: v for k, v in grouped.items() if v}
