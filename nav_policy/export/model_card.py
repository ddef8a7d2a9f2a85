"""Model cards: a markdown file beside each exported ONNX model (models/NAME.md)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml

from nav_policy.training.rundir import read_meta


def _eval_rows(run: Path, step: int) -> list[dict[str, str]]:
    path = run / "eval.csv"
    if not path.exists():
        return []
    with path.open() as f:
        return [r for r in csv.DictReader(f) if int(r["step"]) == step]


def _files(names: str | list[str]) -> str:
    """`a` or `a`, `b`: the dataset file(s) a stage cloned (one name in older runs)."""
    return ", ".join(f"`{n}`" for n in ([names] if isinstance(names, str) else names))


def _command(argv: str) -> str:
    """The recorded command with the interpreter/venv path reduced to the program name."""
    if not argv or argv == "?":
        return "?"
    first, _, rest = argv.partition(" ")
    return f"{Path(first).name} {rest}".strip()


def _stage(run: Path) -> dict[str, Any]:
    meta = read_meta(run)
    return {"run": run.name, "config": yaml.safe_load((run / "config.yaml").read_text()),
            "command": (run / "command.txt").read_text().strip()
            if (run / "command.txt").exists() else "?", "meta": meta}


def write_model_card(out: Path, run: Path, report: dict[str, Any]) -> Path:
    """Card with config, seed, steps, wall time, commit, parity and held-out evaluation."""
    stages = [_stage(run)]
    init = stages[0]["meta"].get("init_from")
    if init:  # staged training: describe the run the weights came from too
        src_run = Path(init).parents[1] if Path(init).parent.name == "checkpoints" \
            else Path(init).parent
        if (src_run / "meta.json").exists():
            stages.insert(0, _stage(src_run))
    step = int(report["trained_steps"]) - int(stages[-1]["meta"].get("init_from_steps", 0))
    rows = _eval_rows(run, step)
    lines = [f"# {out.stem}", "",
             f"Learned local planner (kind `rl`), exported by `nav-policy export` from "
             f"`{run}` ({report['checkpoint']}).", "",
             "| field | value |", "|---|---|",
             f"| total environment steps | {report['trained_steps']:,} |",
             f"| training stages | {len(stages)} |",
             f"| parity (ORT vs SB3 policy) | max abs diff {report['parity_max_abs_diff']:.2e} on "
             f"{report['parity_samples']} observations |",
             f"| input | `obs` float32 [N, {report.get('obs_dim', '?')}] (codec v1, raw SI) |",
             "| output | `cmd` float32 [N, 2] = (v m/s, w rad/s) |", ""]
    for i, st in enumerate(stages, 1):
        m = st["meta"]
        cfg = st["config"]
        lines += [f"## Stage {i}: `{st['run']}`", "",
                  f"- command: `{_command(st['command'])}`",
                  f"- seed {cfg.get('seed')}, algo {cfg.get('algo')}, steps "
                  f"{m.get('trained_steps', '?')}, wall time {m.get('wall_time_s', '?')} s, "
                  f"commit `{m.get('git_commit', '?')}`",
                  *([f"- note: {m['note']}"] if m.get("note") else []),
                  *([f"- initialised from `{m['init_from']}`"] if m.get("init_from") else []),
                  *([f"- actor first cloned from the expert demonstrations "
                     f"{_files(m['bc_init']['dataset'])} ({m['bc_init']['samples']:,} samples, "
                     f"{m['bc_init']['epochs']} epochs, action MSE {m['bc_init'].get('initial_mse', '?')}"
                     f" -> {m['bc_init']['final_mse']}); eval.csv step 0 = the cloned policy"]
                    if m.get("bc_init") else []),
                  "", "```yaml", yaml.safe_dump(cfg, sort_keys=False).strip(), "```", ""]
    if rows:
        lines += ["## Held-out evaluation at the exported checkpoint", "",
                  "Deterministic policy, no sensor noise, world seeds "
                  f"{stages[-1]['config']['eval']['seed']}+i "
                  f"({stages[-1]['config']['eval']['episodes_per_tier']} per tier), "
                  "never used in training.", "",
                  "| tier | success | collision | timeout |", "|---|---|---|---|"]
        lines += [f"| {r['tier']} | {float(r['success']):.2f} | {float(r['collision']):.2f} | "
                  f"{float(r['timeout']):.2f} |" for r in rows]
        lines.append("")
    lines += ["The side-by-side benchmark against DWA and MPPI (same episodes, one run) is in "
              "docs/BENCHMARKS.md.", ""]
    card = out.with_suffix(".md")
    card.write_text("\n".join(lines))
    (out.with_suffix(".export.json")).write_text(json.dumps(report, indent=2) + "\n")
    return card
