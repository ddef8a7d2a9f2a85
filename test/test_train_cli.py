"""`nav-policy train local` as a user types it: resume extends or says there is nothing to do,
the env section is checked before any worker starts, the step rounding is said, and Ctrl-C
ends with a clean line, the checkpoint, exit 130 and the run directory."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

EXE = str(Path(sys.executable).parent / "nav-policy")

TINY = """\
algo: ppo
seed: 0
total_steps: {total}
n_envs: {n_envs}
vec_env: {vec_env}
net_arch: [16]
checkpoint_every_steps: 100000
env:
  motion_mode: kinematic
  {env_extra}
curriculum:
  - {{start_step: 0, tiers: {{easy: 1.0}}}}
ppo: {{n_steps: 64, batch_size: 64, n_epochs: 1}}
eval: {{every_steps: 1000000, episodes_per_tier: 1, tiers: [easy]}}
"""


def config(tmp_path: Path, total: int = 64, n_envs: int = 1, vec_env: str = "dummy",
           env_extra: str = "goal_tolerance: 0.25") -> Path:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY.format(total=total, n_envs=n_envs, vec_env=vec_env, env_extra=env_extra))
    return cfg


def cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def run_dir(stderr: str) -> Path:
    dirs = re.findall(r"run directory: (\S+)", stderr)
    assert dirs, stderr[-2000:]
    return Path(dirs[-1])


def test_resume_extends_or_says_nothing_to_do(tmp_path: Path) -> None:
    done = cli("train", "local", "--config", str(config(tmp_path)), "--runs", str(tmp_path / "r"),
               "--total-steps", "40")
    assert done.returncode == 0, done.stderr[-2000:]
    # PPO trains whole rollouts: said, and the bar's total is what really trains
    assert "total_steps 40 trains to step 64" in done.stderr, done.stderr[-2000:]
    assert "/64" in done.stderr
    run = run_dir(done.stderr)
    assert done.stderr.count(f"run directory: {run}") == 2  # at the start and at the end
    assert json.loads((run / "meta.json").read_text())["trained_steps"] == 64
    again = cli("train", "local", "--resume", str(run))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "nothing to train" in again.stderr and "--total-steps" in again.stderr
    more = cli("train", "local", "--resume", str(run), "--total-steps", "128")
    assert more.returncode == 0, more.stderr[-2000:]
    assert "extending" in more.stderr
    meta = json.loads((run / "meta.json").read_text())
    assert meta["trained_steps"] == 128
    assert (run / "checkpoints" / "step_128.zip").is_file()
    fewer = cli("train", "local", "--resume", str(run), "--total-steps", "100")
    assert fewer.returncode == 2 and "already trained 128 steps" in fewer.stderr, fewer.stderr


@pytest.mark.parametrize("env_extra,needle", [
    ("lidar_nosie: 0.02", "env: unknown key 'lidar_nosie' (did you mean 'lidar_noise'?)"),
    ("sectors: 0", "env:"),
])
def test_env_section_checked_before_workers(tmp_path: Path, env_extra: str, needle: str) -> None:
    cfg = config(tmp_path, n_envs=2, vec_env="subproc", env_extra=env_extra)
    done = cli("train", "local", "--config", str(cfg), "--runs", str(tmp_path / "r"))
    assert done.returncode == 2, done.stderr[-3000:]
    assert needle in done.stderr, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 3
    assert not (tmp_path / "r").exists()  # no empty run folder


def test_ctrl_c_saves_and_exits_130(tmp_path: Path) -> None:
    from test_interrupts import Cli, assert_gone

    cfg = config(tmp_path, total=10_000_000, n_envs=2, vec_env="subproc")
    run_cli = Cli("train", "local", "--config", str(cfg), "--runs", str(tmp_path / "r"))
    run_cli.wait_for(r"run directory: \S+")
    run_cli.wait_for(r"train local:\s+\d+%.*?\b[1-9]\d*/")  # the bar moved: PPO is stepping
    workers = run_cli.descendants()
    os.killpg(run_cli.proc.pid, signal.SIGINT)  # as a terminal sends it: workers get it too
    rc = run_cli.finish()
    err = run_cli.stderr
    assert rc == 130, err[-3000:]
    assert "Traceback" not in err and "EOFError" not in err, err[-3000:]
    m = re.search(r"\ninterrupted: checkpoint saved at step (\d+); resume with: nav-policy "
                  r"train local --resume (\S+)", err)
    assert m, err[-3000:]
    run = Path(m.group(2))
    assert (run / "checkpoints" / f"step_{m.group(1)}.zip").is_file()
    assert err.rstrip().endswith(f"run directory: {run}")
    assert_gone(workers)
