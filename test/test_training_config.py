"""One loader for every training config: the kind's recipe when --config is missing, dotted
overrides (--set KEY=VALUE) applied the same way for rl, ebm and dpp, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nav_policy.deception.config import load_dpp_config
from nav_policy.errors import ConfigError
from nav_policy.paths import config_path
from nav_policy.training.config import apply_overrides, load_config, parse_set
from nav_policy.training.ebm_config import load_ebm_config


def test_missing_config_is_the_kinds_recipe_for_every_kind() -> None:
    for load, name in ((load_config, "train_local.yaml"), (load_ebm_config, "train_ebm.yaml"),
                       (load_dpp_config, "train_dpp.yaml")):
        on_file = yaml.safe_load(config_path(name).read_text())
        cfg = load(None)
        assert cfg.seed == on_file["seed"]
        assert load(None).model_dump() == load(config_path(name)).model_dump()


def test_dotted_overrides_apply_alike_to_every_kind() -> None:
    rl = load_config(None, {"total_steps": 4096, "eval.every_steps": 512})
    assert rl.total_steps == 4096 and rl.eval.every_steps == 512
    ebm = load_ebm_config(None, {"train.epochs": 3, "seed": 5})
    assert ebm.train.epochs == 3 and ebm.seed == 5
    dpp = load_dpp_config(None, {"total_steps": 64, "eval.episodes": 2})
    assert dpp.total_steps == 64 and dpp.eval.episodes == 2


def test_override_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="did you mean"):
        load_config(None, {"eval.evry_steps": 512})
    with pytest.raises(ConfigError, match="'seed.x'.*seed is not a section"):
        apply_overrides({"seed": 0}, {"seed.x": 1})
    assert apply_overrides({"a": {"b": 1}}, {"a.c": 2, "d": None}) == {"a": {"b": 1, "c": 2}}


def test_set_values_are_yaml() -> None:
    assert parse_set(["total_steps=4096", "env.tier=[easy, hard]", "x.y=true", "s=abc"]) == {
        "total_steps": 4096, "env.tier": ["easy", "hard"], "x.y": True, "s": "abc"}
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_set(["total_steps"])


def test_cli_refuses_steps_for_ebm_and_epochs_for_rl(tmp_path: Path) -> None:
    from nav_policy.cli import main

    assert main(["train", "ebm", "--total-steps", "5", "--runs", str(tmp_path)]) == 2
    assert main(["train", "local", "--epochs", "5", "--runs", str(tmp_path)]) == 2
    assert main(["train", "local", "--set", "nonsense", "--runs", str(tmp_path)]) == 2
    assert not any(tmp_path.iterdir())  # refused before any run directory
