"""Evaluate the embedded parser on the instruction corpus: accuracy per split and latency.

    python -m nav_policy.instruct.evaluate [--corpus test/data/instructions.jsonl]
        [--landmarks config/landmarks_demo.yaml] [--repeats 5] [--json -] [--tune]
    python -m nav_policy.instruct.evaluate --real [--real-corpus FILE.jsonl ...] [--tune]
        [--r2r R2R.json] [--backend embedded|vlm --vlm-url URL --vlm-model M] [--json -]

--real evaluates the real-instruction corpus (test/data/real: HuRIC 2.1 and an R2R sample, each
line with its landmark file and, where needed, the robot pose): exact-plan accuracy over the
plannable lines and refusal correctness over the must-refuse lines, per split (real_accuracy).

Corpus lines: {"text", "split": "dev"|"heldout", "expect": {"steps": [...]}} for instructions
with a plan (steps may omit null fields), or {"text", "split", "reject": CODE} for instructions
that must be rejected with InstructionError.code == CODE. A line counts as correct when the plan
equals the expected one exactly, or the parser rejects with the expected code.

Latency is the wall time, and the parsing thread's CPU time, of InstructionParser.parse,
measured twice: over every corpus line with the embedding fallback disabled ("without"), and
over the lines whose grounding reaches the embedding model, with its query cache cleared before
each call ("with"); the model load is reported on its own. --tune re-derives the grounding threshold and margin from the dev split only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nav_policy.instruct.errors import InstructionError
from nav_policy.instruct.grounding import Grounder, MiniLMEmbedder, default_embedder
from nav_policy.instruct.landmarks import LandmarkMap, load_landmarks, normalize_name
from nav_policy.instruct.parser import (
    _PRONOUNS,
    InstructionParser,
    _check_phrase,
    _Ctx,
    _prepare,
    parse_clause,
    split_clauses,
)
from nav_policy.paths import config_path

SPLITS = ("dev", "heldout")
FALSE_ACCEPT_COST = 2.0  # tuning: moving to a wrong landmark is worse than refusing


def default_corpus() -> Path:
    """test/data/instructions.jsonl of the source checkout."""
    return Path(__file__).resolve().parents[2] / "test" / "data" / "instructions.jsonl"


@dataclass(frozen=True)
class Case:
    """One corpus line."""

    text: str
    split: str
    expect: dict[str, Any] | None
    reject: str | None
    landmarks: str | None = None  # a landmark file under config/ (real corpus lines)
    robot: tuple[float, float, float] | None = None  # the robot's pose (x, y, yaw) if given
    source: str | None = None


def load_corpus(path: str | Path) -> list[Case]:
    """Corpus lines as Cases; ValueError naming the line on a malformed one."""
    cases = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("split") not in SPLITS or ("expect" in row) == ("reject" in row):
            raise ValueError(
                f"{path}:{n}: needs split dev|heldout and exactly one of expect, reject"
            )
        robot = row.get("robot")
        cases.append(
            Case(
                row["text"], row["split"], row.get("expect"), row.get("reject"),
                row.get("landmarks"), tuple(float(v) for v in robot) if robot else None,
                row.get("source"),
            )
        )  # fmt: skip
    return cases


def expected_plan(case: Case) -> dict[str, Any] | None:
    """The expected plan with all six keys per step (so it compares with Plan.model_dump)."""
    if case.expect is None:
        return None
    from nav_policy.instruct.schema import Plan

    return Plan.model_validate(case.expect).model_dump(mode="json")


def run_case(parser: InstructionParser, case: Case, any_code: bool = False) -> tuple[bool, str]:
    """(correct, what the parser produced as one line). any_code: a refusal of a must-refuse
    line counts whatever its code (the real corpus; code agreement is reported on its own)."""
    try:
        got = parser.parse(case.text, pose=case.robot).plan.model_dump(mode="json")
    except InstructionError as exc:
        ok = case.reject is not None and (any_code or case.reject == exc.code)
        return ok, f"reject {exc.code}: {exc}"
    return got == expected_plan(case), json.dumps(got)


def accuracy(parser: InstructionParser, cases: Sequence[Case]) -> dict[str, Any]:
    """Per split: n, correct, accuracy and the failures (text, expected, got)."""
    report: dict[str, Any] = {}
    for split in SPLITS:
        rows = [c for c in cases if c.split == split]
        fails = []
        for case in rows:
            ok, got = run_case(parser, case)
            if not ok:
                fails.append(
                    {"text": case.text, "expected": case.reject or case.expect, "got": got}
                )
        n = len(rows)
        report[split] = {
            "n": n,
            "correct": n - len(fails),
            "accuracy": (n - len(fails)) / n if n else 0.0,
            "failures": fails,
        }
    return report


def _percentiles_ms(samples: list[tuple[float, float]]) -> dict[str, float]:
    """p50/p99 of wall time and of the parsing thread's CPU time, in ms."""
    if not samples:
        nan = float("nan")
        return {"n": 0, "p50_ms": nan, "p99_ms": nan, "cpu_p50_ms": nan, "cpu_p99_ms": nan}
    wall, cpu = (np.asarray(x) * 1e3 for x in zip(*samples, strict=True))
    return {
        "n": len(samples),
        "p50_ms": float(np.percentile(wall, 50)),
        "p99_ms": float(np.percentile(wall, 99)),
        "cpu_p50_ms": float(np.percentile(cpu, 50)),
        "cpu_p99_ms": float(np.percentile(cpu, 99)),
    }


def _time_parse(parser: InstructionParser, text: str) -> tuple[float, float]:
    """(wall seconds, thread CPU seconds) of one parse, rejected or not."""
    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        parser.parse(text)
    except InstructionError:
        pass
    return time.perf_counter() - t0, time.thread_time() - c0


def latency(
    landmarks: LandmarkMap, cases: Sequence[Case], embedder: MiniLMEmbedder, repeats: int
) -> dict[str, Any]:
    """p50/p99 of parse() without the embedding fallback and with it (cold query cache)."""
    plain = InstructionParser(landmarks, None)
    without = [_time_parse(plain, c.text) for _ in range(repeats) for c in cases]
    embedder.encode(["warm up"])  # loads the model if nothing did before
    fallback = InstructionParser(landmarks, embedder)
    needs = []
    for case in cases:
        calls = fallback.grounder.embedding_calls  # type: ignore[union-attr]
        _time_parse(fallback, case.text)  # also fills the landmark matrix once
        if fallback.grounder.embedding_calls > calls:  # type: ignore[union-attr]
            needs.append(case.text)
    with_fb = []
    for _ in range(repeats):
        for text in needs:
            embedder.clear_cache()  # the grounder keeps its landmark matrix; the query is cold
            with_fb.append(_time_parse(fallback, text))
    return {
        "without_embedding": _percentiles_ms(without),
        "with_embedding": _percentiles_ms(with_fb),
        "model_load_s": embedder.load_s,
        "repeats": repeats,
    }


# --- the real-instruction corpus (test/data/real, issue 21) ---------------------------------------


def default_real_corpus() -> list[Path]:
    """test/data/real/*.jsonl of the source checkout (HuRIC 2.1 and an R2R sample)."""
    return sorted((default_corpus().parent / "real").glob("*.jsonl"))


class _Backends:
    """One parser (or VLM client) per landmark file named by the corpus lines."""

    def __init__(self, make: Any, default_landmarks: LandmarkMap) -> None:
        self._make = make
        self._default = default_landmarks
        self._cache: dict[str | None, Any] = {}

    def __call__(self, name: str | None) -> Any:
        if name not in self._cache:
            lm = self._default if name is None else load_landmarks(config_path(name))
            self._cache[name] = self._make(lm)
        return self._cache[name]


def real_accuracy(backends: Any, cases: Sequence[Case]) -> dict[str, Any]:
    """Per split: exact-plan accuracy over the plan lines, refusal correctness over the
    must-refuse lines (refused with any code), code agreement among those, and the failures."""
    report: dict[str, Any] = {}
    for split in SPLITS:
        rows = [c for c in cases if c.split == split]
        plans = [c for c in rows if c.expect is not None]
        refusals = [c for c in rows if c.reject is not None]
        fails, plan_ok, refuse_ok, code_ok = [], 0, 0, 0
        for case in rows:
            ok, got = run_case(backends(case.landmarks), case, any_code=True)
            if case.expect is not None:
                plan_ok += ok
            else:
                refuse_ok += ok
                code_ok += got.startswith(f"reject {case.reject}:")
            if not ok:
                fails.append({"text": case.text, "source": case.source,
                              "expected": case.reject or case.expect, "got": got})  # fmt: skip
        report[split] = {
            "plans": {"n": len(plans), "correct": plan_ok,
                      "accuracy": plan_ok / len(plans) if plans else 0.0},
            "refusals": {"n": len(refusals), "correct": refuse_ok,
                         "accuracy": refuse_ok / len(refusals) if refusals else 0.0,
                         "same_code": code_ok},
            "failures": fails,
        }  # fmt: skip
    return report


def r2r_coverage(parser: InstructionParser, path: Path) -> dict[str, Any]:
    """Unlabelled R2R JSON (a list of {"instructions": [...]}): how many instructions get a plan
    and the refusal codes of the rest. No accuracy: these lines carry no plan labels."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    texts = [t for item in data for t in item.get("instructions", [])]
    codes: dict[str, int] = {}
    planned = 0
    for text in texts:
        try:
            parser.parse(text)
            planned += 1
        except InstructionError as exc:
            codes[exc.code] = codes.get(exc.code, 0) + 1
    return {"path": str(path), "n": len(texts), "planned": planned, "refused_by_code": codes}


# --- threshold tuning (dev split only) -----------------------------------------------------------


def fallback_samples(cases: Iterable[Case], landmarks: LandmarkMap) -> list[tuple[str, str | None]]:
    """(phrase, expected landmark or None) for every target phrase that reaches the embeddings."""
    grounder = Grounder(landmarks, None)
    samples: list[tuple[str, str | None]] = []
    for case in cases:
        if case.reject not in (None, "unknown_landmark"):
            continue
        try:
            prepared, _ = _prepare(case.text, ())
            ctx = _Ctx()
            for clause in split_clauses(prepared):
                ctx.steps.extend(parse_clause(clause, ctx))
        except InstructionError:
            continue
        steps = (case.expect or {}).get("steps", [])
        for i, step in enumerate(ctx.steps):
            if (
                step.phrase is None
                or grounder.exact(step.phrase) is not None
                or normalize_name(step.phrase) in _PRONOUNS
            ):
                continue
            try:
                _check_phrase(step.phrase)
            except InstructionError:
                continue
            want = steps[i].get("target") if case.expect and i < len(steps) else None
            samples.append((step.phrase, want))
    return samples


def _cost(
    scored: list[tuple[str | None, str, float, float]], threshold: float, margin: float
) -> float:
    cost = 0.0
    for want, best, top, gap in scored:
        accepted = top >= threshold and gap >= margin
        if accepted and best != want:
            cost += FALSE_ACCEPT_COST
        elif not accepted and want is not None:
            cost += 1.0
    return cost


def tune(cases: Sequence[Case], landmarks: LandmarkMap, embedder: MiniLMEmbedder) -> dict[str, Any]:
    """Threshold and margin minimising the dev cost (a false accept costs FALSE_ACCEPT_COST, a
    false reject 1); among the minimisers, the centre of the highest-threshold band."""
    dev = [c for c in cases if c.split == "dev"]
    grounder = Grounder(landmarks, embedder)
    scored = []
    for phrase, want in fallback_samples(dev, landmarks):
        s = grounder.scores(phrase)
        order = np.argsort(-s, kind="stable")
        scored.append(
            (
                want,
                landmarks.landmarks[order[0]].name,
                float(s[order[0]]),
                float(s[order[0]] - s[order[1]]),
            )
        )
    thresholds = np.round(np.arange(0.40, 0.901, 0.01), 2)
    margins = np.round(np.arange(0.0, 0.201, 0.01), 2)
    costs = np.array([[_cost(scored, t, m) for m in margins] for t in thresholds])
    return {
        **_pick_from_grid(costs, thresholds, margins),
        "samples": len(scored),
        "scored": [
            {"want": w, "best": b, "score": round(t, 3), "gap": round(g, 3)}
            for w, b, t, g in scored
        ],
    }


def tune_end_to_end(
    groups: Sequence[tuple[Sequence[Case], LandmarkMap]],
    embedder: MiniLMEmbedder,
    thresholds: Sequence[float] = tuple(np.round(np.arange(0.60, 0.901, 0.02), 2)),
    margins: Sequence[float] = tuple(np.round(np.arange(0.0, 0.121, 0.02), 2)),
) -> dict[str, Any]:
    """Threshold and margin from whole-instruction outcomes on dev lines only: every dev line of
    every (cases, landmarks) group is parsed at each grid point; a plan where a refusal or a
    different plan was due costs FALSE_ACCEPT_COST, a refusal of a plannable line costs 1. Among
    the minimisers, the centre of the highest-threshold band (as `tune`)."""
    dev = [(c, lm) for cases, lm in groups for c in cases if c.split == "dev"]
    costs = np.zeros((len(thresholds), len(margins)))
    for i, t in enumerate(thresholds):
        for j, m in enumerate(margins):
            parsers: dict[int, InstructionParser] = {}
            cost = 0.0
            for case, lm in dev:
                parser = parsers.setdefault(id(lm), InstructionParser(lm, embedder, t, m))
                try:
                    got = parser.parse(case.text, pose=case.robot).plan.model_dump(mode="json")
                except InstructionError:
                    cost += 1.0 if case.expect is not None else 0.0
                    continue
                if case.expect is None or got != expected_plan(case):
                    cost += FALSE_ACCEPT_COST
            costs[i, j] = cost
    return {
        **_pick_from_grid(costs, thresholds, margins),
        "dev_lines": len(dev),
        "grid": {"thresholds": list(map(float, thresholds)), "margins": list(map(float, margins)),
                 "cost": costs.tolist()},  # fmt: skip
    }


# --- command line --------------------------------------------------------------------------------


def _print_report(report: dict[str, Any], out: Any) -> None:
    for split in SPLITS:
        r = report["accuracy"][split]
        print(
            f"{split:8s} {r['correct']:4d}/{r['n']:<4d} exact-match accuracy {100 * r['accuracy']:.1f}%",
            file=out,
        )
        for fail in r["failures"]:
            print(
                f"    FAIL {fail['text']!r}\n         expected {fail['expected']}\n         got      {fail['got']}",
                file=out,
            )
    lat = report["latency"]
    for key in ("without_embedding", "with_embedding"):
        v = lat[key]
        print(
            f"latency {key:18s} n={v['n']:5d}  wall p50 {v['p50_ms']:.2f} ms  p99 {v['p99_ms']:.2f} ms"
            f"  | cpu p50 {v['cpu_p50_ms']:.2f} ms  p99 {v['cpu_p99_ms']:.2f} ms",
            file=out,
        )
    print(f"embedding model load {lat['model_load_s']:.1f} s (once per process)", file=out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m nav_policy.instruct.evaluate", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--corpus", type=Path, default=default_corpus())
    ap.add_argument(
        "--landmarks", type=Path, default=None, help="default: config/landmarks_demo.yaml"
    )
    ap.add_argument("--repeats", type=int, default=5, help="timing repeats per instruction")
    ap.add_argument("--json", metavar="FILE|-", default=None, help="write the report as JSON")
    ap.add_argument(
        "--tune", action="store_true", help="derive threshold and margin from the dev split"
    )
    real = ap.add_argument_group("real instructions (issue 21): test/data/real, or your own files")
    real.add_argument("--real", action="store_true",
                      help="evaluate the real-instruction corpus (HuRIC 2.1 + an R2R sample)")  # fmt: skip
    real.add_argument("--real-corpus", type=Path, action="append", metavar="FILE.jsonl",
                      help="labelled real-instruction file(s) instead of test/data/real/*.jsonl")  # fmt: skip
    real.add_argument("--r2r", type=Path, metavar="R2R.json",
                      help="an unlabelled R2R JSON file (e.g. the full R2R_test.json, under its "
                      "Matterport3D terms): how many instructions get a plan, by refusal code")  # fmt: skip
    real.add_argument("--backend", choices=("embedded", "vlm"), default="embedded")
    real.add_argument("--vlm-url", default="http://127.0.0.1:8000/v1")
    real.add_argument("--vlm-model", default="default")
    real.add_argument("--vlm-api-key-env", default="NAV_POLICY_VLM_API_KEY", metavar="VAR")
    real.add_argument("--vlm-timeout", type=float, default=30.0, metavar="S")
    args = ap.parse_args(argv)
    if args.real or args.real_corpus or args.r2r:
        return _main_real(args)
    landmarks = load_landmarks(args.landmarks or config_path("landmarks_demo.yaml"))
    cases = load_corpus(args.corpus)
    embedder = default_embedder()
    report: dict[str, Any] = {"corpus": str(args.corpus), "landmarks": landmarks.source}
    if args.tune:
        report["tuning"] = tune(cases, landmarks, embedder)
        t = report["tuning"]
        print(f"tuned on dev: threshold {t['threshold']} (band {t['threshold_band']}), margin {t['margin']} "
              f"(band {t['margin_band']}), cost {t['cost']} over {t['samples']} phrases", file=sys.stderr)  # fmt: skip
    parser = InstructionParser(landmarks, embedder)
    report["accuracy"] = accuracy(parser, cases)
    report["latency"] = latency(landmarks, cases, embedder, max(1, args.repeats))
    report["grounding"] = {"threshold": parser.grounder.threshold, "margin": parser.grounder.margin}  # type: ignore[union-attr]
    if args.json == "-":
        print(json.dumps(report))
    else:
        _print_report(report, sys.stdout)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def real_latency(cases: Sequence[Case], embedder: MiniLMEmbedder, repeats: int) -> dict[str, Any]:
    """p50/p99 of the embedded parser with embeddings over every real line (each parse with the
    query cache cleared, so a phrase that reaches the model is really encoded), after the model
    and the landmark matrices are loaded."""
    embedder.encode(["warm up"])
    backends = _Backends(lambda lm: InstructionParser(lm, embedder), _house())
    reaching = []
    for case in cases:  # fills each landmark matrix once; notes the lines that reach the model
        grounder = backends(case.landmarks).grounder
        calls = grounder.embedding_calls
        _time_parse_case(backends(case.landmarks), case)
        if grounder.embedding_calls > calls:
            reaching.append(case)
    every, model = [], []
    for _ in range(repeats):
        for case in cases:
            embedder.clear_cache()
            every.append(_time_parse_case(backends(case.landmarks), case))
        for case in reaching:
            embedder.clear_cache()
            model.append(_time_parse_case(backends(case.landmarks), case))
    return {"all_lines": _percentiles_ms(every), "lines_reaching_the_model": _percentiles_ms(model),
            "model_load_s": embedder.load_s, "repeats": repeats}  # fmt: skip


def _time_parse_case(parser: Any, case: Case) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        parser.parse(case.text, pose=case.robot)
    except InstructionError:
        pass
    return time.perf_counter() - t0, time.thread_time() - c0


def _house() -> LandmarkMap:
    return load_landmarks(config_path("landmarks_house.yaml"))


def _real_backends(args: argparse.Namespace, embedder: MiniLMEmbedder) -> _Backends:
    if args.backend == "embedded":
        return _Backends(lambda lm: InstructionParser(lm, embedder), _house())
    from nav_policy.instruct.vlm import VlmClient, VlmConfig

    config = VlmConfig(base_url=args.vlm_url, model=args.vlm_model, api_key_env=args.vlm_api_key_env,
                       timeout_s=args.vlm_timeout, fallback="reject")  # fmt: skip
    return _Backends(lambda lm: VlmClient(config, lm, embedder), _house())


def _print_real(report: dict[str, Any], out: Any) -> None:
    for split in SPLITS:
        r = report["accuracy"][split]
        p, q = r["plans"], r["refusals"]
        print(f"{split:8s} exact plans {p['correct']:3d}/{p['n']:<3d} {100 * p['accuracy']:5.1f}%   "
              f"refusals correct {q['correct']:3d}/{q['n']:<3d} {100 * q['accuracy']:5.1f}% "
              f"(same code as the label: {q['same_code']})", file=out)  # fmt: skip
        for fail in r["failures"]:
            print(f"    FAIL {fail['text']!r}\n         expected {fail['expected']}\n"
                  f"         got      {fail['got']}", file=out)  # fmt: skip
    for key, v in report.get("latency", {}).items():
        if isinstance(v, dict) and v.get("n"):
            print(f"latency {key} n={v['n']} wall p50 {v['p50_ms']:.2f} ms p99 {v['p99_ms']:.2f} ms"
                  f" | cpu p50 {v['cpu_p50_ms']:.2f} ms p99 {v['cpu_p99_ms']:.2f} ms", file=out)  # fmt: skip
    if "r2r" in report:
        print(f"r2r coverage: {report['r2r']}", file=out)


def _main_real(args: argparse.Namespace) -> int:
    embedder = default_embedder()
    paths = args.real_corpus or default_real_corpus()
    cases = [c for p in paths for c in load_corpus(p)]
    report: dict[str, Any] = {"corpus": [str(p) for p in paths], "backend": args.backend}
    if args.tune:
        own = load_corpus(default_corpus())
        demo = load_landmarks(config_path("landmarks_demo.yaml"))
        house = _house()
        groups = [(own, demo)] + [([c for c in cases if c.landmarks == name],
                                   load_landmarks(config_path(name)) if name else house)
                                  for name in sorted({c.landmarks or "" for c in cases})]  # fmt: skip
        report["tuning"] = tune_end_to_end(groups, embedder)
        t = report["tuning"]
        print(f"tuned end to end on dev: threshold {t['threshold']} (band {t['threshold_band']}), "
              f"margin {t['margin']} (band {t['margin_band']}), cost {t['cost']} over "
              f"{t['dev_lines']} dev lines", file=sys.stderr)  # fmt: skip
    backends = _real_backends(args, embedder)
    if cases:
        report["accuracy"] = real_accuracy(backends, cases)
        if args.backend == "embedded":
            report["latency"] = real_latency(cases, embedder, max(1, args.repeats))
    if args.r2r:
        report["r2r"] = r2r_coverage(InstructionParser(_house(), embedder), args.r2r)
    if args.json == "-":
        print(json.dumps(report))
    else:
        _print_real(report, sys.stdout)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def _pick_from_grid(costs: np.ndarray, thresholds: np.ndarray, margins: np.ndarray
                    ) -> dict[str, object]:
    """The (threshold, margin) in the middle of the lowest-cost band of a cost grid (rows:
    thresholds, columns: margins): the highest contiguous run of best rows, its middle row,
    then the middle of that row's best margins; with the bands, for the record."""
    best = costs.min()
    rows = [i for i in range(len(thresholds)) if costs[i].min() == best]
    band = [rows[-1]]
    while band[0] - 1 in rows:
        band.insert(0, band[0] - 1)
    t_i = band[len(band) // 2]
    m_ok = [j for j in range(len(margins)) if costs[t_i, j] == best]
    return {"threshold": float(thresholds[t_i]), "margin": float(margins[m_ok[len(m_ok) // 2]]),
            "cost": float(best),
            "threshold_band": [float(thresholds[band[0]]), float(thresholds[band[-1]])],
            "margin_band": [float(margins[m_ok[0]]), float(margins[m_ok[-1]])]}
