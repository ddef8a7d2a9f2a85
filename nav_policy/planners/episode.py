"""The one episode loop: a LocalPlanner drives a reset LocalNav-v0 env to the episode's end.

    env.reset(seed=..., options=scenario.reset_options())
    run = drive(env, planner)                    # or path=, command_filter=, on_step=
    run.outcome, run.steps, run.compute_ns, run.info

The benchmark runner (nav_policy.bench.runner), the planners' acceptance check
(nav_policy.planners.evaluate) and the demo's episode mode all call it, so a planner is timed,
filtered and stepped the same way everywhere: only `planner.compute` is timed; the optional
`command_filter(frame, v, w, dt)` (the served safety layer) sits between the planner and the
env; the env's own termination (goal, collision, time limit) ends the episode.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nav_policy.codecs import encode_action

# (frame, v, w, dt) -> (v, w): what reaches the wheels after the planner (e.g. the safety layer)
CommandFilter = Callable[[Any, float, float, float], tuple[float, float]]
# (frame, v, w) after the filter, once per control step (traces, logging)
StepHook = Callable[[Any, float, float], None]


def outcome_of(info: dict[str, Any]) -> str:
    """success | collision | timeout, from the env's final info."""
    if info.get("is_success"):
        return "success"
    return "collision" if info.get("collision") else "timeout"


@dataclass
class EpisodeRun:
    """What one driven episode left: the final info, its outcome, the per-step compute time."""

    info: dict[str, Any]
    steps: int
    compute_ns: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def outcome(self) -> str:
        return outcome_of(self.info)


def drive(env: Any, planner: Any, path: Any = None, command_filter: CommandFilter | None = None,
          on_step: StepHook | None = None) -> EpisodeRun:
    """Drive the (already reset) env with `planner` until terminated or truncated.

    `path` is handed to every SensorFrame (the global path, or None for goal-only); the planner
    is reset first, so one planner object can drive many episodes.
    """
    base = env.unwrapped
    planner.reset()
    times: list[int] = []
    info: dict[str, Any] = {}
    done = False
    steps = 0
    while not done:
        frame = base.sensors(path=path)
        t0 = time.perf_counter_ns()
        v, w = planner.compute(frame)
        times.append(time.perf_counter_ns() - t0)
        if command_filter is not None:
            v, w = command_filter(frame, v, w, base.sim.dt)
        if on_step is not None:
            on_step(frame, v, w)
        _, _, terminated, truncated, info = env.step(encode_action(v, w, base.action_spec))
        steps += 1
        done = terminated or truncated
    return EpisodeRun(info=dict(info), steps=steps,
                      compute_ns=np.asarray(times, dtype=np.float64))
