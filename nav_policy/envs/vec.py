"""BatchedSubprocVecEnv: several envs per worker process, one pipe round trip per batch.

stable-baselines3's SubprocVecEnv runs one env per process, so every env step pays a pipe
round trip (pickling the observation and info, two context switches): about 100-200 us of CPU,
as much as a whole MuJoCo step. Here `workers` processes each hold a DummyVecEnv of
n_envs / workers envs and step them all on one message, so that cost is paid once per batch.
Semantics are SB3's (auto-reset with `terminal_observation` in the info, `TimeLimit.truncated`,
seeds and options at reset, env_method / get_attr / set_attr reaching each env through its
wrappers), and the envs keep their global order: env i is env i whatever `workers` is.

    venv = BatchedSubprocVecEnv([make_env(i) for i in range(8)], workers=2)
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import (
    CloudpickleWrapper,
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from nav_policy.errors import ConfigError


def _worker(remote: Any, parent: Any, fns: CloudpickleWrapper) -> None:
    """Steps its envs in order on each message; SB3's auto-reset semantics (DummyVecEnv's,
    without its per-step deepcopy of the infos: they are pickled into the pipe anyway)."""
    from stable_baselines3.common.env_util import is_wrapped

    parent.close()
    envs = [fn() for fn in fns.var]
    reset_infos: list[dict[str, Any]] = [{} for _ in envs]
    try:
        while True:
            try:
                cmd, data = remote.recv()
            except EOFError:
                break
            if cmd == "step":
                obs, rews, dones, infos = [], [], [], []
                for k, (env, action) in enumerate(zip(envs, data)):
                    o, r, term, trunc, info = env.step(action)
                    done = term or trunc
                    info["TimeLimit.truncated"] = trunc and not term
                    if done:
                        info["terminal_observation"] = o
                        o, reset_infos[k] = env.reset()
                    obs.append(o)
                    rews.append(r)
                    dones.append(done)
                    infos.append(info)
                remote.send((np.stack(obs), np.asarray(rews, dtype=np.float32),
                             np.asarray(dones, dtype=bool), infos, reset_infos))
            elif cmd == "reset":
                obs = []
                for k, (env, seed, options) in enumerate(zip(envs, *data)):
                    o, reset_infos[k] = env.reset(seed=seed,
                                                  **({"options": options} if options else {}))
                    obs.append(o)
                remote.send((np.stack(obs), reset_infos))
            elif cmd == "env_method":
                name, args, kwargs, idx = data
                remote.send([envs[i].get_wrapper_attr(name)(*args, **kwargs) for i in idx])
            elif cmd == "get_attr":
                remote.send([envs[i].get_wrapper_attr(data[0]) for i in data[1]])
            elif cmd == "set_attr":
                for i in data[2]:
                    setattr(envs[i], data[0], data[1])
                remote.send(None)
            elif cmd == "is_wrapped":
                remote.send([is_wrapped(envs[i], data[0]) for i in data[1]])
            elif cmd == "spaces":
                remote.send((envs[0].observation_space, envs[0].action_space))
            elif cmd == "close":
                break
            else:
                raise NotImplementedError(f"{cmd!r} is not a BatchedSubprocVecEnv command")
    except KeyboardInterrupt:
        pass
    finally:
        for env in envs:
            env.close()
        remote.close()


class BatchedSubprocVecEnv(VecEnv):
    """n_envs envs in `workers` processes (contiguous blocks, as equal as possible)."""

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], workers: int,
                 start_method: str | None = None) -> None:
        n = len(env_fns)
        if n < 1 or not 1 <= workers <= n:
            raise ConfigError(f"BatchedSubprocVecEnv needs 1 <= workers <= n_envs, got {workers} "
                              f"workers for {n} envs")
        bounds = np.linspace(0, n, workers + 1).round().astype(int)
        self.blocks = [range(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        if start_method is None:
            start_method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        ctx = mp.get_context(start_method)
        self.remotes, self.processes = [], []
        for block in self.blocks:
            remote, work = ctx.Pipe()
            proc = ctx.Process(target=_worker, daemon=True,
                               args=(work, remote, CloudpickleWrapper([env_fns[i] for i in block])))
            proc.start()
            work.close()
            self.remotes.append(remote)
            self.processes.append(proc)
        self.remotes[0].send(("spaces", None))
        obs_space, act_space = self.remotes[0].recv()
        self.waiting = False
        self.closed = False
        super().__init__(n, obs_space, act_space)

    # ---- stepping ---------------------------------------------------------------------------------
    def step_async(self, actions: np.ndarray) -> None:
        for remote, block in zip(self.remotes, self.blocks):
            remote.send(("step", actions[block.start:block.stop]))
        self.waiting = True

    def step_wait(self) -> VecEnvStepReturn:
        results = [remote.recv() for remote in self.remotes]
        self.waiting = False
        obs = np.concatenate([r[0] for r in results])
        rew = np.concatenate([r[1] for r in results])
        done = np.concatenate([r[2] for r in results])
        infos = [i for r in results for i in r[3]]
        self.reset_infos = [dict(i) for r in results for i in r[4]]
        return obs, rew, done, infos

    def reset(self) -> VecEnvObs:
        for remote, block in zip(self.remotes, self.blocks):
            remote.send(("reset", ([self._seeds[i] for i in block],
                                   [self._options[i] for i in block])))
        results = [remote.recv() for remote in self.remotes]
        self.reset_infos = [i for r in results for i in r[1]]
        self._reset_seeds()
        self._reset_options()
        return np.concatenate([r[0] for r in results])

    def close(self) -> None:
        if self.closed:
            return
        if self.waiting:
            for remote in self.remotes:
                remote.recv()
        for remote in self.remotes:
            remote.send(("close", None))
        for proc in self.processes:
            proc.join()
        for remote in self.remotes:
            remote.close()
        self.closed = True

    # ---- per-env access ---------------------------------------------------------------------------
    def _targets(self, indices: VecEnvIndices) -> list[tuple[int, list[int], list[int]]]:
        """(worker, local indices, global indices) for the requested envs, in request order
        grouped by worker."""
        wanted = list(self._get_indices(indices))
        out = []
        for w, block in enumerate(self.blocks):
            glob = [i for i in wanted if i in block]
            if glob:
                out.append((w, [i - block.start for i in glob], glob))
        return out

    def _ask(self, cmd: str, make: Callable[[list[int]], Any], indices: VecEnvIndices) -> list[Any]:
        targets = self._targets(indices)
        for w, local, _ in targets:
            self.remotes[w].send((cmd, make(local)))
        found: dict[int, Any] = {}
        for w, _, glob in targets:
            reply = self.remotes[w].recv()
            if reply is not None:
                found.update(zip(glob, reply))
        return [found.get(i) for i in self._get_indices(indices)]

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        return self._ask("env_method", lambda loc: (method_name, method_args, method_kwargs, loc),
                         indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self._ask("get_attr", lambda loc: (attr_name, loc), indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._ask("set_attr", lambda loc: (attr_name, value, loc), indices)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper],
                       indices: VecEnvIndices = None) -> list[bool]:
        return self._ask("is_wrapped", lambda loc: (wrapper_class, loc), indices)

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs
