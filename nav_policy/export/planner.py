"""PolicyPlanner: a learned local planner (ONNX) behind the LocalPlanner interface."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from nav_policy.codecs import (
    SensorFrame,
    encode_action,
    encode_observation,
    initial_prev_action,
)
from nav_policy.errors import CodecError, ModelError
from nav_policy.export.runtime import PolicyRuntime
from nav_policy.paths import model_path
from nav_policy.sim.robot import RobotSpec, load_robot_spec

DEFAULT_MODELS = {"rl": "local_rl.onnx", "ebm": "local_ebm.onnx"}
TRAIN_HINT = {"rl": "nav-policy train local", "ebm": "nav-policy train ebm"}


class PolicyPlanner:
    """Encodes the SensorFrame with the model's own codec spec, runs ORT, returns (v, w)."""

    def __init__(self, runtime: PolicyRuntime, robot: RobotSpec) -> None:
        self.runtime = runtime
        self.robot = robot
        self.name = runtime.meta.kind
        self.spec = runtime.meta.obs_spec
        self.action_spec = runtime.meta.action_spec
        self.last_info: dict[str, Any] = {}
        self.reset()

    @classmethod
    def from_file(cls, model: str | Path | None, robot: RobotSpec | None = None,
                  expect_kind: str = "rl") -> PolicyPlanner:
        robot = robot or load_robot_spec()
        path = Path(model) if model else model_path(DEFAULT_MODELS.get(expect_kind, ""))
        if model is None and not path.is_file():
            raise ModelError(f"planner {expect_kind!r} is not trained yet: {path} not found "
                             f"(train with `{TRAIN_HINT.get(expect_kind, 'nav-policy train')}` "
                             "then `nav-policy export`)")
        lid = robot.lidar
        runtime = PolicyRuntime(path, expect_kind=expect_kind, beams=lid.beams,
                                range_min=lid.range_min, range_max=lid.range_max)
        return cls(runtime, robot)

    def reset(self) -> None:
        self.prev_action = initial_prev_action()

    def compute(self, frame: SensorFrame) -> tuple[float, float]:
        t0 = time.perf_counter()
        try:
            obs = encode_observation(frame, self.prev_action, self.spec)
        except CodecError as exc:
            self.prev_action = encode_action(0.0, 0.0, self.action_spec)
            self.last_info = {"reason": str(exc)}
            return 0.0, 0.0
        out = self.runtime.act(obs)
        v, w = float(out[0]), float(out[1])
        if not (math.isfinite(v) and math.isfinite(w)):
            self.prev_action = encode_action(0.0, 0.0, self.action_spec)
            self.last_info = {"reason": "model produced a non-finite command"}
            return 0.0, 0.0
        self.prev_action = encode_action(v, w, self.action_spec)
        self.last_info = {"kind": self.name, "infer_us": (time.perf_counter() - t0) * 1e6}
        return v, w

    @property
    def obs_dim(self) -> int:
        return int(np.int64(self.spec.size))
