"""PolicyRuntime: one ONNX Runtime session for a nav_policy model file.

Picks CUDAExecutionProvider when onnxruntime-gpu and a GPU are present, else CPU, and logs
which. Checks the file's metadata against the codec in use before running anything.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from nav_policy.codecs import ObsSpec
from nav_policy.errors import ModelError
from nav_policy.runtime.metadata import ModelMetadata, check_compatible, check_profile
from nav_policy.sim.robot import RobotSpec

log = logging.getLogger("nav_policy.runtime")


def choose_providers(prefer_gpu: bool = True) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if prefer_gpu and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class PolicyRuntime:
    """Load `path`, verify metadata, run observations. Errors name the file and the problem.

    With `robot`, the model must be able to serve that robot profile (its lidar's field of view
    and range, its footprint: runtime.metadata.check_profile); `lidar` keywords compare the
    spec's fields exactly (beams=..., range_max=...)."""

    def __init__(self, path: str | Path, expect_kind: str | None = None,
                 obs_spec: ObsSpec | None = None, prefer_gpu: bool = True,
                 robot: RobotSpec | None = None, **lidar: Any) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            what = "is a folder, not an .onnx file" if self.path.is_dir() else "not found"
            raise ModelError(f"model file {self.path} {what}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                                providers=choose_providers(prefer_gpu))
        except Exception as exc:  # noqa: BLE001 - ORT raises several types for a bad file
            reason = str(exc).strip().splitlines()[0][:200]
            raise ModelError(f"cannot load model {self.path}: {reason}") from exc
        self.provider = self.session.get_providers()[0]
        log.info("model %s runs on %s", self.path.name, self.provider)
        props = dict(self.session.get_modelmeta().custom_metadata_map)
        self.meta = ModelMetadata.from_props(props, str(self.path))
        check_compatible(self.meta, str(self.path), expect_kind, obs_spec, **lidar)
        if robot is not None and self.meta.kind in ("rl", "ebm"):
            check_profile(self.meta, str(self.path), robot.lidar, robot.footprint, robot.name)
        inputs = self.session.get_inputs()
        self.input_name = inputs[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        width = inputs[0].shape[-1]
        if self.meta.kind in ("rl", "ebm") and isinstance(width, int) \
                and width != self.meta.obs_spec.size:
            raise ModelError(f"{self.path}: input width {width} but obs_spec says "
                             f"{self.meta.obs_spec.size}")

    def run(self, obs: np.ndarray, extra: dict[str, np.ndarray] | None = None
            ) -> list[np.ndarray]:
        """All outputs for one observation (1-D) or a batch (2-D); `extra` feeds optional
        inputs by name (ebm: steps, max_steps)."""
        x = np.asarray(obs, dtype=np.float32)
        single = x.ndim == 1
        if single:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != self.meta.obs_spec.size:
            raise ModelError(f"{self.path}: observation of shape {tuple(np.shape(obs))}, the "
                             f"model expects (N, {self.meta.obs_spec.size})")
        feeds = {self.input_name: x, **(extra or {})}
        outs = self.session.run(self.output_names, feeds)
        return [o[0] for o in outs] if single else outs

    def act(self, obs: np.ndarray) -> np.ndarray:
        """(v, w) in SI units for one observation."""
        return self.run(obs)[0]
