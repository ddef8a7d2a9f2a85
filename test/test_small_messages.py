"""Small things a newcomer reads: parse says when the embedding model loads, the shipped
landmark file's header examples work, the deception quick start runs from any folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


class _Loading(Exception):
    pass


def test_embedder_says_it_loads_before_loading() -> None:
    from nav_policy.instruct.grounding import MiniLMEmbedder

    emb = MiniLMEmbedder()

    def hook() -> None:
        raise _Loading  # proves the hook runs first: the slow load has not started

    emb.on_load = hook
    with pytest.raises(_Loading):
        _ = emb.model
    assert emb._model is None


def test_parse_cli_announces_the_load() -> None:
    """`nav-policy parse` of a phrase only the embeddings can ground says, on stderr, that it is
    loading the model (a fresh process: no earlier test has loaded it there)."""
    import subprocess
    import sys

    exe = str(Path(sys.executable).parent / "nav-policy")
    done = subprocess.run([exe, "parse", "go to the sitting room sofa thing",
                           "--landmarks", str(REPO / "config/landmarks_demo.yaml")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert "loading the sentence-embedding model" in done.stderr, done.stderr[-2000:]


def test_landmark_header_examples_ground_exactly() -> None:
    """Every quoted phrase in the header of config/landmarks_demo.yaml finds its landmark by
    name or alias (the header once promised "icebox", which the parser refuses)."""
    from nav_policy.instruct import load_landmarks

    path = REPO / "config/landmarks_demo.yaml"
    header = "\n".join(ln for ln in path.read_text().splitlines() if ln.startswith("#"))
    phrases = re.findall(r'"([^"]+)"', header)
    assert phrases, "the header gives an example"
    lms = load_landmarks(path)
    for phrase in phrases:
        assert lms.lookup(phrase) is not None, f"header example {phrase!r} does not ground"


def test_deception_quick_start_needs_no_checkout_cwd() -> None:
    text = (REPO / "docs/DECEPTION.md").read_text()
    start = text.index("## Quick start")
    block = text[start:text.index("```", text.index("```bash", start) + 7)]
    assert ".venv/bin/python -c" not in block and "python -c" in block
