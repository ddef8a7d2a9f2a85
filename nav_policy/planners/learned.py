"""PolicyPlanner: a learned local planner (ONNX) behind the LocalPlanner interface."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from nav_policy.codecs import (
    ObservationEncoder,
    SensorFrame,
    encode_action,
    initial_prev_action,
)
from nav_policy.errors import CodecError, ModelError
from nav_policy.paths import model_path
from nav_policy.runtime.session import PolicyRuntime
from nav_policy.sim.robot import RobotSpec, load_robot_spec

DEFAULT_MODELS = {"rl": "local_rl.onnx", "ebm": "local_ebm.onnx"}
TRAIN_HINT = {"rl": "nav-policy train local", "ebm": "nav-policy train ebm"}


class PolicyPlanner:
    """Encodes the SensorFrame with the model's own codec spec, runs ORT, returns (v, w).

    For kind ebm the one ORT call also returns the energy and the gradient steps used; where the
    energy is above the model's `ebm.energy_high` (a validation quantile, from its metadata) and
    `energy_gate` is on, v is capped to `energy_speed_factor` x v_max: an unsure robot slows.
    """

    def __init__(self, runtime: PolicyRuntime, robot: RobotSpec, energy_gate: bool = True,
                 energy_speed_factor: float = 0.5, steps: int | None = None,
                 max_steps: int | None = None) -> None:
        self.runtime = runtime
        self.robot = robot
        self.name = runtime.meta.kind
        self.spec = runtime.meta.obs_spec
        self.encoder = ObservationEncoder(self.spec)  # keeps the past scans of a v2 history
        self.action_spec = runtime.meta.action_spec
        self.energy_gate = bool(energy_gate)
        if not 0.0 <= energy_speed_factor <= 1.0:
            raise ModelError(f"energy_speed_factor {energy_speed_factor} must be in [0, 1]")
        self.energy_speed_factor = float(energy_speed_factor)
        self.energy_high = math.inf
        if self.name == "ebm":
            text = runtime.meta.extra.get("ebm.energy_high", "inf")
            try:
                self.energy_high = float(text)
            except ValueError as exc:
                raise ModelError(f"{runtime.path}: ebm.energy_high {text!r} is not a number") \
                    from exc
        self.feeds: dict[str, np.ndarray] = {}
        # iterations the graph holds (files exported before the key existed held 8)
        self.iterations = 0
        if self.name == "ebm":
            text = runtime.meta.extra.get("ebm.iterations", "8")
            if not text.isdigit():
                raise ModelError(f"{runtime.path}: ebm.iterations {text!r} is not a count")
            self.iterations = int(text)
        for name, value in (("steps", steps), ("max_steps", max_steps)):
            if value is None:
                continue
            if self.name != "ebm":
                raise ModelError(f"{name}={value}: only an ebm model takes it")
            if not 0 <= int(value) <= self.iterations:
                raise ModelError(f"{name}={value}: {runtime.path} holds {self.iterations} "
                                 f"gradient iterations, so {name} must be within "
                                 f"[0, {self.iterations}] (re-export with `nav-policy export RUN "
                                 f"--max-steps N` for more)")
            self.feeds[name] = np.array(float(value), dtype=np.float32)
        self.last_info: dict[str, Any] = {}
        self.reset()

    @classmethod
    def from_file(cls, model: str | Path | None, robot: RobotSpec | None = None,
                  expect_kind: str = "rl", **options: Any) -> PolicyPlanner:
        robot = robot or load_robot_spec()
        path = Path(model) if model else model_path(DEFAULT_MODELS.get(expect_kind, ""))
        if model is None and not path.is_file():
            raise ModelError(f"planner {expect_kind!r} is not trained yet: {path} not found "
                             f"(train with `{TRAIN_HINT.get(expect_kind, 'nav-policy train')}` "
                             "then `nav-policy export`)")
        runtime = PolicyRuntime(path, expect_kind=expect_kind, robot=robot)
        return cls(runtime, robot, **options)

    def reset(self) -> None:
        self.prev_action = initial_prev_action()
        self.encoder.reset()

    def compute(self, frame: SensorFrame) -> tuple[float, float]:
        t0 = time.perf_counter()
        try:
            obs = self.encoder.encode(frame, self.prev_action)
        except CodecError as exc:
            self.prev_action = encode_action(0.0, 0.0, self.action_spec)
            self.last_info = {"reason": str(exc)}
            return 0.0, 0.0
        outs = self.runtime.run(obs, self.feeds)
        v, w = float(outs[0][0]), float(outs[0][1])
        info: dict[str, Any] = {"kind": self.name}
        if self.name == "ebm" and len(outs) >= 3:
            energy = float(outs[1])
            info.update(energy=energy, steps=int(outs[2]), high_energy=energy > self.energy_high)
            if not math.isfinite(energy):
                v = w = math.nan  # refused below: an energy that is not a number is no answer
            elif self.energy_gate and energy > self.energy_high:
                v = min(v, self.energy_speed_factor * self.action_spec.v_max)
        if not (math.isfinite(v) and math.isfinite(w)):
            self.prev_action = encode_action(0.0, 0.0, self.action_spec)
            self.last_info = {"reason": "model produced a non-finite command"}
            return 0.0, 0.0
        self.prev_action = encode_action(v, w, self.action_spec)
        info["infer_us"] = (time.perf_counter() - t0) * 1e6
        self.last_info = info
        return v, w

    @property
    def obs_dim(self) -> int:
        return int(np.int64(self.spec.size))
