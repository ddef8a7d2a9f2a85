"""Configuration of `nav-policy train dpp` (config/train_dpp.yaml → pydantic). No eval()."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nav_policy.deception.episode import RewardConfig
from nav_policy.deception.tasks import GraphFamily, TaskConfig


class FamilyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["grid", "rgg"]
    sizes: list[int] = Field(min_length=1)
    weight: float = Field(default=1.0, ge=0)
    connectivity: list[Literal[4, 8]] = [4, 8]
    obstacle_density: tuple[float, float] = (0.0, 0.2)
    mean_degree: tuple[float, float] = (6.0, 10.0)


class TasksConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    families: list[FamilyConfig] = [
        FamilyConfig(kind="grid", sizes=[8], weight=0.35),
        FamilyConfig(kind="grid", sizes=[16], weight=0.35),
        FamilyConfig(kind="rgg", sizes=[50, 100, 150], weight=0.3),
    ]
    decoys: tuple[int, int] = (1, 2)
    budget_ratio: tuple[float, float] = (1.0, 2.2)
    paper_budget_prob: float = Field(default=0.3, ge=0, le=1)
    pool_size: int = Field(default=48, gt=0)
    refresh_prob: float = Field(default=0.1, ge=0, le=1)

    def to_task_config(self) -> TaskConfig:
        fams = tuple(GraphFamily(f.kind, tuple(f.sizes), tuple(f.connectivity),
                                 f.obstacle_density, f.mean_degree) for f in self.families)
        return TaskConfig(families=fams, family_weights=tuple(f.weight for f in self.families),
                          decoys=self.decoys, budget_ratio=self.budget_ratio,
                          paper_budget_prob=self.paper_budget_prob)


class RewardsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bonus: float = 1.0
    goal_reward: float = 1.0
    timeout_penalty: float = -0.5
    invalid_penalty: float = -0.1

    def to_reward_config(self) -> RewardConfig:
        return RewardConfig(**self.model_dump())


class DppEvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    every_steps: int = Field(default=20_000, gt=0)
    episodes: int = Field(default=36, gt=0)
    budgets: list[float] = [1.2, 1.5, 2.0]
    seed: int = 900_000  # held-out graphs and tasks: never drawn in training


class TrainDppConfig(BaseModel):
    """PPO on DeceptiveGraph tasks with the DeceptionGNN (Fatemi et al. 2024 recipe)."""

    model_config = ConfigDict(extra="forbid")
    seed: int = 0
    mode: Literal["ambiguity", "exaggeration"] = "ambiguity"
    total_steps: int = Field(default=300_000, gt=0)
    n_envs: int = Field(default=16, gt=0)
    n_steps: int = Field(default=128, gt=0)
    batch_size: int = Field(default=512, gt=0)
    n_epochs: int = Field(default=4, gt=0)
    learning_rate: float = Field(default=3e-4, gt=0)
    gamma: float = Field(default=0.99, gt=0, le=1)
    gae_lambda: float = Field(default=0.95, ge=0, le=1)
    clip_range: float = Field(default=0.2, gt=0)
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = 0.03
    hidden: int = Field(default=64, gt=0)
    layers: int = Field(default=2, ge=1)
    beta_per_edge: float = Field(default=1.0, gt=0)
    max_nodes: int = Field(default=256, gt=1)
    max_actions: int = Field(default=16, gt=0)
    checkpoint_every_steps: int = Field(default=20_000, gt=0)
    tasks: TasksConfig = TasksConfig()
    rewards: RewardsConfig = RewardsConfig()
    eval: DppEvalConfig = DppEvalConfig()


def load_dpp_config(path: str | Path | None, overrides: dict[str, Any] | None = None
                    ) -> TrainDppConfig:
    """A dpp config (None: config/train_dpp.yaml), dotted overrides applied; ConfigError names
    the first bad field."""
    from nav_policy.training.config import load_training_config

    return load_training_config(TrainDppConfig, path, "train_dpp.yaml", overrides)[0]


__all__ = ["DppEvalConfig", "FamilyConfig", "RewardsConfig", "TasksConfig", "TrainDppConfig",
           "load_dpp_config"]
