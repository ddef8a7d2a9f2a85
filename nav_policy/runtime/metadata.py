"""Model metadata carried in ONNX metadata_props (see docs/DESIGN.md, "Model files")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nav_policy.codecs import CODEC_VERSION, ActionSpec, ObsSpec
from nav_policy.errors import ModelError

KINDS = ("rl", "ebm", "dpp")
REQUIRED = ("nav_policy.kind", "obs_spec", "action_spec", "codec_version", "trained_steps",
            "source_commit")


@dataclass(frozen=True)
class ModelMetadata:
    kind: str
    obs_spec: ObsSpec
    action_spec: ActionSpec
    codec_version: str
    trained_steps: int
    source_commit: str
    extra: dict[str, str]

    def to_props(self) -> dict[str, str]:
        return {"nav_policy.kind": self.kind, "obs_spec": self.obs_spec.to_json(),
                "action_spec": self.action_spec.to_json(), "codec_version": self.codec_version,
                "trained_steps": str(self.trained_steps), "source_commit": self.source_commit,
                **self.extra}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str) -> ModelMetadata:
        missing = [k for k in REQUIRED if k not in props]
        if missing:
            raise ModelError(f"{source}: missing metadata {', '.join(missing)} (not a nav_policy "
                             "model, or exported by an older version)")
        kind = props["nav_policy.kind"]
        if kind not in KINDS:
            raise ModelError(f"{source}: unknown model kind {kind!r}")
        if props["codec_version"] != CODEC_VERSION:
            raise ModelError(f"{source}: codec_version {props['codec_version']} but this "
                             f"nav_policy speaks {CODEC_VERSION}; re-export the model")
        try:
            obs = ObsSpec.from_json(props["obs_spec"]) if kind != "dpp" else ObsSpec()
            act = ActionSpec.from_json(props["action_spec"]) if kind != "dpp" else ActionSpec()
            steps = int(props["trained_steps"])
        except Exception as exc:  # noqa: BLE001 - any malformed field
            raise ModelError(f"{source}: malformed metadata: {exc}") from exc
        extra = {k: v for k, v in props.items() if k not in REQUIRED}
        return cls(kind, obs, act, props["codec_version"], steps, props["source_commit"], extra)


def check_compatible(meta: ModelMetadata, source: str, expect_kind: str | None = None,
                     obs_spec: ObsSpec | None = None, **lidar: Any) -> None:
    """Refuse a model whose kind or observation spec differs from what the caller feeds."""
    if expect_kind is not None and meta.kind != expect_kind:
        raise ModelError(f"{source}: model kind is {meta.kind!r}, expected {expect_kind!r}")
    if obs_spec is not None and obs_spec != meta.obs_spec:
        raise ModelError(f"{source}: observation spec {meta.obs_spec} does not match the "
                         f"configured {obs_spec}")
    for key, value in lidar.items():
        have = getattr(meta.obs_spec, key)
        if abs(float(have) - float(value)) > 1e-6:
            raise ModelError(f"{source}: model expects lidar {key}={have}, sensor has {value}")
