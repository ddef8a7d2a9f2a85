"""`nav-policy train local --seeds ... --ray local`: one resumable run per seed on a real local
Ray instance, and a summary that picks the best seed on the selection split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from nav_policy.errors import ConfigError
from nav_policy.training.sweep import parse_seeds, train_seeds


def _tiny_config(tmp: Path) -> Path:
    cfg = {
        "algo": "ppo", "seed": 0, "total_steps": 128, "n_envs": 2, "vec_env": "dummy",
        "net_arch": [16], "checkpoint_every_steps": 64,
        "env": {"motion_mode": "kinematic", "backend": "mujoco", "world_pool": 2,
                "world_pool_dir": str(tmp / "pool")},
        "curriculum": [{"start_step": 0, "tiers": {"easy": 1.0}}],
        "ppo": {"n_steps": 32, "batch_size": 32, "n_epochs": 1},
        "eval": {"every_steps": 64, "episodes_per_tier": 1, "tiers": ["easy"], "seed": 900000},
    }
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_parse_seeds():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("3-5") == [3, 4, 5]
    for bad in ("", "a", "1,1", "-2"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)


def test_seeds_on_local_ray_resume_and_summary(tmp_path):
    pytest.importorskip("ray")
    config = _tiny_config(tmp_path)
    root = train_seeds(config, [0, 1], ray="local", runs_root=tmp_path / "runs")
    summary = json.loads((root / "summary.json").read_text())
    rows = {r["seed"]: r for r in summary["seeds"]}
    assert set(rows) == {0, 1}
    for seed, row in rows.items():
        run = Path(row["run"])
        assert run.parent.parent.name == f"seed{seed}" and run.name.endswith(f"_seed{seed}")
        assert row["trained_steps"] >= 128
        assert 0.0 <= row["selection_success"] <= 1.0 and Path(row["model"]).is_file()
        meta = json.loads((run / "meta.json").read_text())
        assert meta["seed"] == seed
        assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == seed
    best = max(rows.values(), key=lambda r: (r["selection_success"], -r["seed"]))
    assert summary["best_seed"] == best["seed"]
    assert "(best)" in (root / "summary.md").read_text()
    # resume: finished seeds are skipped (same run, no new training); a missing seed restarts
    shutil.rmtree(root / "seed1")
    again = train_seeds(None, None, resume=root)
    rows2 = {r["seed"]: r for r in json.loads((again / "summary.json").read_text())["seeds"]}
    assert rows2[0]["run"] == rows[0]["run"]
    assert rows2[0]["trained_steps"] == rows[0]["trained_steps"]
    assert Path(rows2[1]["run"]).is_dir() and rows2[1]["trained_steps"] >= 128


def test_seeds_errors(tmp_path):
    with pytest.raises(ConfigError, match="not a seed sweep"):
        train_seeds(None, None, resume=tmp_path)
    with pytest.raises(ConfigError, match="needs --config"):
        train_seeds(None, [0])
