"""`train dpp`: a tiny run writes a run directory, resumes, and exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nav_policy.deception.config import load_dpp_config
from nav_policy.deception.export import export_run
from nav_policy.deception.train import train_dpp
from nav_policy.errors import ConfigError

TINY = {"total_steps": 64, "n_envs": 2, "n_steps": 16, "batch_size": 16, "n_epochs": 1,
        "hidden": 16, "checkpoint_every_steps": 32,
        "tasks": {"families": [{"kind": "grid", "sizes": [6]}], "pool_size": 2},
        "eval": {"every_steps": 64, "episodes": 2}}


def test_train_resume_export(tmp_path: Path) -> None:
    run = train_dpp(None, None, tmp_path, TINY)
    meta = json.loads((run / "meta.json").read_text())
    assert meta["kind"] == "dpp" and meta["trained_steps"] == 64
    assert (run / "checkpoints" / "last.pt").exists() and (run / "eval.csv").exists()
    again = train_dpp(None, run, tmp_path, {"total_steps": 96})
    assert again == run
    assert json.loads((run / "meta.json").read_text())["trained_steps"] == 96
    report = export_run(run, tmp_path / "m.onnx", parity_graphs=2)
    assert report["parity_max_abs_diff"] <= 1e-4 and (tmp_path / "m.onnx").exists()


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="n_envs"):
        load_dpp_config(None, {"n_envs": 0})
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: sneaky\n")
    with pytest.raises(ConfigError, match="mode"):
        load_dpp_config(bad)


def test_shipped_config_is_valid() -> None:
    cfg = load_dpp_config(Path(__file__).resolve().parents[1] / "config" / "train_dpp.yaml")
    assert cfg.mode == "ambiguity" and cfg.layers == 2
