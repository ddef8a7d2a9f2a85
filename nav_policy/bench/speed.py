"""Env speed benchmark: LocalNav-v0 steps per second against the bare PyBullet floor.

    python -m nav_policy.bench.speed [--steps 3000] [--tier medium] [--repeats 3] [--json FILE]

For each motion mode (kinematic, physics), with uniformly random actions, it measures:

- env, 1 process: `gym.make("nav_policy/LocalNav-v0")` exactly as users get it (all wrappers),
  episodes ended by collisions, goals or the time limit and reset as they end.
- env, W workers: stable-baselines3 SubprocVecEnv (pipes and auto-reset included), aggregate
  steps/s of all workers.
- floor: the PyBullet calls an env step makes, with nothing of ours around them and every
  argument precomputed outside the timed loop, in the same scenes (built by Simulator.load_world
  from the same tier's generated worlds). Kinematic: resetBasePositionAndOrientation (robot,
  moving obstacles) + performCollisionDetection + getContactPoints + rayTestBatch. Physics:
  setJointMotorControlArray + (physics_hz / control_hz) x stepSimulation +
  getBasePositionAndOrientation + getBaseVelocity + the moving obstacles' reset +
  performCollisionDetection + getContactPoints + rayTestBatch. With W workers the floor runs in
  W processes at once.
- IPC: the same SubprocVecEnv around an env that does nothing (same observation and action
  shapes), i.e. what stable-baselines3's pipes cost per step whatever the env. With W > 1
  workers, floor + IPC is the least any SubprocVecEnv of PyBullet envs can cost.

Figures, each the best of `repeats` runs (floor and env alternate within a repeat):

- steps/s "step": resets excluded (each worker's reset time is taken off the wall time);
  "with resets": total steps over wall time, so world generation, scene rebuild and grid
  analysis at every reset are included.
- CPU us/step: CPU time of every process involved (the main process and the workers) per step,
  resets excluded. Unlike wall time this barely depends on other load on the machine.
- overhead = ours / floor, per step, in wall time and in CPU time (target <= 1.5); with
  W > 1 also ours / (floor + IPC), in CPU time.
- CPU-bound steps/s = min(W, cores) / CPU time per step: what the CPUs allow when nothing else
  runs (an upper bound: it assumes the main process and the workers pack the cores perfectly).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from nav_policy.envs.registration import LOCAL_NAV_ID
from nav_policy.sim.simulator import MOTION_MODES

FLOOR_WORLDS = 4  # generated worlds the floor cycles through (like an env's episodes)
FLOOR_POSES = 100  # distinct robot poses per world (their ray lists are precomputed)
FLOOR_EPISODE = 100  # floor steps between (untimed) robot resets, about an env episode


# ---- timing wrapper (used in-process and inside SubprocVecEnv workers) -----------------------
class TimedEnv(gym.Wrapper[np.ndarray, np.ndarray, np.ndarray, np.ndarray]):
    """Counts resets, accumulates their wall and CPU time, and the CPU time inside step()."""

    def __init__(self, env: gym.Env[np.ndarray, np.ndarray]) -> None:
        super().__init__(env)
        self.resets = 0
        self.reset_wall = 0.0
        self.reset_cpu = 0.0
        self.step_cpu = 0.0

    def step(self, action: np.ndarray) -> tuple[np.ndarray, Any, bool, bool, dict[str, Any]]:
        cpu = time.process_time()
        out = self.env.step(action)
        self.step_cpu += time.process_time() - cpu
        return out

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        wall, cpu = time.perf_counter(), time.process_time()
        out = self.env.reset(seed=seed, options=options)
        self.reset_wall += time.perf_counter() - wall
        self.reset_cpu += time.process_time() - cpu
        self.resets += 1
        return out

    def clear(self) -> None:
        self.resets, self.reset_wall, self.reset_cpu, self.step_cpu = 0, 0.0, 0.0, 0.0

    def cpu_seconds(self) -> float:
        """CPU time of the process holding this env (a worker's, in a SubprocVecEnv)."""
        return time.process_time()


class NullEnv(gym.Env[np.ndarray, np.ndarray]):
    """LocalNav-v0's spaces and nothing else: measures what a SubprocVecEnv's pipes cost."""

    def __init__(self, obs_size: int = 67) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_size,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._obs = np.zeros(obs_size, dtype=np.float32)
        self._info = {"reward_terms": dict.fromkeys(("progress", "goal", "collision", "proximity",
                                                     "step", "smoothness"), 0.0),
                      "is_success": False, "collision": False, "distance_to_goal": 0.0,
                      "clearance": 0.0, "time": 0.0, "world": "null", "tier": "null"}

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return self._obs.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return self._obs.copy(), 0.0, False, False, dict(self._info)


@dataclass
class Run:
    """One measurement: totals over all processes involved."""

    steps: int
    workers: int
    wall: float
    cpu: float
    resets: int = 0
    reset_wall: float = 0.0  # summed over workers
    reset_cpu: float = 0.0
    main_cpu: float = 0.0  # the part of `cpu` spent in the main process (vec envs)
    step_cpu: float = 0.0  # the part of `cpu` spent inside the envs' step()

    @property
    def step_sps(self) -> float:
        return self.steps / (self.wall - self.reset_wall / self.workers)

    @property
    def total_sps(self) -> float:
        return self.steps / self.wall

    @property
    def cpu_us(self) -> float:
        return 1e6 * (self.cpu - self.reset_cpu) / self.steps


@dataclass
class Result:
    mode: str
    workers: int
    env_step_sps: float
    env_total_sps: float
    env_cpu_us: float
    floor_sps: float
    floor_cpu_us: float
    ipc_cpu_us: float  # SubprocVecEnv pipes per step, main + workers (0 for one env)
    env_main_cpu_us: float  # of env_cpu_us, the main process's share (0 for one env)
    env_in_step_cpu_us: float  # of env_cpu_us, the part inside the envs' step()
    resets_per_1k: float
    reset_ms: float
    cores: int

    @property
    def overhead_wall(self) -> float:
        return self.floor_sps / self.env_step_sps

    @property
    def overhead_cpu(self) -> float:
        return self.env_cpu_us / self.floor_cpu_us

    @property
    def overhead_cpu_ipc(self) -> float:
        return self.env_cpu_us / (self.floor_cpu_us + self.ipc_cpu_us)

    @property
    def cpu_bound_sps(self) -> float:
        return min(self.workers, self.cores) * 1e6 / self.env_cpu_us

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"overhead_wall": self.overhead_wall,
                               "overhead_cpu": self.overhead_cpu,
                               "overhead_cpu_vs_floor_plus_ipc": self.overhead_cpu_ipc,
                               "cpu_bound_sps": self.cpu_bound_sps}


# ---- floor ---------------------------------------------------------------------------------------
def _poses_along(path: np.ndarray, n: int, step: float) -> np.ndarray:
    """n poses (x, y, yaw) `step` apart along a polyline, back and forth."""
    seg = np.diff(path, axis=0)
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
    total = max(cum[-1], step)
    s = (np.arange(n) * step) % (2 * total)
    s = np.where(s > total, 2 * total - s, s)
    x, y = np.interp(s, cum, path[:, 0]), np.interp(s, cum, path[:, 1])
    yaw = np.arctan2(np.gradient(y), np.gradient(x))
    return np.column_stack([x, y, yaw])


def _floor_plan(tier: str, steps: int, seed: int) -> list[tuple[Any, dict[str, Any]]]:
    """Generated worlds with their precomputed per-step PyBullet arguments."""
    from nav_policy.sim.generate import generate_world
    from nav_policy.sim.robot import load_robot_spec

    robot = load_robot_spec()
    lid = robot.lidar
    angles = lid.angle_min + lid.angle_increment * np.arange(lid.beams)
    per_world = -(-steps // FLOOR_WORLDS)
    plans = []
    for k in range(FLOOR_WORLDS):
        world, maps = generate_world(tier, seed + k, robot.radius)
        poses = _poses_along(maps.path, min(per_world, FLOOR_POSES), step=robot.v_max * 0.1)
        rays = []
        for x, y, yaw in poses:
            a = yaw + angles
            to = np.column_stack([x + lid.range_max * np.cos(a), y + lid.range_max * np.sin(a),
                                  np.full_like(a, lid.height)]).tolist()
            rays.append(([[x, y, lid.height]] * lid.beams, to))
        movers = [[[*m.position(0.1 * i), m.height / 2] for m in world.moving]
                  for i in range(per_world)]
        plans.append((world, {"poses": poses, "rays": rays, "movers": movers,
                              "steps": per_world}))
    return plans


def floor_run(mode: str, tier: str, steps: int, seed: int = 0) -> Run:
    """The bare PyBullet calls of `steps` env steps (see the module docstring).

    Like the env's episodes, the robot is put back at rest every FLOOR_EPISODE steps (untimed),
    so in physics mode it never ends up stuck (and asleep) against an obstacle; its wheel
    speeds are those of uniformly random actions.
    """
    import pybullet as p

    from nav_policy.sim.robot import load_robot_spec
    from nav_policy.sim.simulator import Simulator

    robot = load_robot_spec()
    sim = Simulator(robot, motion_mode=mode)
    rng = np.random.default_rng(seed)
    wall = cpu = 0.0
    done = 0
    for world, plan in _floor_plan(tier, steps, seed):
        sim.load_world(world)
        v = rng.uniform(0.0, robot.v_max, plan["steps"])
        w = rng.uniform(-robot.w_max, robot.w_max, plan["steps"])
        half = robot.wheel_separation / 2
        wheel = np.column_stack([v - w * half, v + w * half]) / robot.wheel_radius
        plan["targets"] = wheel.tolist()
        plan["quats"] = [p.getQuaternionFromEuler([0, 0, yaw]) for yaw in plan["poses"][:, 2]]
        plan["base"] = [[x, y, sim._base_z] for x, y in plan["poses"][:, :2]]
        for first in range(0, plan["steps"], FLOOR_EPISODE):
            sim.reset(tuple(plan["poses"][first % len(plan["poses"])]))
            last = min(first + FLOOR_EPISODE, plan["steps"])
            w0, c0 = time.perf_counter(), time.process_time()
            _floor_steps(p, sim, plan, range(first, last))
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
        done += plan["steps"]
    sim.close()
    return Run(steps=done, workers=1, wall=wall, cpu=cpu)


def _floor_steps(p: Any, sim: Any, plan: dict[str, Any], steps: range) -> None:
    """The timed loop of floor_run: PyBullet calls with precomputed arguments only."""
    cid, rid, wheels, moving = sim.client, sim._robot_id, sim._wheels, sim._moving_ids
    kinematic, substeps = sim.motion_mode == "kinematic", sim.substeps
    rays, movers, base, quats = plan["rays"], plan["movers"], plan["base"], plan["quats"]
    targets, n_poses = plan["targets"], len(rays)
    ident, forces = [0, 0, 0, 1], [5.0, 5.0]
    for i in steps:
        k = i % n_poses
        if kinematic:
            p.resetBasePositionAndOrientation(rid, base[k], quats[k], physicsClientId=cid)
        else:
            p.setJointMotorControlArray(rid, wheels, p.VELOCITY_CONTROL, targetVelocities=targets[i],
                                        forces=forces, physicsClientId=cid)
            for _ in range(substeps):
                p.stepSimulation(physicsClientId=cid)
            p.getBasePositionAndOrientation(rid, physicsClientId=cid)
            p.getBaseVelocity(rid, physicsClientId=cid)
        for bid, pos in zip(moving, movers[i]):
            p.resetBasePositionAndOrientation(bid, pos, ident, physicsClientId=cid)
        p.performCollisionDetection(physicsClientId=cid)
        p.getContactPoints(bodyA=rid, physicsClientId=cid)
        p.rayTestBatch(rays[k][0], rays[k][1], numThreads=1, physicsClientId=cid)


def _floor_worker(mode: str, tier: str, steps: int, seed: int, barrier: Any, out: Any) -> None:
    barrier.wait()
    out.put(floor_run(mode, tier, steps, seed))


def floor_run_parallel(mode: str, tier: str, steps: int, workers: int) -> Run:
    """`workers` floor processes at the same time, `steps` in all."""
    if workers == 1:
        return floor_run(mode, tier, steps)
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx: Any = mp.get_context(method)
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_floor_worker,
                         args=(mode, tier, steps // workers, 1000 * k, barrier, out))
             for k in range(workers)]
    for proc in procs:
        proc.start()
    runs: list[Run] = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    # concurrent processes: aggregate rate = sum of rates, i.e. steps over the mean wall time
    total = sum(r.steps for r in runs)
    return Run(steps=total, workers=workers, wall=total / sum(r.steps / r.wall for r in runs),
               cpu=sum(r.cpu for r in runs))


# ---- env ---------------------------------------------------------------------------------------
def env_run(mode: str, tier: str, steps: int, seed: int = 0) -> Run:
    """`steps` random-action steps of one env in this process."""
    env = TimedEnv(gym.make(LOCAL_NAV_ID, tier=tier, motion_mode=mode))
    actions = np.random.default_rng(seed).uniform(-1, 1, (steps, 2)).astype(np.float32)
    env.reset(seed=seed)
    env.clear()
    w0, c0 = time.perf_counter(), time.process_time()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    run = Run(steps=steps, workers=1, wall=time.perf_counter() - w0,
              cpu=time.process_time() - c0, resets=env.resets, reset_wall=env.reset_wall,
              reset_cpu=env.reset_cpu, step_cpu=env.step_cpu)
    env.close()
    return run


def vec_env_run(mode: str, tier: str, steps: int, workers: int, seed: int = 0,
                null: bool = False) -> Run:
    """`steps` random-action steps in all of a SubprocVecEnv of `workers` envs (NullEnvs if
    `null`)."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    # "module:id": each worker imports nav_policy, which registers the id
    env_id: Any = NullEnv if null else f"nav_policy:{LOCAL_NAV_ID}"
    venv = make_vec_env(env_id, n_envs=workers, seed=seed, vec_env_cls=SubprocVecEnv,
                        wrapper_class=TimedEnv,
                        env_kwargs={} if null else {"tier": tier, "motion_mode": mode})
    n = steps // workers
    actions = np.random.default_rng(seed).uniform(-1, 1, (n, workers, 2)).astype(np.float32)
    venv.reset()
    venv.env_method("clear")
    worker_cpu0 = venv.env_method("cpu_seconds")
    w0, c0 = time.perf_counter(), time.process_time()
    for a in actions:
        venv.step(a)
    wall, main_cpu = time.perf_counter() - w0, time.process_time() - c0
    worker_cpu = sum(b - a for a, b in zip(worker_cpu0, venv.env_method("cpu_seconds")))
    run = Run(steps=n * workers, workers=workers, wall=wall, cpu=main_cpu + worker_cpu,
              resets=int(sum(venv.get_attr("resets"))),
              reset_wall=float(sum(venv.get_attr("reset_wall"))),
              reset_cpu=float(sum(venv.get_attr("reset_cpu"))), main_cpu=main_cpu,
              step_cpu=float(sum(venv.get_attr("step_cpu"))))
    venv.close()
    return run


def measure(mode: str, tier: str, steps: int, workers: int, repeats: int) -> Result:
    floors: list[Run] = []
    envs: list[Run] = []
    ipcs: list[Run] = []
    for r in range(repeats):
        floors.append(floor_run_parallel(mode, tier, steps, workers))
        if workers == 1:
            envs.append(env_run(mode, tier, steps, seed=r))
        else:
            envs.append(vec_env_run(mode, tier, steps, workers, seed=r))
            ipcs.append(vec_env_run(mode, tier, steps, workers, seed=r, null=True))
    best = min(envs, key=lambda e: e.cpu_us)
    resets = sum(e.resets for e in envs)
    return Result(
        mode=mode, workers=workers,
        env_step_sps=max(e.step_sps for e in envs),
        env_total_sps=max(e.total_sps for e in envs),
        env_cpu_us=best.cpu_us,
        floor_sps=max(f.step_sps for f in floors),
        floor_cpu_us=min(f.cpu_us for f in floors),
        ipc_cpu_us=min((i.cpu_us for i in ipcs), default=0.0),
        env_main_cpu_us=1e6 * best.main_cpu / best.steps,
        env_in_step_cpu_us=1e6 * best.step_cpu / best.steps,
        resets_per_1k=1000.0 * resets / sum(e.steps for e in envs),
        reset_ms=1000.0 * sum(e.reset_wall for e in envs) / max(resets, 1),
        cores=os.cpu_count() or 1,
    )


# ---- report ------------------------------------------------------------------------------------
def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"


def table(results: list[Result]) -> str:
    head = ("| mode | workers | steps/s, step | steps/s, with resets | floor steps/s "
            "| overhead (wall) | CPU us/step (main) | of which in step() "
            "| floor CPU us/step | IPC CPU us/step "
            "| overhead (CPU) | vs floor + IPC | CPU-bound steps/s | resets / 1k steps "
            "| ms / reset |")
    rows = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        multi = r.workers > 1
        rows.append(f"| {r.mode} | {r.workers} | {r.env_step_sps:,.0f} | {r.env_total_sps:,.0f} "
                    f"| {r.floor_sps:,.0f} | {r.overhead_wall:.2f}x | {r.env_cpu_us:,.0f}"
                    + (f" ({r.env_main_cpu_us:,.0f})" if multi else "")
                    + f" | {r.env_in_step_cpu_us:,.0f} | {r.floor_cpu_us:,.0f} | " + (f"{r.ipc_cpu_us:,.0f}" if multi else "-")
                    + f" | {r.overhead_cpu:.2f}x | "
                    + (f"{r.overhead_cpu_ipc:.2f}x" if multi else "-")
                    + f" | {r.cpu_bound_sps:,.0f} | {r.resets_per_1k:.1f} | {r.reset_ms:.0f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nav_policy.bench.speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, help="env steps per measurement")
    parser.add_argument("--tier", default="medium", help="world tier (easy|medium|hard|dynamic)")
    parser.add_argument("--modes", default=",".join(MOTION_MODES), help="comma-separated modes")
    parser.add_argument("--workers", type=int, default=2, help="SubprocVecEnv workers")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (best is kept)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-': stdout)")
    args = parser.parse_args(argv)
    command = " ".join(["python -m nav_policy.bench.speed", *(sys.argv[1:] if argv is None else argv)])
    info, load_start = machine(), load()
    print(f"# {command}\n# {info}", file=sys.stderr)
    results = []
    for mode in args.modes.split(","):
        for workers in sorted({1, args.workers}):
            res = measure(mode, args.tier, args.steps, workers, args.repeats)
            print(f"  {mode}, {workers} worker(s): {res.env_step_sps:,.0f} steps/s, "
                  f"{res.env_cpu_us:,.0f} CPU us/step (floor {res.floor_cpu_us:,.0f})",
                  file=sys.stderr)
            results.append(res)
    report = {"command": command, "machine": info, "load_average": [load_start, load()],
              "tier": args.tier, "steps": args.steps, "repeats": args.repeats,
              "results": [r.as_dict() for r in results]}
    if args.json == "-":
        print(json.dumps(report))
        return 0
    print(f"`{command}`: tier {args.tier}, {args.steps} steps per figure, best of "
          f"{args.repeats}; {info}; 1-min load average {load_start} at the start, {load()} at "
          f"the end.\n\n{table(results)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
