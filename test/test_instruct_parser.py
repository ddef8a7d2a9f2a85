"""Embedded parser, per phrase family, without the embedding model (fast)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nav_policy.instruct.errors import CODES, InstructionError
from nav_policy.instruct.landmarks import load_landmarks
from nav_policy.instruct.numbers import words_to_digits
from nav_policy.instruct.parser import MAX_TEXT_CHARS, InstructionParser, split_clauses
from nav_policy.paths import config_path


@pytest.fixture(scope="module")
def mapped() -> InstructionParser:
    """Parser on the demo landmark file, exact and alias grounding only."""
    return InstructionParser(load_landmarks(config_path("landmarks_demo.yaml")), None)


@pytest.fixture(scope="module")
def unmapped() -> InstructionParser:
    return InstructionParser()


def steps(parser: InstructionParser, text: str) -> list[tuple]:
    """Compact form of the plan: (action, target or direction, number)."""
    out = []
    for s in parser.parse(text).plan.steps:
        number = (
            s.distance_m
            if s.distance_m is not None
            else s.angle_deg
            if s.angle_deg is not None
            else s.duration_s
        )
        out.append(tuple(x for x in (s.action, s.target or s.direction, number) if x is not None))
    return out


CASES = {
    # sequences
    "go past the couch and stop at the kitchen door": [
        ("go_past", "couch"),
        ("go_to", "kitchen door"),
    ],
    "go to the fridge, then the couch; after that the tv": [
        ("go_to", "fridge"),
        ("go_to", "couch"),
        ("go_to", "tv"),
    ],
    "after passing the plant, turn left": [("go_past", "plant"), ("turn", "left")],
    "stop at the fridge after passing the couch": [("go_past", "couch"), ("go_to", "fridge")],
    "before entering the kitchen, turn around": [("turn", "around"), ("go_into", "kitchen")],
    "turn left when you reach the desk": [("go_to", "desk"), ("turn", "left")],
    "drive straight until you reach the front door": [("go_to", "front door")],
    "go down the corridor until you reach the front door": [
        ("go_through", "hallway"),
        ("go_to", "front door"),
    ],
    "turn right after the tv": [("go_past", "tv"), ("turn", "right")],
    # verbs and synonyms
    "head to the bed": [("go_to", "bed")],
    "walk to the desk": [("go_to", "desk")],
    "navigate to the stove": [("go_to", "stove")],
    "proceed to the sink": [("go_to", "kitchen sink")],
    "return to base": [("go_to", "charging dock")],
    "take me to the lounge": [("go_to", "living room")],
    "pass the couch": [("go_past", "couch")],
    "go by the tv": [("go_past", "tv")],
    "go beyond the plant": [("go_past", "plant")],
    "proceed past the armchair": [("go_past", "armchair")],
    "enter the bathroom": [("go_into", "bathroom")],
    "go into the kitchen": [("go_into", "kitchen")],
    "head into the bedroom": [("go_into", "bedroom")],
    "leave the kitchen": [("exit", "kitchen")],
    "exit the bathroom": [("exit", "bathroom")],
    "get out of the bedroom": [("exit", "bedroom")],
    "go out of the living room": [("exit", "living room")],
    "go through the front door": [("go_through", "front door")],
    "walk down the corridor": [("go_through", "hallway")],
    # stop phrases
    "stop at the desk": [("go_to", "desk")],
    "stop next to the fridge": [("go_to", "fridge")],
    "stop in front of the tv": [("go_to", "tv")],
    "go to the fridge and wait there": [("go_to", "fridge"), ("stop",)],
    "stop": [("stop",)],
    # turns
    "turn left": [("turn", "left")],
    "turn right by 45 degrees": [("turn", "right", 45.0)],
    "turn 30 degrees to the left": [("turn", "left", 30.0)],
    "turn 180 degrees": [("turn", "around")],
    "turn right 180°": [("turn", "around")],
    "turn around": [("turn", "around")],
    "make a u-turn": [("turn", "around")],
    "rotate clockwise 90 degrees": [("turn", "right", 90.0)],
    "turn left at the couch": [("go_to", "couch"), ("turn", "left")],
    # moves, numbers and units
    "move forward 2 meters": [("move", "forward", 2.0)],
    "go back 3 feet": [("move", "backward", 0.914)],
    "back up fifty centimeters": [("move", "backward", 0.5)],
    "move ahead twelve inches": [("move", "forward", 0.305)],
    "drive forward one point five metres": [("move", "forward", 1.5)],
    "go forward two and a half m": [("move", "forward", 2.5)],
    "move 2 yards": [("move", "forward", 1.829)],
    # waits
    "wait 5 seconds": [("wait", 5.0)],
    "wait for two minutes": [("wait", 120.0)],
    "pause for half a minute": [("wait", 30.0)],
    "stay there for 10 s": [("wait", 10.0)],
    "after 5 seconds, turn left": [("wait", 5.0), ("turn", "left")],
    "go forward 2 meters and then 3 meters": [("move", "forward", 2.0), ("move", "forward", 3.0)],
    "turn left then right": [("turn", "left"), ("turn", "right")],
    # pronouns and via
    "go to the kitchen door and go through it": [
        ("go_to", "kitchen door"),
        ("go_through", "kitchen door"),
    ],
    "go to the bedroom via the bedroom door": [
        ("go_through", "bedroom door"),
        ("go_to", "bedroom"),
    ],
    "leave the kitchen through the kitchen door": [("go_through", "kitchen door")],
    # kinds: entering or leaving by a door is going through it
    "enter the front door": [("go_through", "front door")],
    "go out the front door": [("go_through", "front door")],
}


@pytest.mark.parametrize("text", list(CASES))
def test_phrase_families(mapped: InstructionParser, text: str) -> None:
    assert steps(mapped, text) == CASES[text]


REJECTS = {
    "": "empty",
    "   ...  ": "empty",
    "x" * (MAX_TEXT_CHARS + 1): "too_long",
    "sing a song": "no_action",
    "go to the fridge and grab a beer": "out_of_schema",
    "go to 100, 100": "coordinates",
    "navigate to (1.5, -2)": "coordinates",
    "go to x=1 y=2": "coordinates",
    "drive to 3 4": "coordinates",
    "go to the chair on the left": "relational",
    "go to the table next to the couch": "relational",
    "don't go to the kitchen": "negation",
    "avoid the couch": "negation",
    "go to the garage": "unknown_landmark",
    "go to the fridge and then the garage": "unknown_landmark",
    "enter the couch": "kind_mismatch",
    "go through the tv": "kind_mismatch",
    "leave": "missing_target",
    "go through it": "missing_target",
    "come back": "missing_target",
    "move backward": "invalid_value",
    "move forward 3": "invalid_value",
    "move forward 60 m": "invalid_value",
    "wait 20 minutes": "invalid_value",
    "wait a bit": "invalid_value",
    "go to the kitchen in 5 minutes": "invalid_value",
    "turn 90 degrees": "invalid_value",
    "turn left by 500 degrees": "invalid_value",
    "turn around 90 degrees": "invalid_value",
}


@pytest.mark.parametrize("text", list(REJECTS))
def test_rejections(mapped: InstructionParser, text: str) -> None:
    with pytest.raises(InstructionError) as info:
        mapped.parse(text)
    assert info.value.code == REJECTS[text]
    assert "\n" not in str(info.value) and str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "go to the kitchen at 5 m/s",
        "quickly go to the kitchen",
        "go to the kitchen as fast as you can",
        "slowly go to the kitchen at full speed",
    ],
)
def test_speed_requests_are_dropped_with_a_warning(mapped: InstructionParser, text: str) -> None:
    result = mapped.parse(text)
    assert steps(mapped, text) == [("go_to", "kitchen")]
    assert result.warnings and all("speed" in w for w in result.warnings)
    assert "speed" not in result.plan.model_dump_json()


def test_politeness_is_dropped_silently(mapped: InstructionParser) -> None:
    result = mapped.parse("Robot, could you please go to the fridge now? Thank you")
    assert steps(mapped, "Robot, could you please go to the fridge now? Thank you") == [
        ("go_to", "fridge")
    ]
    assert result.warnings == ()


def test_side_preference_is_a_warning(mapped: InstructionParser) -> None:
    result = mapped.parse("pass the couch on your left")
    assert [s.target for s in result.plan.steps] == ["couch"] and "side" in result.warnings[0]


def test_without_landmarks_targets_are_normalised_phrases(unmapped: InstructionParser) -> None:
    assert steps(unmapped, "Go to The Big Red Sofa, then enter the garage") == [
        ("go_to", "big red sofa"),
        ("go_into", "garage"),
    ]


def test_unknown_landmark_lists_closest_names(mapped: InstructionParser) -> None:
    with pytest.raises(InstructionError, match=r"closest: .+, .+, .+"):
        mapped.parse("go to the gazebo")


def test_landmark_name_containing_and_is_not_split(tmp_path) -> None:
    path = tmp_path / "lm.yaml"
    path.write_text(
        "landmarks:\n  - {name: bed and breakfast, position: [0, 0], kind: area}\n  - {name: tv, position: [1, 1], kind: object}\n"
    )
    parser = InstructionParser(load_landmarks(path))
    assert steps(parser, "enter the bed and breakfast and go to the tv") == [
        ("go_into", "bed and breakfast"),
        ("go_to", "tv"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("forty-five", "45"),
        ("one hundred and eighty degrees", "180 degrees"),
        ("a hundred twenty", "120"),
        ("two and a half meters", "2.5 meters"),
        ("half a meter", "0.5 meter"),
        ("three point two five m", "3.25 m"),
        ("wait a minute, then go", "wait 1 minute, then go"),
        ("2 and a half", "2.5"),
        ("go to the kitchen and the tv", "go to the kitchen and the tv"),
    ],
)
def test_words_to_digits(text: str, expected: str) -> None:
    assert words_to_digits(text) == expected


def test_clause_order() -> None:
    assert split_clauses("x after passing y, then z") == ["pass y", "x", "z"]


class _HashEmbedder:
    """Cheap deterministic stand-in for the model: exercises the embedding path in fuzzing."""

    def encode(self, texts):  # noqa: ANN001, ANN201
        out = np.zeros((len(texts), 16), np.float32)
        for i, t in enumerate(texts):
            rng = np.random.default_rng(zlib.crc32(t.encode()))
            v = rng.normal(size=16)
            out[i] = v / np.linalg.norm(v)
        return out


_WORDS = st.sampled_from(
    "go to the fridge couch kitchen door and then turn left right around by 45 degrees move forward back 2 m cm feet "
    "wait 5 seconds minutes stop at next in front of after passing before until you reach enter leave exit through "
    "past , . ; it there please quickly 3, 4 ( ) x= one two hundred half a point it's don't between garage icebox "
    "u-turn ° 100 -1.5 on your".split()
)


_LM = load_landmarks(config_path("landmarks_demo.yaml"))
_FUZZ_PARSERS = (
    InstructionParser(_LM, None),
    InstructionParser(_LM, _HashEmbedder()),
    InstructionParser(),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.lists(_WORDS, max_size=25).map(" ".join), st.text(max_size=120)))
def test_fuzz_parser_plan_or_instruction_error(text: str) -> None:
    names = set(_LM.names)
    for parser in _FUZZ_PARSERS:
        try:
            result = parser.parse(text)
        except InstructionError as exc:
            assert exc.code in CODES and "\n" not in str(exc)
        else:
            assert 1 <= len(result.plan.steps)
            if parser.landmarks is not None:
                assert all(s.target in names for s in result.plan.steps if s.target is not None)
