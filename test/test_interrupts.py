"""Ctrl-C as a user presses it: a real `nav-policy` process gets SIGINT (once, twice, or the
whole process group as a terminal sends it). It must end, workers included, exit 130 without a
traceback, and keep what had finished."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

EXE = str(Path(sys.executable).parent / "nav-policy")
HANG = 90.0  # seconds: a hang detector on a loaded machine, not a speed target


class Cli:
    """`nav-policy ARGS` in its own session, stderr collected by a thread."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen([EXE, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=cwd,
                                     start_new_session=True)
        self.err: list[str] = []
        self.out: list[str] = []
        self._threads = [threading.Thread(target=self._read, args=(s, b), daemon=True)
                         for s, b in ((self.proc.stderr, self.err), (self.proc.stdout, self.out))]
        for t in self._threads:
            t.start()

    @staticmethod
    def _read(stream: object, buf: list[str]) -> None:
        while True:
            chunk = stream.read(1)  # type: ignore[attr-defined]
            if not chunk:
                return
            buf.append(chunk)

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def wait_for(self, pattern: str, timeout: float = 300.0) -> re.Match[str]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(pattern, self.stderr)
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.kill()
        pytest.fail(f"never saw {pattern!r} (rc {self.proc.returncode}):\n{self.stderr[-3000:]}")

    def descendants(self) -> list[int]:
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            out += [int(k) for k in kids]
            todo += [int(k) for k in kids]
        return out

    def finish(self, timeout: float = HANG) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"still running {timeout:.0f} s after Ctrl-C:\n{self.stderr[-3000:]}")
        for t in self._threads:
            t.join(5)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def assert_gone(pids: list[int], timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and any(alive(p) for p in pids):
        time.sleep(0.2)
    assert not [p for p in pids if alive(p)], "worker processes outlived the command"


# ---- bench --------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["twice", "group"])
def test_bench_ctrl_c_writes_finished_episodes(tmp_path: Path, how: str) -> None:
    """Process pool: two SIGINTs half a second apart (or one to the process group, as a
    terminal does) end it, exit 130, and the finished episodes are in the report folder."""
    out = tmp_path / "bench"
    cli = Cli("bench", "--planner", "dwa", "--tier", "easy", "--episodes", "12", "--seed", "0",
              "--workers", "2", "--out", str(out), "--no-plots")
    cli.wait_for(r"\b([1-9]\d*)/12\b")  # the progress bar: at least one episode finished
    workers = cli.descendants()
    assert workers, "expected process-pool workers"
    if how == "twice":
        cli.proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        cli.proc.send_signal(signal.SIGINT)
    else:
        os.killpg(cli.proc.pid, signal.SIGINT)
    rc = cli.finish()
    err = cli.stderr
    assert rc == 130, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert_gone(workers)
    m = re.search(r"interrupted: (\d+) of 12 episodes finished", err)
    assert m, err[-3000:]
    finished = int(m.group(1))
    assert 1 <= finished < 12
    payload = json.loads((out / "results.json").read_text())
    assert payload["partial"] is True
    assert payload["episodes_finished"] == finished and payload["episodes_planned"] == 12
    with (out / "episodes.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == finished


def test_bench_ctrl_c_before_any_episode(tmp_path: Path) -> None:
    """Interrupted before an episode finished: exit 130, said, and no empty report folder."""
    out = tmp_path / "bench"
    cli = Cli("bench", "--planner", "dwa", "--tier", "easy", "--episodes", "12", "--seed", "0",
              "--workers", "2", "--out", str(out), "--no-plots")
    cli.wait_for(r"\b0/12\b")  # the bar is up, the workers are starting
    cli.proc.send_signal(signal.SIGINT)
    rc = cli.finish()
    assert rc == 130, cli.stderr[-3000:]
    assert "interrupted before any episode finished; nothing written" in cli.stderr
    assert "Traceback" not in cli.stderr and not out.exists()


def test_bench_ray_ctrl_c_writes_finished_episodes(tmp_path: Path) -> None:
    """The same on a local Ray cluster: Ctrl-C ends the driver and Ray's workers."""
    pytest.importorskip("ray")
    out = tmp_path / "bench"
    cli = Cli("bench", "--planner", "dwa", "--tier", "easy", "--episodes", "12", "--seed", "0",
              "--ray", "local", "--out", str(out), "--no-plots")
    cli.wait_for(r"\b([1-9]\d*)/12\b", timeout=400)
    workers = cli.descendants()
    cli.proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    cli.proc.send_signal(signal.SIGINT)
    rc = cli.finish()
    err = cli.stderr
    assert rc == 130, err[-3000:]
    assert_gone(workers, 30.0)
    assert re.search(r"interrupted: \d+ of 12 episodes finished", err), err[-3000:]
    assert json.loads((out / "results.json").read_text())["partial"] is True


# ---- demo ---------------------------------------------------------------------------------------


def test_demo_ctrl_c_stops_the_nodes(tmp_path: Path) -> None:
    """Ctrl-C (to the process group, as a terminal sends it) during the mission: every node
    process ends, the picture and metrics.json (marked interrupted) are written, exit 130."""
    pytest.importorskip("rclpy")
    out = tmp_path / "demo"
    cli = Cli("demo", "--headless", "--out", str(out), "--timeout", "300")
    cli.wait_for(r"step 1/\d", timeout=240)  # nodes up, the mission running
    nodes = cli.descendants()
    assert len(nodes) >= 4, nodes
    os.killpg(cli.proc.pid, signal.SIGINT)
    rc = cli.finish()
    err = cli.stderr
    assert rc == 130, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert "interrupted" in err
    assert_gone(nodes)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] is True and metrics["mission_state"] == "interrupted"
    assert (out / "trajectory.png").stat().st_size > 0 and (out / "run.mcap").stat().st_size > 0
