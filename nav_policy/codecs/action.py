"""Action codec: policy output a in [-1, 1]^2 <-> (v, w) in SI units.

decode_action is written with operations that numpy arrays and torch tensors share, so the
exported ONNX graph applies exactly this function (nav_policy.export traces it)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nav_policy.errors import CodecError


@dataclass(frozen=True)
class ActionSpec:
    v_min: float = 0.0
    v_max: float = 0.5
    w_max: float = 2.0

    def __post_init__(self) -> None:
        if not (self.v_min < self.v_max and self.w_max > 0):
            raise CodecError(f"invalid action limits v [{self.v_min}, {self.v_max}], w {self.w_max}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ActionSpec:
        try:
            return cls(**json.loads(text))
        except (TypeError, ValueError) as exc:
            raise CodecError(f"invalid action_spec {text[:80]!r}: {exc}") from exc


def decode_action(a: Any, spec: ActionSpec) -> Any:
    """[-1, 1]^2 (last axis) -> (v, w). Works on numpy arrays and torch tensors."""
    a = a.clip(-1.0, 1.0)
    v = spec.v_min + (a[..., 0:1] + 1.0) * (0.5 * (spec.v_max - spec.v_min))
    w = a[..., 1:2] * spec.w_max
    if isinstance(a, np.ndarray):
        return np.concatenate([v, w], axis=-1)
    import torch

    return torch.cat([v, w], dim=-1)


def initial_prev_action() -> np.ndarray:
    """The 'previous action' fed at the first step of an episode (and after a stop): zeros.

    Env, exporter and node all start from this value, so the first observation matches."""
    return np.zeros(2, dtype=np.float32)


def encode_action(v: float, w: float, spec: ActionSpec) -> np.ndarray:
    """(v, w) -> [-1, 1]^2, the inverse of decode_action inside the limits (clipped outside)."""
    a0 = 2.0 * (v - spec.v_min) / (spec.v_max - spec.v_min) - 1.0
    a1 = w / spec.w_max
    return np.clip(np.array([a0, a1], dtype=np.float32), -1.0, 1.0)
