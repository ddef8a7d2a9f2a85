"""`nav-policy deceive`: JSON output, valid paths within budget, exit code 2 on bad input."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch

from nav_policy import cli, cli_commands
from nav_policy.deception.examples import tiny_graph
from nav_policy.deception.export import export_model
from nav_policy.deception.gnn import DeceptionGNN
from nav_policy.deception.graphs import grid_graph, save_graph


@pytest.fixture(autouse=True)
def _deceive_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    mods = tuple(dict.fromkeys((*cli_commands._MODULES, "nav_policy.deception.cli")))
    monkeypatch.setattr(cli_commands, "_MODULES", mods)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("deceive")
    save_graph(tiny_graph(), d / "tiny.json")
    save_graph(grid_graph(10, 10, 0.1, 8, np.random.default_rng(3)), d / "grid.json")
    data = tiny_graph().to_dict()
    data["nodes"].append({"id": 42, "pos": [5, 5]})
    (d / "island.json").write_text(json.dumps(data))
    (d / "broken.json").write_text('{"nodes": [{"id": 1}], "links": [{"source": 1}]}')
    torch.manual_seed(0)
    export_model(DeceptionGNN(hidden=16, layers=2), d / "dpp.onnx", mode="ambiguity",
                 beta_per_edge=1.0, trained_steps=0, source_commit="test", parity_graphs=2)
    return {"tiny": d / "tiny.json", "grid": d / "grid.json", "island": d / "island.json",
            "broken": d / "broken.json", "model": d / "dpp.onnx"}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("policy", ["rl", "pi_d1", "pi_d2", "pi_d4", "shortest"])
@pytest.mark.parametrize("budget", ["1.2", "2.0"])
def test_json_stdout(files: dict[str, Path], capsys: pytest.CaptureFixture[str], policy: str,
                     budget: str) -> None:
    grid = json.loads(files["grid"].read_text())
    ids = [n["id"] for n in grid["nodes"]]
    start, goal, decoy = ids[0], ids[-1], ids[len(ids) // 2]
    rc, out, err = _run(["deceive", "--graph", str(files["grid"]), "--start", str(start),
                         "--goal", str(goal), "--decoy", str(decoy), "--budget", budget,
                         "--policy", policy, "--model", str(files["model"]), "--json", "-"],
                        capsys)
    assert rc == 0, err
    assert out.count("\n") == 1
    res = json.loads(out)
    assert set(res) == {"path", "cost", "metrics"}
    path = res["path"]
    assert path[0] == start and path[-1] == goal
    links = {(lk["source"], lk["target"]) for lk in grid["links"]}
    assert all((a, b) in links or (b, a) in links for a, b in pairwise(path))
    assert res["metrics"]["within_budget"]
    assert res["cost"] <= float(budget) * res["metrics"]["optimal_cost"] * (1 + 1e-9)


def test_pi_d2_on_tiny_graph(files: dict[str, Path], capsys: pytest.CaptureFixture[str],
                             tmp_path: Path) -> None:
    out_file = tmp_path / "out.json"
    rc, out, err = _run(["deceive", "--graph", str(files["tiny"]), "--start", "0", "--goal", "3",
                         "--decoy", "4", "--policy", "pi_d2", "--json", str(out_file)], capsys)
    assert rc == 0 and out == "" and "wrote" in err
    res = json.loads(out_file.read_text())
    assert res["path"] == [0, 1, 5, 3] and res["cost"] == pytest.approx(4.0)
    assert res["metrics"]["ldp_completion"] == pytest.approx(0.5)


@pytest.mark.parametrize(("args", "match"), [
    (["--graph", "{tiny}", "--start", "0", "--goal", "99", "--decoy", "4"], "unknown node id 99"),
    (["--graph", "{tiny}", "--start", "0", "--goal", "3", "--decoy", "77"], "unknown node id 77"),
    (["--graph", "{island}", "--start", "0", "--goal", "42", "--decoy", "4"], "disconnected"),
    (["--graph", "{broken}", "--start", "1", "--goal", "1", "--decoy", "1"], "links[0]"),
    (["--graph", "{tiny}/nope", "--start", "0", "--goal", "3", "--decoy", "4"], "cannot read"),
    (["--graph", "{tiny}", "--start", "0", "--goal", "3", "--decoy", "4", "--budget", "0.5"],
     "budget ratio"),
    (["--graph", "{tiny}", "--start", "0", "--goal", "3", "--decoy", "4", "--model",
      "{tiny}"], "cannot load model"),
])
def test_bad_input_exits_2(files: dict[str, Path], capsys: pytest.CaptureFixture[str],
                           args: list[str], match: str) -> None:
    argv = ["deceive", *[a.replace("{tiny}", str(files["tiny"]))
                         .replace("{island}", str(files["island"]))
                         .replace("{broken}", str(files["broken"])) for a in args], "--json", "-"]
    rc, out, err = _run(argv, capsys)
    assert rc == 2
    assert out == ""
    assert match in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("mode", ["ambiguity", "exaggeration"])
def test_shipped_model(files: dict[str, Path], capsys: pytest.CaptureFixture[str],
                       mode: str) -> None:
    from nav_policy.deception.policy import default_model

    if not default_model(mode).exists():
        pytest.skip(f"models/dpp_{mode}.onnx not shipped")
    rc, out, err = _run(["deceive", "--graph", str(files["tiny"]), "--start", "0", "--goal", "3",
                         "--decoy", "4", "--mode", mode, "--budget", "1.5", "--json", "-"],
                        capsys)
    assert rc == 0, err
    res = json.loads(out)
    assert res["path"][0] == 0 and res["path"][-1] == 3 and res["cost"] <= 4.5 + 1e-9
    assert res["metrics"]["model"].endswith(f"dpp_{mode}.onnx")


def test_missing_model_exits_2(files: dict[str, Path], capsys: pytest.CaptureFixture[str],
                               tmp_path: Path) -> None:
    rc, out, err = _run(["deceive", "--graph", str(files["tiny"]), "--start", "0", "--goal", "3",
                         "--decoy", "4", "--model", str(tmp_path / "none.onnx")], capsys)
    assert rc == 2 and out == "" and "not found" in err
