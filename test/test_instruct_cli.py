"""`nav-policy parse`: exit codes, one JSON object on stdout, batch mode, schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nav_policy.cli import main
from nav_policy.paths import config_path

LANDMARKS = str(config_path("landmarks_demo.yaml"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["parse", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_stdout_is_exactly_one_object(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "go past the couch and stop at the kitchen door",
        "--landmarks",
        LANDMARKS,
        "--no-embeddings",
        "--json",
        "-",
    )
    assert code == 0 and err == ""
    assert out.endswith("\n") and out.count("\n") == 1
    plan = json.loads(out)
    assert [(s["action"], s["target"]) for s in plan["steps"]] == [
        ("go_past", "couch"),
        ("go_to", "kitchen door"),
    ]
    assert set(plan["steps"][0]) == {
        "action",
        "target",
        "direction",
        "distance_m",
        "angle_deg",
        "duration_s",
    }


def test_warnings_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "go to the fridge at 5 m/s",
        "--landmarks",
        LANDMARKS,
        "--no-embeddings",
        "--json",
        "-",
    )
    assert code == 0 and json.loads(out)["steps"][0]["target"] == "fridge"
    assert "ignored speed request" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["go to the garage", "--landmarks", LANDMARKS, "--no-embeddings"],
        ["go to 100, 100", "--json", "-"],
        ["sing a song"],
        [""],
        [],
        ["go to the fridge", "--landmarks", "/nonexistent/landmarks.yaml"],
        ["go to the fridge", "--image", "/nonexistent.jpg"],
    ],
)
def test_failed_parse_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("nav-policy parse: ") and "Traceback" not in err


def test_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "turn left by 45 degrees and move forward 2 m")
    assert code == 0 and out.splitlines() == [
        "1. turn direction=left angle_deg=45.0",
        "2. move direction=forward distance_m=2.0",
    ]


def test_json_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    assert run(capsys, "stop", "--json", str(path))[0] == 0
    assert json.loads(path.read_text())["steps"][0]["action"] == "stop"


def test_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--schema", "--json", "-")
    assert code == 0 and json.loads(out)["$defs"]["Step"]["additionalProperties"] is False


def test_batch_one_line_per_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    batch = tmp_path / "in.jsonl"
    lines = [
        {"text": "go to the fridge"},
        {"text": "go to 3, 4"},
        {"nope": 1},
        {"text": "enter the couch"},
        {"text": "turn around"},
    ]
    batch.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n\n")
    code, out, _ = run(capsys, "--batch", str(batch), "--landmarks", LANDMARKS, "--no-embeddings")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 6
    assert rows[0]["steps"][0]["target"] == "fridge"
    assert "coordinates" in rows[1]["error"] and "line 3" in rows[2]["error"]
    assert "not an area" in rows[3]["error"] and rows[4]["steps"][0]["direction"] == "around"
    assert rows[5] == {"error": "line 6: not JSON"}


def test_batch_missing_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "--batch", str(tmp_path / "none.jsonl"))
    assert code == 2 and out == "" and err.count("\n") == 1


def test_vlm_backend_server_down_falls_back(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "go to the fridge",
        "--backend",
        "vlm",
        "--vlm-url",
        "http://127.0.0.1:9/v1",
        "--vlm-retries",
        "0",
        "--vlm-timeout",
        "1",
        "--landmarks",
        LANDMARKS,
        "--no-embeddings",
        "--json",
        "-",
    )
    assert code == 0 and json.loads(out)["steps"][0]["target"] == "fridge"
    assert "VLM backend failed" in err


def test_vlm_backend_reject(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "go to the fridge",
        "--backend",
        "vlm",
        "--vlm-url",
        "http://127.0.0.1:9/v1",
        "--vlm-retries",
        "0",
        "--fallback",
        "reject",
    )
    assert code == 2 and out == "" and "VLM backend" in err and err.count("\n") == 1


def test_subprocess_stdout_is_clean() -> None:
    """The real console path: nothing but the JSON object on stdout."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", "nav_policy.cli", "parse", "enter the kitchen and wait 5 seconds", "--landmarks", LANDMARKS, "--json", "-"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [s["action"] for s in json.loads(proc.stdout)["steps"]] == ["go_into", "wait"]
    assert proc.stdout.count("\n") == 1
