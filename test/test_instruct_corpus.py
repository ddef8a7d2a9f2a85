"""The instruction corpus: well-formed, and the dev-split accuracy as a regression test.

The heldout split is not asserted on here (it is reported by `python -m nav_policy.instruct.evaluate`
and must not be tuned on, see docs/INSTRUCTIONS.md).
"""

from __future__ import annotations

import pytest

from nav_policy.instruct.errors import CODES
from nav_policy.instruct.evaluate import (
    accuracy,
    default_corpus,
    expected_plan,
    load_corpus,
)
from nav_policy.instruct.grounding import MiniLMEmbedder, default_embedder
from nav_policy.instruct.landmarks import load_landmarks
from nav_policy.instruct.parser import InstructionParser
from nav_policy.paths import config_path

CASES = load_corpus(default_corpus())


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    return default_embedder()


def test_corpus_size_and_splits() -> None:
    assert len(CASES) >= 150
    assert sum(c.split == "heldout" for c in CASES) >= 40
    assert sum(c.reject is not None for c in CASES) >= 30
    texts = [c.text for c in CASES]
    assert len(set(texts)) == len(texts)


def test_corpus_expectations_are_valid() -> None:
    names = set(load_landmarks(config_path("landmarks_demo.yaml")).names)
    for case in CASES:
        if case.reject is not None:
            assert case.reject in CODES, case.text
        else:
            plan = expected_plan(case)
            assert plan is not None
            assert all(s["target"] in names for s in plan["steps"] if s["target"] is not None), (
                case.text
            )


def test_dev_accuracy_at_least_95_percent(embedder: MiniLMEmbedder) -> None:
    parser = InstructionParser(load_landmarks(config_path("landmarks_demo.yaml")), embedder)
    report = accuracy(parser, [c for c in CASES if c.split == "dev"])["dev"]
    assert report["accuracy"] >= 0.95, report["failures"]
