"""Training configuration (YAML → pydantic). No string is ever evaluated."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nav_policy.errors import ConfigError


class CurriculumStage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start_step: int = Field(ge=0, description="timestep at which this tier mixture starts")
    tiers: dict[str, float] = Field(description="tier -> sampling weight")


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    every_steps: int = Field(default=100_000, gt=0)
    episodes_per_tier: int = Field(default=10, gt=0)
    tiers: list[str] = ["easy", "medium", "hard", "dynamic"]
    seed: int = 900_000  # held-out world seeds: seed + i, never used in training


class PPOConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    learning_rate: float = 3e-4
    n_steps: int = 512
    batch_size: int = 256
    n_epochs: int = 10
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = 0.05


class SACConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    learning_rate: float = 3e-4
    buffer_size: int = 300_000
    batch_size: int = 256
    gamma: float = 0.99
    tau: float = 0.005
    train_freq: int = 1
    gradient_steps: int = 1
    learning_starts: int = 5_000


class BCInitConfig(BaseModel):
    """Behaviour cloning of the actor before PPO (the expert demonstrations of `nav-policy train
    ebm`, collected with DART noise): PPO then starts from a policy that already drives."""

    model_config = ConfigDict(extra="forbid")
    dataset: str | list[str] = Field(
        description="dataset.npz of expert demonstrations (obs, act), or a list of them (an ebm "
        "run's dataset.npz and its dataset_dagger*.npz rounds), concatenated")
    epochs: int = Field(default=20, gt=0)
    batch_size: int = Field(default=512, gt=0)
    learning_rate: float = Field(default=1e-3, gt=0)
    log_std: float = Field(default=-1.5, description="policy log std after cloning "
                           "(exploration of the fine-tune, normalised action units)")
    critic_warmup_steps: int = Field(
        default=0, ge=0, description="PPO steps at the start with the cloned actor frozen (mean "
        "and log std): only the value network learns, so the first policy updates use advantages "
        "from a critic that has seen the cloned policy instead of a random one")


class TrainLocalConfig(BaseModel):
    """Config of `nav-policy train local` (config/train_local.yaml)."""

    model_config = ConfigDict(extra="forbid")
    algo: Literal["ppo", "sac"] = "ppo"
    seed: int = 0
    total_steps: int = Field(default=2_000_000, gt=0)
    n_envs: int = Field(default=4, gt=0)
    vec_env: Literal["subproc", "dummy", "batched"] = Field(
        default="subproc", description="subproc: one env per process (SB3 SubprocVecEnv); "
        "batched: n_envs envs in vec_workers processes, one pipe round trip per batch "
        "(nav_policy.envs.vec.BatchedSubprocVecEnv); dummy: all in this process")
    vec_workers: int | None = Field(
        default=None, gt=0, description="processes of vec_env batched (default: min(n_envs, "
        "CPU cores))")
    net_arch: list[int] = [256, 256]
    activation: Literal["tanh", "relu", "elu"] = "tanh"
    checkpoint_every_steps: int = Field(default=50_000, gt=0)
    init_from: str | None = Field(
        default=None, description="checkpoint .zip (with its _vecnormalize.pkl beside it) whose "
        "weights and normalisation start this run: staged training, e.g. a fine-tune with a "
        "stricter reward; the hyperparameters of this config apply")
    bc_init: BCInitConfig | None = None
    policy_features: Literal["raw", "proximity"] = Field(
        default="raw", description="raw: the VecNormalize-standardised observation; proximity: "
        "fixed bounds scaling plus exp(-(r - range_min) / proximity_scale) per lidar sector "
        "(nav_policy/policies/features.py), inside the network and so inside the exported graph")
    proximity_scale: float = Field(default=0.25, gt=0.0, description="metres, policy_features: "
                                   "proximity")
    env: dict[str, Any] = {}
    curriculum: list[CurriculumStage] = [CurriculumStage(start_step=0, tiers={"medium": 1.0})]
    ppo: PPOConfig = PPOConfig()
    sac: SACConfig = SACConfig()
    eval: EvalConfig = EvalConfig()

    @model_validator(mode="after")
    def _check(self) -> TrainLocalConfig:
        from nav_policy.sim.generate import TIERS

        if not self.curriculum or self.curriculum[0].start_step != 0:
            raise ValueError("curriculum must start with a stage at start_step 0")
        for stage in self.curriculum:
            for tier, w in stage.tiers.items():
                if tier not in TIERS:
                    raise ValueError(f"unknown tier {tier!r} in curriculum")
                if w < 0:
                    raise ValueError("curriculum weights must be >= 0")
        if self.policy_features != "raw" and (self.init_from or self.algo != "ppo"):
            raise ValueError("policy_features applies to a new ppo network (with init_from the "
                             "checkpoint's network is kept)")
        if self.bc_init is not None and (self.init_from or self.algo != "ppo"):
            raise ValueError("bc_init needs algo ppo and no init_from")
        for key in ("tier", "tier_weights", "render_mode"):
            if key in self.env:
                raise ValueError(f"env.{key} is set by the trainer; remove it from the config")
        return self

    def stage_at(self, step: int) -> CurriculumStage:
        current = self.curriculum[0]
        for stage in self.curriculum:
            if step >= stage.start_step:
                current = stage
        return current


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping; ConfigError with a one-line reason otherwise."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {p} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config {p}: expected a mapping at the top level")
    return data


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any] | None,
                    source: str = "override") -> dict[str, Any]:
    """`data` with dotted-key overrides applied in place: {"total_steps": 1000,
    "train.epochs": 3, "eval.every_steps": 512}; a value replaces what is there (a mapping value
    replaces the whole section); None values are skipped. A dotted key whose parent is not a
    mapping is a ConfigError naming it."""
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        parts = str(key).split(".")
        if not all(parts):
            raise ConfigError(f"{source} {key!r}: expected KEY or SECTION.KEY")
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{source} {key!r}: {'.'.join(parts[:i + 1])} is not a section")
            node = child
        node[parts[-1]] = value
    return data


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """`--set KEY=VALUE` options (repeatable) as overrides; VALUE is read as YAML (1000, 0.5,
    true, [easy, hard], {a: 1}), so it has the type the config expects."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE (e.g. --set eval.every_steps=512)")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML "
                              f"({str(exc).splitlines()[0]})") from exc
    return out


M = TypeVar("M", bound=BaseModel)


def load_training_config(model: type[M], path: str | Path | None, default_file: str,
                         overrides: dict[str, Any] | None = None) -> tuple[M, Path]:
    """The one loader of training configs: the YAML at `path` (None: the kind's default recipe,
    config/`default_file`), dotted overrides applied (apply_overrides), validated (unknown keys
    name the closest known one). Returns the config and the file it came from."""
    from nav_policy.paths import config_path

    p = Path(path) if path else config_path(default_file)
    data = apply_overrides(read_yaml_mapping(p), overrides)
    return validate_config(model, data, str(p)), p


def validate_config(model: type[M], data: dict[str, Any], source: str) -> M:
    """Build a pydantic config; ConfigError names the first bad field."""
    try:
        return model(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "extra_forbidden":  # a typo: name the closest known key
            from nav_policy.yamlcheck import pydantic_extra_message

            text = pydantic_extra_message(model, tuple(first["loc"]), f"config {source}")
            if text:
                raise ConfigError(text) from exc
        loc = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"config {source}: {loc}: {first['msg']}") from exc


def check_env_keys(env: dict[str, Any], source: str) -> None:
    """The `env:` section's keys are LocalNav-v0's keyword arguments (values are checked by
    building the env, nav_policy.envs.registration.check_env_kwargs, before training)."""
    from nav_policy.envs.registration import env_keys
    from nav_policy.yamlcheck import check_keys

    check_keys(env, env_keys(), f"config {source}: env")


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None
                ) -> TrainLocalConfig:
    """An rl config (None: config/train_local.yaml), dotted overrides applied."""
    cfg, p = load_training_config(TrainLocalConfig, path, "train_local.yaml", overrides)
    check_env_keys(cfg.env, str(p))
    return cfg
