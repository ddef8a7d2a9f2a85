"""Run benchmark episodes: one planner in one generated world per task, locally or on Ray.

A task (EpisodeTask) is plain picklable data; `run_episode` executes it in whatever process
gets it (the caller, a process-pool worker or a Ray worker) and returns an EpisodeResult whose
metrics are already computed, so the backends cannot change a number. Each episode builds its
planner with seed = the episode's world seed, so results do not depend on which worker ran
which episode. Only `planner.compute` is timed.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np

from nav_policy.bench.metrics import Track, clearance_along, episode_metrics
from nav_policy.bench.scenarios import Scenario, scenarios, world_scenarios
from nav_policy.errors import ConfigError, ModelError, NavPolicyError
from nav_policy.sim.robot import RobotSpec, load_robot_spec
from nav_policy.sim.world import World

KNOWN_PLANNERS: tuple[str, ...] = ("rl", "ebm", "dwa", "mppi")
LEARNED_PLANNERS: tuple[str, ...] = ("rl", "ebm")
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
    robot: str = ""  # robot profile (config/robots/NAME.yaml) or YAML path; "" = robot.yaml


# ---- planners ---------------------------------------------------------------------------------


def registered_planners() -> tuple[str, ...]:
    """Names nav_policy.planners can build (the documented set if it is not importable)."""
    try:
        from nav_policy.planners import PLANNERS
    except ImportError:
        return KNOWN_PLANNERS
    return tuple(PLANNERS)


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


def _worker_env(robot: str = "") -> Any:
    """This process's env for a robot profile (built once per process and profile, reused
    across episodes)."""
    key = f"env:{robot}" if robot else "env"
    if key not in _WORKER:
        import gymnasium as gym

        from nav_policy.envs.registration import register_envs

        register_envs()  # the ids, also in a fresh worker process

        _WORKER[key] = gym.make(ENV_ID, robot=_worker_robot(robot)) if robot else \
            gym.make(ENV_ID)
    return _WORKER[key]


def _worker_robot(robot: str = "") -> RobotSpec:
    key = f"robot:{robot}" if robot else "robot"
    if key not in _WORKER:
        _WORKER[key] = load_robot_spec(robot or None)
    return _WORKER[key]


def run_episode(task: EpisodeTask) -> EpisodeResult:
    """Drive one episode to its end (goal, collision or the env's 500-step limit)."""
    from nav_policy.codecs import encode_action

    env, robot = _worker_env(task.robot), _worker_robot(task.robot)
    sc = task.scenario
    env.reset(seed=sc.world_seed, options=sc.reset_options())
    base = env.unwrapped
    world, maps = base.world, base.maps
    path = maps.path if task.global_path else None
    planner = build_planner(task, robot)
    planner.reset()
    times_ns: list[int] = []
    done = False
    info: dict[str, Any] = {}
    safety = served_safety_layer(robot, task.safety_layer) if task.safety_layer else None
    trace: list[tuple[float, float, float, float]] = []
    while not done:
        frame = base.sensors(path=path)
        t0 = time.perf_counter_ns()
        v, w = planner.compute(frame)
        times_ns.append(time.perf_counter_ns() - t0)
        if safety is not None:
            v, w = safety(frame, v, w, base.sim.dt)
        if task.trace:
            trace.append((v, w, *_closest_return(frame, robot.radius)))
        _, _, terminated, truncated, info = env.step(encode_action(v, w, base.action_spec))
        done = terminated or truncated
    result = _result(task, world, maps.path, np.asarray(base.trajectory, dtype=np.float64),
                     base.sim.dt, info, np.asarray(times_ns, dtype=np.float64) / 1e3, robot)
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
    metrics = episode_metrics(
        track, success=bool(info.get("is_success")), collision=bool(info.get("collision")),
        shortest_path=float(shortest), clearance=clearance_along(world, track, robot.radius),
        v_ref=robot.v_max, compute_us=compute_us)
    return EpisodeResult(planner=task.planner.name, scenario=task.scenario, world=world,
                         metrics=metrics, poses=traj[:, :3].copy(), compute_us=compute_us,
                         reference_path=np.asarray(ref_path, dtype=np.float64))


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


def _run_inline(tasks: Sequence[EpisodeTask], bar: _Progress) -> list[EpisodeResult]:
    out = []
    for task in tasks:
        out.append(run_episode(task))
        bar.update(out[-1])
    return out


def _run_pool(tasks: Sequence[EpisodeTask], workers: int, bar: _Progress) -> list[EpisodeResult]:
    out: list[EpisodeResult | None] = [None] * len(tasks)
    ctx = mp.get_context("spawn")  # no fork after torch/onnxruntime threads start
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(run_episode, task): i for i, task in enumerate(tasks)}
        try:
            for fut in as_completed(futures):
                out[futures[fut]] = fut.result()
                bar.update(out[futures[fut]])  # type: ignore[arg-type]
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # fail fast: drop queued episodes
            raise
    return out  # type: ignore[return-value]


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--ray needs the optional dependency 'ray' (pip install 'ray>=2.9' "
                          "or the package's [dist] extra)") from exc
    return ray


def _ray_start(ray: Any, address: str, num_cpus: int) -> bool:
    """Connect to (or start) Ray unless already connected; True when this call started it."""
    if ray.is_initialized():
        return False
    try:
        if address == "local":
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot connect to Ray at {address!r}: {first}") from exc
    return True


def _run_ray(tasks: Sequence[EpisodeTask], address: str, num_cpus: int,
             bar: _Progress) -> list[EpisodeResult]:
    ray = _import_ray()
    started = _ray_start(ray, address, num_cpus)
    try:
        remote = ray.remote(num_cpus=1)(run_episode)
        refs = [remote.remote(task) for task in tasks]
        index = {ref: i for i, ref in enumerate(refs)}
        out: list[EpisodeResult | None] = [None] * len(tasks)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    out[index[ref]] = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    raise exc.as_instanceof_cause() from None
                bar.update(out[index[ref]])  # type: ignore[arg-type]
        return out  # type: ignore[return-value]
    finally:
        if started:
            ray.shutdown()


def run_tasks(tasks: Sequence[EpisodeTask], workers: int = 1, ray: str | None = None,
              progress: bool = True) -> list[EpisodeResult]:
    """Run tasks on Ray (`ray` = address, 'auto' or 'local'), a process pool, or inline."""
    bar = _Progress(len(tasks), progress)
    try:
        if ray:
            return _run_ray(tasks, ray, max(workers, 1), bar)
        if workers > 1 and len(tasks) > 1:
            return _run_pool(tasks, min(workers, len(tasks)), bar)
        return _run_inline(tasks, bar)
    finally:
        bar.close()


def make_tasks(cfg: BenchConfig, factory: PlannerFactory | None = None) -> list[EpisodeTask]:
    """Every planner on the same scenarios, planner by planner."""
    scs = scenarios(cfg.tiers, cfg.episodes, cfg.seed) if cfg.tiers else []
    if cfg.worlds:
        scs += world_scenarios(cfg.worlds, cfg.episodes, cfg.seed,
                               load_robot_spec(cfg.robot or None).radius)
    return [EpisodeTask(spec, sc, cfg.global_path, factory, cfg.safety_layer, robot=cfg.robot)
            for spec in cfg.planners for sc in scs]


def run_benchmark(cfg: BenchConfig, factory: PlannerFactory | None = None,
                  progress: bool = True) -> dict[str, list[EpisodeResult]]:
    """Run every planner of `cfg` on the same episodes; results grouped by planner name."""
    if factory is None:
        check_planner_names([p.name for p in cfg.planners])
    preflight(cfg.planners, load_robot_spec(cfg.robot or None), factory)
    results = run_tasks(make_tasks(cfg, factory), cfg.workers, cfg.ray, progress)
    grouped: dict[str, list[EpisodeResult]] = {p.name: [] for p in cfg.planners}
    for res in results:
        grouped[res.planner].append(res)
    return grouped
