"""Tests of the research scripts in experiments/ (not part of the product, nor of `make test`).

    make test-experiments      # .venv/bin/python -m pytest experiments/

The study runs one episode per cell on the shipped ebm, about two minutes on 2 cores.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "experiments"))

from ebm_study import auroc, main, split_before_collision  # noqa: E402


def test_ebm_study_runs_every_part_on_the_shipped_model(tmp_path: Path) -> None:
    """The study command of the README, one episode per cell: numbers in range, a picture."""

    assert auroc(np.zeros(5), np.ones(5)) == 1.0 and auroc(np.ones(5), np.zeros(5)) == 0.0
    assert auroc(np.zeros(4), np.zeros(4)) == 0.5
    out, png = tmp_path / "study.json", tmp_path / "study.png"
    assert main(["--model", str(REPO / "models" / "local_ebm.onnx"), "--episodes", "1", "--no-progress",
                 "--gate-factors", "0.5,0", "--gate-thresholds", "file,-1.5", "--json", str(out),
                 "--plot", str(png)]) == 0
    r = json.loads(out.read_text())
    assert {"1", "2"} <= set(r["steps"]) <= {"1", "2", "4", "8"}  # up to the model's max_steps
    for row in r["steps"].values():
        assert all(0.0 <= row[t]["success_rate"] <= 1.0 for t in row)
    assert set(r["gate"]) == {"ungated", "speed_factor_0.5", "speed_factor_0",
                              "speed_factor_0.5_above_-1.5", "speed_factor_0_above_-1.5"}
    hand = r["handover"]
    assert hand["fallback"] == "dwa" and 0.0 <= hand["handover_share"] <= 1.0
    # collisions against the ungated model, world by world, from the recorded outcomes
    paired = r["collisions_vs_ungated"]
    assert set(paired) == set(r["gate"]) - {"ungated"} | {"handover"}
    base = r["gate"]["ungated"]
    for name, tiers in paired.items():
        row = hand if name == "handover" else r["gate"][name]
        for t, cell in tiers.items():
            assert len(row[t]["outcomes"]) == 1 and set(row[t]["outcomes"]) <= set("sct")
            assert row[t]["collision_rate"] == row[t]["outcomes"].count("c")
            ungated_c, this_c = base[t]["outcomes"] == "c", row[t]["outcomes"] == "c"
            assert (cell["avoided"], cell["added"]) == (int(ungated_c and not this_c),
                                                        int(this_c and not ungated_c))
            assert cell["p_value"] == 1.0  # one episode can never be evidence
    assert all(0.0 <= hand[t]["collision_rate"] <= 1.0 for t in ("hard", "dynamic"))
    pre = r["precollision"]
    assert pre["episodes"] == 2 and pre["n_before"] <= 10 * pre["collisions"]
    assert (pre["n_before"] > 0) == (pre["collisions"] > 0) and pre["n_other"] > 0
    u = r["uncertainty"]
    assert u["training_like"]["n"] > 0 and u["random_observations"]["n"] > 0
    assert 0.0 <= u["auroc"]["random"] <= 1.0
    assert set(r["recovery"]) >= {"ebm", "mppi"}
    assert png.stat().st_size > 10_000
    assert "unseen_tiers" not in u and set(u["by_tier"]) == {"easy", "medium", "hard", "dynamic"}
    # a model trained on some tiers only: the others are scored as unseen
    assert main(["--model", str(REPO / "models" / "local_ebm.onnx"), "--episodes", "1", "--no-progress", "--parts",
                 "uncertainty", "--seen-tiers", "easy,medium", "--json", str(out)]) == 0
    u = json.loads(out.read_text())["uncertainty"]
    assert u["seen_tiers"] == ["easy", "medium"] and u["unseen_tiers"]["n"] > 0
    assert u["training_like"]["n"] + u["unseen_tiers"]["n"] == sum(
        t["n"] for t in u["by_tier"].values())
    assert 0.0 <= u["auroc"]["unseen_tiers"] <= 1.0
    with pytest.raises(SystemExit) as exc:
        main(["--model", str(REPO / "models" / "local_ebm.onnx"), "--seen-tiers", "easy,lava"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["--model", str(REPO / "models" / "local_ebm.onnx"), "--gate-factors", "1.5"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["--model", str(REPO / "models" / "local_ebm.onnx"), "--gate-thresholds", "high"])
    assert exc.value.code == 2


def test_precollision_split_takes_the_last_steps_of_a_crash() -> None:
    e = [float(i) for i in range(15)]
    assert split_before_collision(e, True, 10) == (e[5:], e[:5])
    assert split_before_collision(e, False, 10) == ([], e)
    assert split_before_collision(e[:4], True, 10) == (e[:4], [])
    assert split_before_collision([1.0, math.nan, 2.0], True, 1) == ([2.0], [1.0])

