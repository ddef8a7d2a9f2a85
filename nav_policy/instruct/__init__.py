"""Instruction parsing: plan schema, embedded parser, landmark grounding, VLM client.

    from nav_policy.instruct import InstructionParser, load_landmarks, default_embedder
    parser = InstructionParser(load_landmarks("config/landmarks_demo.yaml"), default_embedder())
    parser.parse("go past the couch and stop at the kitchen door").plan

Submodules import lazily (numpy, pydantic and the embedding model load on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nav_policy.instruct.errors import InstructionError, LandmarkFileError
    from nav_policy.instruct.grounding import Grounder, default_embedder
    from nav_policy.instruct.landmarks import Landmark, LandmarkMap, load_landmarks
    from nav_policy.instruct.parser import (
        InstructionParser,
        ParseResult,
        parse_instruction,
    )
    from nav_policy.instruct.schema import Plan, Step, plan_json_schema
    from nav_policy.instruct.vlm import VlmClient, VlmConfig

_EXPORTS = {
    "InstructionError": "errors",
    "LandmarkFileError": "errors",
    "Grounder": "grounding",
    "default_embedder": "grounding",
    "Landmark": "landmarks",
    "LandmarkMap": "landmarks",
    "load_landmarks": "landmarks",
    "InstructionParser": "parser",
    "ParseResult": "parser",
    "parse_instruction": "parser",
    "Plan": "schema",
    "Step": "schema",
    "plan_json_schema": "schema",
    "VlmClient": "vlm",
    "VlmConfig": "vlm",
}
__all__ = [
    "Grounder",
    "InstructionError",
    "InstructionParser",
    "Landmark",
    "LandmarkFileError",
    "LandmarkMap",
    "ParseResult",
    "Plan",
    "Step",
    "VlmClient",
    "VlmConfig",
    "default_embedder",
    "load_landmarks",
    "parse_instruction",
    "plan_json_schema",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"nav_policy.instruct.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'nav_policy.instruct' has no attribute {name!r}")
