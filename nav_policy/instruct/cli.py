"""`nav-policy parse`: an instruction -> a plan (docs/DESIGN.md, "Command line").

    nav-policy parse "INSTRUCTION" [--landmarks FILE] [--backend embedded|vlm] [--json -]
    nav-policy parse --batch FILE.jsonl [--landmarks FILE]   one JSON line per input
    nav-policy parse --schema                                the plan JSON Schema

With `--json -` stdout holds exactly one JSON object (the plan); warnings and logs go to stderr.
A failed single parse raises InstructionError: the CLI exits 2 with a one-line reason.
Heavy imports (pydantic, numpy, the embedding model) happen inside run(), never at import.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the `parse` subcommand."""
    p = sub.add_parser(
        "parse",
        help="turn a navigation instruction into a plan",
        description="Turn a navigation instruction into a plan (embedded parser or a VLM server).",
    )
    p.add_argument(
        "text",
        nargs="?",
        help="the instruction, e.g. 'go past the couch and stop at the kitchen door'",
    )
    p.add_argument(
        "--landmarks", type=Path, help="landmark YAML file; every target is grounded in it"
    )
    p.add_argument("--backend", choices=("embedded", "vlm"), default="embedded")
    p.add_argument(
        "--json", metavar="FILE|-", help="write the plan as JSON to FILE, or '-' for stdout only"
    )
    p.add_argument(
        "--batch",
        type=Path,
        metavar="FILE.jsonl",
        help='parse {"text": ...} lines; one JSON line out per input',
    )
    p.add_argument("--schema", action="store_true", help="print the plan JSON Schema and exit")
    p.add_argument(
        "--pose",
        type=float,
        nargs=3,
        metavar=("X", "Y", "YAW"),
        help="the robot's pose in the map frame (m, m, rad): 'exit the room', 'the door on your left'",
    )
    p.add_argument(
        "--no-embeddings",
        action="store_true",
        help="exact name/alias grounding only (no model load)",
    )
    vlm = p.add_argument_group("VLM backend (OpenAI-compatible chat completions)")
    vlm.add_argument(
        "--vlm-url", default=os.environ.get("NAV_POLICY_VLM_URL", "http://127.0.0.1:8000/v1")
    )
    vlm.add_argument("--vlm-model", default=os.environ.get("NAV_POLICY_VLM_MODEL", "default"))
    vlm.add_argument(
        "--vlm-api-key-env",
        default="NAV_POLICY_VLM_API_KEY",
        metavar="VAR",
        help="environment variable holding the API key",
    )
    vlm.add_argument("--vlm-timeout", type=float, default=10.0, metavar="S")
    vlm.add_argument("--vlm-retries", type=int, default=2)
    vlm.add_argument(
        "--fallback", choices=("embedded", "reject"), default="embedded", help="on a VLM failure"
    )
    vlm.add_argument(
        "--image", type=Path, help="camera image sent with the instruction (vlm backend)"
    )
    p.set_defaults(func=run)


def _landmarks(args: argparse.Namespace):  # noqa: ANN202 - LandmarkMap | None
    from nav_policy.instruct.landmarks import load_landmarks

    return load_landmarks(args.landmarks) if args.landmarks is not None else None


def _embedder(args: argparse.Namespace, landmarks: Any):  # noqa: ANN202 - Embedder | None
    if args.no_embeddings or landmarks is None:
        return None
    from nav_policy.instruct.grounding import default_embedder

    embedder = default_embedder()
    if getattr(embedder, "_model", None) is None:  # say why the first paraphrase is slow
        embedder.on_load = lambda: print(
            "nav-policy parse: loading the sentence-embedding model for a name not in the "
            "landmark file (about 10-15 s on a CPU, once; --no-embeddings skips it)",
            file=sys.stderr, flush=True)
    return embedder


def _backend(args: argparse.Namespace):  # noqa: ANN202 - object with parse(text) -> ParseResult
    """The embedded parser or the VLM client, as the arguments ask."""
    from nav_policy.instruct.parser import InstructionParser

    landmarks = _landmarks(args)
    embedder = _embedder(args, landmarks)
    parser = InstructionParser(landmarks, embedder)
    if args.backend == "embedded":
        return parser
    from nav_policy.instruct.vlm import VlmClient, VlmConfig

    config = VlmConfig(
        base_url=args.vlm_url,
        model=args.vlm_model,
        api_key_env=args.vlm_api_key_env,
        timeout_s=args.vlm_timeout,
        retries=args.vlm_retries,
        fallback=args.fallback,
    )
    return VlmClient(config, landmarks, embedder, fallback_parser=parser)


def _read_image(path: Path | None):  # noqa: ANN202 - np.ndarray | None
    if path is None:
        return None
    import cv2

    from nav_policy.instruct.errors import InstructionError

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InstructionError(f"cannot read image {path}", code="invalid_value")
    return image


def _parse_one(backend: Any, text: str, image: Any, pose: Any = None):  # noqa: ANN202 - ParseResult
    if image is not None and hasattr(backend, "config"):
        return backend.parse(text, image=image, pose=pose)
    return backend.parse(text, pose=pose)


def _human(plan_dict: dict[str, Any], out: TextIO) -> None:
    for i, step in enumerate(plan_dict["steps"], 1):
        extras = [f"{k}={v}" for k, v in step.items() if k != "action" and v is not None]
        print(f"{i}. {step['action']} {' '.join(extras)}".rstrip(), file=out)


def _warn(warnings: tuple[str, ...], prefix: str = "") -> None:
    for w in warnings:
        print(f"nav-policy parse: warning: {prefix}{w}", file=sys.stderr)


def _run_single(args: argparse.Namespace) -> int:
    from nav_policy.instruct.errors import InstructionError

    if args.text is None:
        raise InstructionError("give an instruction, --batch FILE or --schema", code="empty")
    if args.image is not None and args.backend != "vlm":
        raise InstructionError("--image needs --backend vlm", code="invalid_value")
    result = _parse_one(_backend(args), args.text, _read_image(args.image), args.pose)
    _warn(result.warnings)
    plan = result.plan.to_json_dict()
    if args.json == "-":
        sys.stdout.write(json.dumps(plan) + "\n")
        return 0
    if args.json:
        Path(args.json).write_text(json.dumps(plan, indent=2) + "\n", encoding="utf-8")
    _human(plan, sys.stdout)
    return 0


def _batch_line(backend: Any, line: str, n: int) -> dict[str, Any]:
    """The plan of one batch line, or {"error": reason}."""
    from nav_policy.instruct.errors import InstructionError

    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return {"error": f"line {n}: not JSON"}
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        return {"error": f'line {n}: expected {{"text": "..."}}'}
    try:
        result = backend.parse(row["text"])
    except InstructionError as exc:
        return {"error": str(exc)}
    _warn(result.warnings, prefix=f"line {n}: ")
    return result.plan.to_json_dict()


def _run_batch(args: argparse.Namespace) -> int:
    from nav_policy.instruct.errors import InstructionError

    if args.text is not None:
        raise InstructionError(
            "give either an instruction or --batch FILE, not both", code="invalid_value"
        )
    try:
        lines = args.batch.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InstructionError(
            f"cannot read batch file {args.batch}: {type(exc).__name__}", code="invalid_value"
        ) from None
    backend = _backend(args)
    outputs = [
        json.dumps(_batch_line(backend, line, n)) for n, line in enumerate(lines, 1) if line.strip()
    ]
    text = "".join(o + "\n" for o in outputs)
    if args.json and args.json != "-":
        Path(args.json).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point of `nav-policy parse`."""
    if args.schema:
        from nav_policy.instruct.schema import plan_json_schema

        sys.stdout.write(
            json.dumps(plan_json_schema(), indent=None if args.json == "-" else 2) + "\n"
        )
        return 0
    if args.batch is not None:
        return _run_batch(args)
    return _run_single(args)
