"""Run directories: config, command, seed, git commit, checkpoints, logs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from nav_policy.errors import ConfigError

_REPO = Path(__file__).resolve().parents[2]


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_REPO, capture_output=True,
                             text=True, timeout=5, check=False)
        sha = out.stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_REPO,
                               capture_output=True, text=True, timeout=5, check=False).stdout.strip()
        return (sha + ("-dirty" if dirty else "")) if sha else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def create_run_dir(root: str | Path, kind: str, config: dict[str, Any], seed: int) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run = Path(root) / kind / f"{stamp}_seed{seed}"
    run.mkdir(parents=True, exist_ok=False)
    (run / "checkpoints").mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (run / "command.txt").write_text(" ".join(sys.argv) + "\n")
    meta = {"kind": kind, "seed": seed, "git_commit": git_commit(), "created": stamp,
            "python": sys.version.split()[0]}
    if kind in ("local", "ebm"):  # held-out evaluation worlds: training/evaluation.py
        meta["eval_world_naming"] = "sequential"  # world seed = eval.seed + i
    (run / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return run


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, after the checkpoint was saved: the run and its step."""

    def __init__(self, run: Path, step: int) -> None:
        super().__init__(f"stopped at step {step}")
        self.run, self.step = run, step


def read_meta(run: Path) -> dict[str, Any]:
    try:
        return json.loads((run / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{run} is not a nav_policy run directory (meta.json: {exc})") from exc


def write_meta(run: Path, **updates: Any) -> None:
    meta = read_meta(run)
    meta.update(updates)
    (run / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
