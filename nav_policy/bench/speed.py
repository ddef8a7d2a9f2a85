"""Env speed benchmark: LocalNav-v0 steps per second against each backend's bare floor.

    python -m nav_policy.bench.speed [--steps 3000] [--tier medium] [--repeats 3] [--json FILE]
        [--backends mujoco,pybullet] [--modes kinematic,physics] [--world-pool 32]
        [--ppo-steps 4096] [--reset-samples 200]

For each backend and motion mode it supports (MuJoCo: kinematic; PyBullet: kinematic and
physics), with uniformly random actions, it measures:

- env, 1 process: `gym.make("nav_policy/LocalNav-v0")` exactly as users get it (all wrappers),
  episodes ended by collisions, goals or the time limit and reset as they end.
- env, W workers: stable-baselines3 SubprocVecEnv (pipes and auto-reset included), aggregate
  steps/s of all workers.
- floor: the engine calls an env step makes, with nothing of ours around them and every
  argument precomputed outside the timed loop, in the same scenes (built by Simulator.load_world
  from the same tier's generated worlds). Kinematic: resetBasePositionAndOrientation (robot,
  moving obstacles) + performCollisionDetection + getContactPoints + rayTestBatch. Physics:
  setJointMotorControlArray + (physics_hz / control_hz) x stepSimulation +
  getBasePositionAndOrientation + getBaseVelocity + the moving obstacles' reset +
  performCollisionDetection + getContactPoints + rayTestBatch. MuJoCo (kinematic): the robot's
  qpos and the moving slots' geom_pos written + mj_kinematics + mj_collision + one mj_multiRay.
  With W workers the floor runs in W processes at once.
- IPC: the same SubprocVecEnv around an env that does nothing (same observation and action
  shapes), i.e. what stable-baselines3's pipes cost per step whatever the env. With W > 1
  workers, floor + IPC is the least any SubprocVecEnv of PyBullet envs can cost.

Episodes draw their worlds from a warm world pool (`--world-pool N` worlds of the tier,
generated before timing into `--world-pool-dir`; 0 = a fresh world per episode, as training
does by default), so "with resets" measures the reset itself, not world generation.

Also, per backend: reset time p50/p99 (`env.reset()` on the warm pool, and with a fresh world
generated per reset), and SB3 PPO training throughput for the shipped recipe
(config/train_local.yaml: its n_envs, vec env, network and PPO hyperparameters, first curriculum
stage, no world pool, as `nav-policy train local` runs it): env steps per second of
`model.learn(--ppo-steps)`, updates included, split into rollout collection and updates.

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
    backend: str
    mode: str
    workers: int
    envs_per_worker: int
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


def floor_run(mode: str, tier: str, steps: int, seed: int = 0, backend: str = "pybullet") -> Run:
    """The bare engine calls of `steps` env steps (see the module docstring).

    Like the env's episodes, the robot is put back at rest every FLOOR_EPISODE steps (untimed),
    so in physics mode it never ends up stuck (and asleep) against an obstacle; its wheel
    speeds are those of uniformly random actions.
    """
    if backend == "mujoco":
        return _mujoco_floor_run(tier, steps, seed)
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


def _mujoco_floor_run(tier: str, steps: int, seed: int) -> Run:
    """The MuJoCo calls of `steps` kinematic env steps, arguments precomputed."""
    import mujoco

    from nav_policy.sim.mujoco_backend import _RAY_GROUPS
    from nav_policy.sim.robot import load_robot_spec
    from nav_policy.sim.simulator import make_simulator

    robot = load_robot_spec()
    sim: Any = make_simulator(robot, "mujoco")
    lid = robot.lidar
    wall = cpu = 0.0
    done = 0
    for world, plan in _floor_plan(tier, steps, seed):
        sim.load_world(world)
        sim.reset(tuple(plan["poses"][0]))
        sc = sim._scene
        m, d = sc.model, sc.data
        qpos, vecs, pnts = [], [], []
        for x, y, yaw in plan["poses"]:
            qpos.append(np.array([x, y, 0.0, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]))
            a = yaw + sim.beam_angles
            vecs.append(np.column_stack([np.cos(a), np.sin(a), np.zeros_like(a)]).ravel())
            pnts.append(np.array([x, y, lid.height]))
        movers = [[np.asarray(p, dtype=float) for p in row] for row in plan["movers"]]
        slots = list(sim._moving_slots)
        n = len(sim.beam_angles)
        geomid, dist = np.zeros(n, dtype=np.int32), np.zeros(n)
        body, rmax = sc.robot_body, lid.range_max
        n_poses = len(qpos)
        gpos, q = m.geom_pos, d.qpos
        kin, coll, ray = mujoco.mj_kinematics, mujoco.mj_collision, mujoco.mj_multiRay
        for first in range(0, plan["steps"], FLOOR_EPISODE):
            last = min(first + FLOOR_EPISODE, plan["steps"])
            w0, c0 = time.perf_counter(), time.process_time()
            for i in range(first, last):
                k = i % n_poses
                q[:7] = qpos[k]
                for slot, pos in zip(slots, movers[i]):
                    gpos[slot] = pos
                kin(m, d)
                coll(m, d)
                ray(m, d, pnts[k], vecs[k], _RAY_GROUPS, 1, body, geomid, dist, None, n, rmax)
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
        done += plan["steps"]
    sim.close()
    return Run(steps=done, workers=1, wall=wall, cpu=cpu)


def _floor_worker(mode: str, tier: str, steps: int, seed: int, backend: str, barrier: Any,
                  out: Any) -> None:
    barrier.wait()
    out.put(floor_run(mode, tier, steps, seed, backend))


def floor_run_parallel(mode: str, tier: str, steps: int, workers: int,
                       backend: str = "pybullet") -> Run:
    """`workers` floor processes at the same time, `steps` in all."""
    if workers == 1:
        return floor_run(mode, tier, steps, backend=backend)
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx: Any = mp.get_context(method)
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_floor_worker,
                         args=(mode, tier, steps // workers, 1000 * k, backend, barrier, out))
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
def _env_kwargs(mode: str, tier: str, backend: str, pool: tuple[int, str | None]) -> dict[str, Any]:
    kw: dict[str, Any] = {"tier": tier, "motion_mode": mode, "backend": backend}
    if pool[0]:
        kw |= {"world_pool": pool[0], "world_pool_dir": pool[1]}
    return kw


def env_run(mode: str, tier: str, steps: int, seed: int = 0, backend: str = "pybullet",
            pool: tuple[int, str | None] = (0, None)) -> Run:
    """`steps` random-action steps of one env in this process."""
    env = TimedEnv(gym.make(LOCAL_NAV_ID, **_env_kwargs(mode, tier, backend, pool)))
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


class _EnvFn:
    """A picklable env factory for the vec envs' workers (TimedEnv around LocalNav-v0)."""

    def __init__(self, kwargs: dict[str, Any] | None, seed: int) -> None:
        self.kwargs, self.seed = kwargs, seed

    def __call__(self) -> gym.Env:
        import nav_policy  # noqa: F401 - registers the env in the worker

        env = TimedEnv(NullEnv() if self.kwargs is None else gym.make(LOCAL_NAV_ID, **self.kwargs))
        env.reset(seed=self.seed)
        return env


def vec_env_run(mode: str, tier: str, steps: int, workers: int, seed: int = 0,
                null: bool = False, backend: str = "pybullet",
                pool: tuple[int, str | None] = (0, None), per_worker: int = 1) -> Run:
    """`steps` random-action steps in all of a vec env of `workers` processes (NullEnvs if
    `null`): SB3's SubprocVecEnv (one env per process) when per_worker is 1, else a
    BatchedSubprocVecEnv of per_worker envs per process."""
    from stable_baselines3.common.vec_env import SubprocVecEnv

    from nav_policy.envs.vec import BatchedSubprocVecEnv

    kw = None if null else _env_kwargs(mode, tier, backend, pool)
    n_envs = workers * per_worker
    fns = [_EnvFn(kw, seed + k) for k in range(n_envs)]
    venv: Any = SubprocVecEnv(fns) if per_worker == 1 else BatchedSubprocVecEnv(fns, workers)
    n = steps // n_envs
    actions = np.random.default_rng(seed).uniform(-1, 1, (n, n_envs, 2)).astype(np.float32)
    venv.reset()
    venv.env_method("clear")
    first = list(range(0, n_envs, per_worker))  # one env per process: its CPU clock
    worker_cpu0 = venv.env_method("cpu_seconds", indices=first)
    w0, c0 = time.perf_counter(), time.process_time()
    for a in actions:
        venv.step(a)
    wall, main_cpu = time.perf_counter() - w0, time.process_time() - c0
    worker_cpu = sum(b - a for a, b in zip(worker_cpu0,
                                           venv.env_method("cpu_seconds", indices=first)))
    run = Run(steps=n * n_envs, workers=workers, wall=wall, cpu=main_cpu + worker_cpu,
              resets=int(sum(venv.get_attr("resets"))),
              reset_wall=float(sum(venv.get_attr("reset_wall"))),
              reset_cpu=float(sum(venv.get_attr("reset_cpu"))), main_cpu=main_cpu,
              step_cpu=float(sum(venv.get_attr("step_cpu"))))
    venv.close()
    return run


def measure(mode: str, tier: str, steps: int, workers: int, repeats: int,
            backend: str = "pybullet", pool: tuple[int, str | None] = (0, None),
            per_worker: int = 1) -> Result:
    floors: list[Run] = []
    envs: list[Run] = []
    ipcs: list[Run] = []
    for r in range(repeats):
        floors.append(floor_run_parallel(mode, tier, steps, workers, backend))
        if workers == 1:
            envs.append(env_run(mode, tier, steps, seed=r, backend=backend, pool=pool))
        else:
            envs.append(vec_env_run(mode, tier, steps, workers, seed=r, backend=backend,
                                    pool=pool, per_worker=per_worker))
            ipcs.append(vec_env_run(mode, tier, steps, workers, seed=r, null=True,
                                    per_worker=per_worker))
    best = min(envs, key=lambda e: e.cpu_us)
    resets = sum(e.resets for e in envs)
    return Result(
        backend=backend, mode=mode, workers=workers, envs_per_worker=per_worker,
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


# ---- resets ------------------------------------------------------------------------------------
def reset_times(backend: str, mode: str, tier: str, samples: int,
                pool: tuple[int, str | None]) -> dict[str, Any]:
    """env.reset() wall times (ms): on the warm pool (`samples` resets) and with a fresh world
    generated per reset (samples // 10 of them, at least 5)."""
    out: dict[str, Any] = {"backend": backend, "mode": mode, "tier": tier}
    for name, kw_pool, n in (("pool", pool, samples), ("fresh", (0, None), max(5, samples // 10))):
        if name == "pool" and not pool[0]:
            continue
        env = gym.make(LOCAL_NAV_ID, **_env_kwargs(mode, tier, backend, kw_pool))
        if name == "pool":
            env.unwrapped.pool.fill([tier])  # warm: every pool world in memory
        env.reset(seed=0)
        ts = []
        for k in range(n):
            t0 = time.perf_counter()
            env.reset(seed=k + 1)
            ts.append(time.perf_counter() - t0)
        env.close()
        ms = 1e3 * np.asarray(ts)
        out[name] = {"n": n, "p50_ms": float(np.percentile(ms, 50)),
                     "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean())}
    return out


# ---- PPO ---------------------------------------------------------------------------------------
def ppo_throughput(backend: str, steps: int, config: str, seed: int = 0,
                   pool: tuple[int, str | None] = (0, None),
                   batched: bool = False) -> dict[str, Any]:
    """Env steps/s of SB3 PPO `learn` for the recipe in `config` on `backend` (see the module
    docstring), with the time split into rollout collection and the updates. `pool` and
    `batched` (BatchedSubprocVecEnv over min(n_envs, cores) processes) are the variant beyond
    the recipe."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import (
        DummyVecEnv,
        SubprocVecEnv,
        VecNormalize,
    )

    from nav_policy.training.config import load_config
    from nav_policy.training.local_rl import _make_env

    cfg = load_config(config)
    if cfg.algo != "ppo" or cfg.policy_features != "raw" or cfg.bc_init or cfg.init_from:
        raise ValueError(f"{config}: the PPO benchmark takes a plain ppo recipe")
    torch.set_num_threads(1)
    stage = cfg.stage_at(0)
    kw = {**cfg.env, "backend": backend, "tier": list(stage.tiers),
          "tier_weights": list(stage.tiers.values())}
    if pool[0]:
        from nav_policy.sim.pool import WorldPool
        from nav_policy.sim.robot import load_robot_spec

        WorldPool(pool[0], load_robot_spec().radius, pool[1]).fill(list(stage.tiers))  # warm
        kw |= {"world_pool": pool[0], "world_pool_dir": pool[1]}
    fns = [_make_env(kw, r, seed) for r in range(cfg.n_envs)]
    if batched:
        from nav_policy.envs.vec import BatchedSubprocVecEnv

        venv: Any = BatchedSubprocVecEnv(fns, min(cfg.n_envs, os.cpu_count() or 1))
    elif cfg.vec_env == "subproc" and cfg.n_envs > 1:
        venv = SubprocVecEnv(fns)
    else:
        venv = DummyVecEnv(fns)
    venv = VecNormalize(venv, norm_obs=True, norm_reward=True, clip_obs=10.0, gamma=cfg.ppo.gamma)
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU}[cfg.activation]
    arch = list(cfg.net_arch)
    model = PPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0,
                policy_kwargs={"net_arch": {"pi": arch, "vf": arch}, "activation_fn": act},
                **cfg.ppo.model_dump())

    class Clock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.rollout = 0.0
            self._t = 0.0

        def _on_rollout_start(self) -> None:
            self._t = time.perf_counter()

        def _on_rollout_end(self) -> None:
            self.rollout += time.perf_counter() - self._t

        def _on_step(self) -> bool:
            return True

    clock = Clock()
    t0, c0 = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=steps, callback=clock)
    wall = time.perf_counter() - t0
    done = int(model.num_timesteps)
    venv.close()
    variant = "recipe" + (f" + world_pool {pool[0]}" if pool[0] else "") + \
        (" + batched vec env" if batched else "")
    return {"backend": backend, "variant": variant, "config": config, "steps": done,
            "n_envs": cfg.n_envs,
            "wall_s": wall, "steps_per_s": done / wall, "rollout_s": clock.rollout,
            "update_s": wall - clock.rollout, "rollout_steps_per_s": done / clock.rollout,
            "main_cpu_s": time.process_time() - c0}


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
    head = ("| backend | mode | workers x envs | steps/s, step | steps/s, with resets | floor steps/s "
            "| overhead (wall) | CPU us/step (main) | of which in step() "
            "| floor CPU us/step | IPC CPU us/step "
            "| overhead (CPU) | vs floor + IPC | CPU-bound steps/s | resets / 1k steps "
            "| ms / reset |")
    rows = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        multi = r.workers > 1
        rows.append(f"| {r.backend} | {r.mode} | {r.workers} x {r.envs_per_worker} | {r.env_step_sps:,.0f} | {r.env_total_sps:,.0f} "
                    f"| {r.floor_sps:,.0f} | {r.overhead_wall:.2f}x | {r.env_cpu_us:,.0f}"
                    + (f" ({r.env_main_cpu_us:,.0f})" if multi else "")
                    + f" | {r.env_in_step_cpu_us:,.0f} | {r.floor_cpu_us:,.0f} | " + (f"{r.ipc_cpu_us:,.0f}" if multi else "-")
                    + f" | {r.overhead_cpu:.2f}x | "
                    + (f"{r.overhead_cpu_ipc:.2f}x" if multi else "-")
                    + f" | {r.cpu_bound_sps:,.0f} | {r.resets_per_1k:.1f} | {r.reset_ms:.1f} |")
    return "\n".join(rows)


def ratios(results: list[Result]) -> list[dict[str, Any]]:
    """MuJoCo against PyBullet (kinematic), per worker count, from the same run."""
    by = {(r.backend, r.mode, r.workers, r.envs_per_worker): r for r in results}
    out = []
    for (b, m, w, k), r in sorted(by.items()):
        other = by.get(("pybullet", m, w, k))
        if b == "mujoco" and other is not None:
            out.append({"mode": m, "workers": w, "envs_per_worker": k,
                        "step_sps_ratio": r.env_step_sps / other.env_step_sps,
                        "total_sps_ratio": r.env_total_sps / other.env_total_sps,
                        "cpu_ratio": other.env_cpu_us / r.env_cpu_us})
    return out


def reset_table(rows: list[dict[str, Any]]) -> str:
    out = ["| backend | mode | warm pool p50 ms | p99 ms | n | fresh world p50 ms | p99 ms | n |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        p, f = r.get("pool", {}), r.get("fresh", {})
        out.append(f"| {r['backend']} | {r['mode']} | {p.get('p50_ms', float('nan')):.2f} "
                   f"| {p.get('p99_ms', float('nan')):.2f} | {p.get('n', 0)} "
                   f"| {f.get('p50_ms', float('nan')):.1f} | {f.get('p99_ms', float('nan')):.1f} "
                   f"| {f.get('n', 0)} |")
    return "\n".join(out)


def ppo_table(rows: list[dict[str, Any]]) -> str:
    out = ["| backend | variant | steps | n_envs | learn steps/s | wall s | rollout s | update s "
           "| rollout steps/s |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['backend']} | {r.get('variant', 'recipe')} | {r['steps']} | {r['n_envs']} | {r['steps_per_s']:,.0f} "
                   f"| {r['wall_s']:.1f} | {r['rollout_s']:.1f} | {r['update_s']:.1f} "
                   f"| {r['rollout_steps_per_s']:,.0f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from nav_policy.sim.simulator import BACKENDS

    parser = argparse.ArgumentParser(prog="python -m nav_policy.bench.speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, help="env steps per measurement")
    parser.add_argument("--tier", default="medium", help="world tier (easy|medium|hard|dynamic)")
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="comma-separated sim backends (mujoco runs kinematic mode only)")
    parser.add_argument("--modes", default=",".join(MOTION_MODES), help="comma-separated modes")
    parser.add_argument("--workers", type=int, default=2, help="SubprocVecEnv workers")
    parser.add_argument("--envs-per-worker", type=int, default=8,
                        help="also measure a BatchedSubprocVecEnv with this many envs in each "
                        "of the --workers processes (1: SubprocVecEnv only)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (best is kept)")
    parser.add_argument("--world-pool", type=int, default=32,
                        help="pooled worlds per tier for the env runs (0: a fresh world per "
                        "episode)")
    parser.add_argument("--world-pool-dir", default="~/.cache/nav_policy/worlds",
                        help="where pooled worlds are kept (generated once, loaded after)")
    parser.add_argument("--reset-samples", type=int, default=200,
                        help="resets timed per backend on the warm pool (0: skip)")
    parser.add_argument("--ppo-steps", type=int, default=4096,
                        help="PPO learn steps per backend (0: skip)")
    parser.add_argument("--ppo-config", default="config/train_local.yaml",
                        help="the recipe whose PPO throughput is measured")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-': stdout)")
    args = parser.parse_args(argv)
    command = " ".join(["python -m nav_policy.bench.speed", *(sys.argv[1:] if argv is None else argv)])
    backends = [b for b in args.backends.split(",") if b]
    for b in backends:
        if b not in BACKENDS:
            parser.error(f"unknown backend {b!r}; expected one of {BACKENDS}")
    info, load_start = machine(), load()
    print(f"# {command}\n# {info}", file=sys.stderr)
    pool = (args.world_pool, os.path.expanduser(args.world_pool_dir) if args.world_pool else None)
    if pool[0]:
        from nav_policy.sim.pool import WorldPool
        from nav_policy.sim.robot import load_robot_spec

        t0 = time.perf_counter()
        wp = WorldPool(pool[0], load_robot_spec().radius, pool[1])
        wp.fill([args.tier])
        print(f"  world pool: {pool[0]} {args.tier} worlds in {pool[1]} ({wp.generated} "
              f"generated, {wp.loaded} loaded, {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    combos = [(b, m) for b in backends for m in args.modes.split(",")
              if not (b == "mujoco" and m != "kinematic")]
    results = []
    for backend, mode in combos:
        layouts = [(1, 1)] + ([(args.workers, 1)] if args.workers > 1 else [])
        if args.envs_per_worker > 1:
            layouts.append((args.workers, args.envs_per_worker))
        for workers, per in layouts:
            res = measure(mode, args.tier, args.steps, workers, args.repeats, backend, pool, per)
            print(f"  {backend} {mode}, {workers} x {per}: {res.env_step_sps:,.0f} steps/s, "
                  f"{res.env_cpu_us:,.0f} CPU us/step (floor {res.floor_cpu_us:,.0f})",
                  file=sys.stderr)
            results.append(res)
    resets = []
    if args.reset_samples:
        for backend, mode in combos:
            resets.append(reset_times(backend, mode, args.tier, args.reset_samples, pool))
            print(f"  reset {backend} {mode}: {resets[-1]}", file=sys.stderr)
    ppo = []
    if args.ppo_steps:
        variants = [(b, (0, None), False) for b in backends]
        if "mujoco" in backends and pool[0]:
            variants.append(("mujoco", pool, True))
        for backend, ppool, batched in variants:
            ppo.append(ppo_throughput(backend, args.ppo_steps, args.ppo_config, pool=ppool,
                                      batched=batched))
            print(f"  ppo {backend} ({ppo[-1]['variant']}): {ppo[-1]['steps_per_s']:,.0f} "
                  "steps/s", file=sys.stderr)
    report = {"command": command, "machine": info, "load_average": [load_start, load()],
              "tier": args.tier, "steps": args.steps, "repeats": args.repeats,
              "world_pool": args.world_pool, "backends": backends,
              "versions": _versions(backends),
              "results": [r.as_dict() for r in results], "mujoco_vs_pybullet": ratios(results),
              "resets": resets, "ppo": ppo}
    if args.json == "-":
        print(json.dumps(report))
        return 0
    print(f"`{command}`: tier {args.tier}, {args.steps} steps per figure, best of "
          f"{args.repeats}, world pool {args.world_pool}; {info}; 1-min load average "
          f"{load_start} at the start, {load()} at the end.\n\n{table(results)}")
    for r in ratios(results):
        print(f"\nmujoco / pybullet ({r['mode']}, {r['workers']} x {r['envs_per_worker']}): "
              f"{r['step_sps_ratio']:.1f}x steps/s, {r['total_sps_ratio']:.1f}x with resets, "
              f"{r['cpu_ratio']:.1f}x less CPU per step")
    if resets:
        print(f"\nResets ({args.tier}):\n\n{reset_table(resets)}")
    if ppo:
        print(f"\nPPO learn ({args.ppo_config}):\n\n{ppo_table(ppo)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


def _versions(backends: list[str]) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("mujoco", "pybullet", "stable-baselines3", "torch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


if __name__ == "__main__":
    sys.exit(main())
