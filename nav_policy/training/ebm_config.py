"""Config of `nav-policy train ebm` (config/train_ebm.yaml): YAML -> pydantic, nothing evaluated."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nav_policy.sim.generate import TIERS
from nav_policy.training.config import (
    EvalConfig,
    check_env_keys,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    expert: Literal["mppi", "dwa", "rl"] = Field(
        default="mppi", description="mppi / dwa: the classical planner on the robot's sensors; "
        "rl: an exported rl policy (expert_model) queried on the env's own codec observation")
    expert_model: str = Field(default="models/local_rl.onnx",
                              description="the rl expert's ONNX file (expert: rl)")
    dataset: str | None = Field(default=None, description="an existing dataset.npz to reuse")
    episodes: int = Field(default=500, gt=0)
    tiers: dict[str, float] = {"easy": 0.15, "medium": 0.35, "hard": 0.25, "dynamic": 0.25}
    world_seed: int = 300_000
    noise_std_max: float = Field(default=0.3, ge=0.0, le=2.0)
    perturb_prob: float = Field(default=0.03, ge=0.0, le=1.0)
    perturb_steps: tuple[int, int] = (2, 6)
    workers: int = Field(default=2, ge=1, le=64)
    dagger_rounds: int = Field(default=0, ge=0, le=10, description="DAgger: after training, "
                               "drive with the current model, label its states with the expert, "
                               "add them and train on")
    dagger_episodes: int = Field(default=200, gt=0)
    dagger_epochs: int = Field(default=10, gt=0)


DAGGER_SEED_STRIDE = 100_000  # round r of collection uses world seeds world_seed + r * stride + i


class ModelConfig(_Strict):
    horizon: int = Field(default=4, ge=1, le=16)
    hidden: list[int] = [256, 256]
    features: Literal["raw", "proximity"] = Field(
        default="raw", description="raw: the standardised codec vector; proximity: plus "
        "exp(-(r - range_min) / proximity_scale) per lidar sector, inside the model and so "
        "inside the exported graph (as rl's policy_features: proximity)")
    proximity_scale: float = Field(default=0.25, gt=0.0, le=10.0)


class TrainConfig(_Strict):
    epochs: int = Field(default=30, gt=0)
    batch_size: int = Field(default=512, gt=0)
    learning_rate: float = Field(default=1e-3, gt=0)
    lr_schedule: Literal["constant", "cosine"] = Field(
        default="constant", description="cosine: decays to 5% of learning_rate over all epochs "
        "(DAgger epochs included)")
    weight_decay: float = Field(default=0.0, ge=0)
    k_min: int = Field(default=2, ge=1, le=16)
    k_max: int = Field(default=4, ge=1, le=16)
    alpha_init: float = Field(default=0.5, gt=0)
    momentum: float = Field(default=0.0, ge=0.0, lt=1.0, description="Nesterov momentum mu of "
                            "the unrolled descent, in training and in the exported graph "
                            "(nav_policy/policies/ebm.py); 0 = plain gradient steps")
    langevin_std: float = Field(default=0.05, ge=0.0)
    infonce_weight: float = Field(default=0.1, ge=0.0)
    energy_anchor_weight: float = Field(
        default=0.0, ge=0.0, description="weight of mean E(o, a*)^2 at the expert chunk: pins the "
        "energy level of demonstrated states to 0 (the unrolled loss alone only shapes the "
        "gradient, leaving E free up to any function of o)")
    density_weight: float = Field(
        default=0.0, ge=0.0, description="weight of the observation density term: logistic "
        "loss with the energy at the inferred action as the logit, low on the data's "
        "observations and high on generic corruptions of them (nav_policy.training.ebm_train."
        "corrupt_observations), so the energy's level says 'off the data' (0 = off)")
    density_sigma_max: float = Field(
        default=1.0, ge=0.05, le=10.0, description="largest Gaussian corruption, in units of "
        "the dataset's per-feature std (drawn log-uniform in [0.05, this])")
    risk_steps: int = Field(
        default=0, ge=0, le=100, description="with density_weight > 0: states within this many "
        "control steps before a collision in the data (the expert's perturbed episodes, the "
        "student's own DAgger episodes) join the corruptions as negatives, so the energy also "
        "rises ahead of crashes (0 = off)")
    crash_action_weight: float = Field(
        default=0.0, ge=0.0, description="with risk_steps > 0: weight of softplus(E(o, a*) - "
        "E(o, a_exec)) on the states before a collision, a_exec the executed chunk that led "
        "there, so the minimisation itself steers away from it (0 = off)")
    counter_examples: int = Field(default=32, ge=1)
    val_fraction: float = Field(default=0.05, gt=0.0, lt=0.5)


class EbmEvalConfig(EvalConfig):
    every_epochs: int = Field(default=5, gt=0)
    every_steps: int = 1  # unused by ebm (epochs drive evaluation)


class InferenceConfig(_Strict):
    steps: int = Field(default=2, ge=1, le=8)
    max_steps: int = Field(default=8, ge=1, le=8)
    grad_eps: float = Field(default=1e-3, ge=0.0)
    energy_quantile: float = Field(default=0.95, gt=0.0, lt=1.0)


class TrainEbmConfig(_Strict):
    seed: int = 0
    env: dict[str, Any] = {}
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    eval: EbmEvalConfig = EbmEvalConfig()
    inference: InferenceConfig = InferenceConfig()

    @model_validator(mode="after")
    def _check(self) -> TrainEbmConfig:
        bad = sorted(set(self.data.tiers) - set(TIERS)) + sorted(set(self.eval.tiers) - set(TIERS))
        if bad:
            raise ValueError(f"unknown tier(s) {', '.join(bad)}; known: {', '.join(TIERS)}")
        if not self.data.tiers or sum(self.data.tiers.values()) <= 0 or \
                min(self.data.tiers.values()) < 0:
            raise ValueError("data.tiers needs non-negative weights with a positive sum")
        if self.train.crash_action_weight > 0 and self.train.risk_steps == 0:
            raise ValueError("train.crash_action_weight needs train.risk_steps > 0")
        if self.train.risk_steps > 0 and self.train.density_weight == 0 \
                and self.train.crash_action_weight == 0:
            raise ValueError("train.risk_steps is used only with train.density_weight or "
                             "train.crash_action_weight > 0")
        if self.train.k_min > self.train.k_max:
            raise ValueError("train.k_min must be <= train.k_max")
        if self.inference.steps > self.inference.max_steps:
            raise ValueError("inference.steps must be <= inference.max_steps")
        lo, hi = self.data.perturb_steps
        if not 1 <= lo <= hi:
            raise ValueError("data.perturb_steps must be [lo, hi] with 1 <= lo <= hi")
        self._check_world_seeds()
        return self

    def _check_world_seeds(self) -> None:
        """Training worlds must not be the held-out ones: round r collects episodes i with world
        seed data.world_seed + r * DAGGER_SEED_STRIDE + i, evaluation uses eval.seed + i."""
        d, ev = self.data, self.eval
        for r in range(d.dagger_rounds + 1):
            n = d.episodes if r == 0 else d.dagger_episodes
            if n > DAGGER_SEED_STRIDE:
                raise ValueError(f"at most {DAGGER_SEED_STRIDE} episodes per collection round "
                                 f"(round {r} asks for {n})")
            lo = d.world_seed + r * DAGGER_SEED_STRIDE
            if lo < ev.seed + ev.episodes_per_tier and ev.seed < lo + n:
                what = "the expert's episodes" if r == 0 else f"DAgger round {r}"
                raise ValueError(
                    f"{what} would use world seeds {lo}..{lo + n - 1}, which include the held-out "
                    f"evaluation worlds (eval.seed {ev.seed}..{ev.seed + ev.episodes_per_tier - 1}"
                    f"); choose another data.world_seed or eval.seed, or fewer DAgger rounds")


def load_ebm_config(path: str | Path | None,
                    overrides: dict[str, Any] | None = None) -> TrainEbmConfig:
    """An ebm config (None: config/train_ebm.yaml), dotted overrides applied."""
    from nav_policy.training.config import load_training_config

    cfg, p = load_training_config(TrainEbmConfig, path, "train_ebm.yaml", overrides)
    check_env_keys(cfg.env, str(p))
    return cfg


def build_energy_model(cfg: TrainEbmConfig, obs_dim: int) -> Any:
    """The EnergyModel of `cfg` for codec vectors of width obs_dim (trainer and exporter)."""
    from nav_policy.envs.registration import codec_specs
    from nav_policy.policies.ebm import EnergyModel

    sectors, range_min = 0, 0.0
    if cfg.model.features == "proximity":
        spec = codec_specs(cfg.env)[0]
        sectors, range_min = spec.sectors, spec.range_min
    return EnergyModel(obs_dim, cfg.model.horizon, cfg.model.hidden, proximity_sectors=sectors,
                       proximity_scale=cfg.model.proximity_scale, range_min=range_min)
