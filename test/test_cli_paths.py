"""Paths a user gets wrong (a folder where a file is expected) are refused before anything
starts, with what is wrong with the path; and the demo's messages say what is true."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

EXE = str(Path(sys.executable).parent / "nav-policy")
REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def refused(done: subprocess.CompletedProcess, needle: str) -> None:
    assert done.returncode == 2, done.stderr[-2000:]
    assert needle in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2, done.stderr


def test_export_out_folder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    out = tmp_path / "models"
    out.mkdir()
    refused(cli("export", str(run), "--out", str(out)), f"--out: {out} is a folder")
    assert not list(tmp_path.rglob("*.tmp.onnx"))


def test_export_run_dir_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "run.txt"
    f.write_text("x")
    refused(cli("export", str(f), "--out", str(tmp_path / "m.onnx")), "is not a run directory")


def test_bench_model_folder(tmp_path: Path) -> None:
    refused(cli("bench", "--planner", "rl", "--model", str(tmp_path), "--episodes", "1",
                "--out", str(tmp_path / "b")), f"{tmp_path} is a folder, not a file")


@pytest.mark.parametrize("args,needle", [
    (["--planner", "rl", "--model", "{tmp}"], "is a folder, not a file"),
    (["--planner", "rl", "--model", "{tmp}/nothing.onnx"], "does not exist"),
    (["--planner", "dwa", "--model", str(REPO / "models/local_rl.onnx")],
     "--model applies to the learned planners"),
])
def test_demo_checks_the_model_before_any_node(tmp_path: Path, args: list[str],
                                               needle: str) -> None:
    done = cli("demo", "--headless", "--out", str(tmp_path / "out"),
               *[a.replace("{tmp}", str(tmp_path)) for a in args], timeout=120)
    refused(done, needle)
    assert not (tmp_path / "out").exists()  # nothing started, nothing written


def test_demo_messages_are_true() -> None:
    from nav_policy.demo import planner_note
    from nav_policy.paths import model_path

    assert model_path("local_rl.onnx").is_file()
    note = planner_note(argparse.Namespace(planner=None, model=None, deceptive=False), "dwa")
    assert "not found" not in note and "default" in note
    helptext = cli("demo", "--help").stdout
    assert "fails the default" not in helptext
    assert "pass the default mission" in " ".join(helptext.split())


def test_runtime_names_a_folder(tmp_path: Path) -> None:
    """The node and every planner load models through PolicyRuntime: a folder is named so."""
    from nav_policy.errors import ModelError
    from nav_policy.runtime.session import PolicyRuntime

    with pytest.raises(ModelError, match="is a folder, not an .onnx file"):
        PolicyRuntime(tmp_path)


def test_deceive_model_folder(tmp_path: Path) -> None:
    import numpy as np

    from nav_policy.deception.graphs import grid_graph, save_graph

    graph = tmp_path / "g.json"
    save_graph(grid_graph(4, 4, 0.0, 4, np.random.default_rng(0)), str(graph))
    refused(cli("deceive", "--graph", str(graph), "--start", "0", "--goal", "15", "--decoy", "3",
                "--model", str(tmp_path)), "is a folder")
