"""Fixed input features of the rl policy network (`policy_features` in config/train_local*.yaml).

`raw` (the default) is SB3's flatten of the VecNormalize-standardised observation. `proximity`
replaces the running standardisation with fixed scaling from the codec's bounds and adds, per
lidar sector, exp(-(r - range_min) / scale): a feature that changes fastest where the obstacle is
close. With standardised ranges, the few centimetres that decide a narrow pass are a few
hundredths of a sector input's std (experiments/NOTES.md, "rl against issue 4's targets", measures
both).

The transform has no parameters and lives in the policy network, so the exported graph holds it
(nav_policy/export/onnx_export.py runs the policy's features extractor) and the env, the exporter
and the node keep feeding the one codec vector: nothing changes between training and serving.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def proximity(ranges: Any, range_min: Any, scale: float) -> Any:
    """exp(-max(r - range_min, 0) / scale) per sector (torch): 1 at contact, falling with
    distance. The rl features extractor and the ebm energy model (model.features: proximity)
    both use it, so the two learned planners see the same feature."""
    import torch

    return torch.exp(-torch.clamp(ranges - range_min, min=0.0) / scale)


def proximity_extractor_class() -> Any:
    """The SB3 features extractor class (torch and SB3 imported on demand)."""
    import torch
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class ProximityFeatures(BaseFeaturesExtractor):
        """obs (raw codec vector) -> [bounds-scaled obs in [-1, 1], exp(-(r - r_min) / scale)]."""

        def __init__(self, observation_space: Any, sectors: int, scale: float = 0.25) -> None:
            low = np.asarray(observation_space.low, dtype=np.float32)
            high = np.asarray(observation_space.high, dtype=np.float32)
            if not (0 < sectors < low.size and np.all(np.isfinite(low)) and np.all(high > low)):
                raise ValueError(f"proximity features need finite codec bounds and 0 < sectors "
                                 f"< {low.size}, got sectors={sectors}")
            super().__init__(observation_space, features_dim=low.size + sectors)
            self.sectors, self.scale = int(sectors), float(scale)
            self.register_buffer("low", torch.as_tensor(low))
            self.register_buffer("span", torch.as_tensor(high - low))

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            scaled = 2.0 * (obs - self.low) / self.span - 1.0
            s = self.sectors
            return torch.cat([scaled, proximity(obs[:, :s], self.low[:s], self.scale)], dim=1)

    return ProximityFeatures
