"""Plan schema: per-action validation, canonical turns, JSON Schema export."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from nav_policy.instruct.errors import InstructionError
from nav_policy.instruct.schema import (
    ACTIONS,
    MAX_DISTANCE_M,
    MAX_WAIT_S,
    Plan,
    Step,
    plan_from_data,
    plan_json_schema,
)

VALID = [
    {"action": "go_to", "target": "fridge"},
    {"action": "go_past", "target": "couch"},
    {"action": "go_through", "target": "kitchen door"},
    {"action": "go_into", "target": "kitchen"},
    {"action": "exit", "target": "bedroom"},
    {"action": "turn", "direction": "left"},
    {"action": "turn", "direction": "right", "angle_deg": 45.0},
    {"action": "turn", "direction": "around"},
    {"action": "move", "direction": "forward", "distance_m": 2.0},
    {"action": "move", "direction": "backward", "distance_m": MAX_DISTANCE_M},
    {"action": "wait", "duration_s": 5.0},
    {"action": "stop"},
]

INVALID = [
    ({"action": "fly", "target": "moon"}, "action"),
    ({"action": "go_to"}, "needs target"),
    ({"action": "go_to", "target": ""}, "at least 1"),
    ({"action": "go_to", "target": "   "}, "blank"),
    ({"action": "go_to", "target": "fridge", "distance_m": 1.0}, "takes no distance_m"),
    ({"action": "exit"}, "needs target"),
    ({"action": "turn"}, "needs direction"),
    ({"action": "turn", "direction": "forward"}, "left, right or around"),
    ({"action": "turn", "direction": "around", "angle_deg": 90.0}, "takes no angle"),
    ({"action": "turn", "direction": "left", "angle_deg": 0.0}, "greater than 0"),
    ({"action": "turn", "direction": "left", "angle_deg": 400.0}, "less than or equal"),
    ({"action": "move", "direction": "left", "distance_m": 1.0}, "forward or backward"),
    ({"action": "move", "direction": "forward"}, "needs distance_m"),
    ({"action": "move", "direction": "forward", "distance_m": -1.0}, "greater than 0"),
    (
        {"action": "move", "direction": "forward", "distance_m": MAX_DISTANCE_M + 0.1},
        "less than or equal",
    ),
    ({"action": "move", "direction": "forward", "distance_m": float("nan")}, "finite"),
    ({"action": "move", "direction": "forward", "distance_m": True}, "valid number"),
    ({"action": "move", "direction": "forward", "distance_m": "2"}, "valid number"),
    ({"action": "wait"}, "needs duration_s"),
    ({"action": "wait", "duration_s": MAX_WAIT_S + 1}, "less than or equal"),
    ({"action": "stop", "target": "fridge"}, "takes no target"),
    ({"action": "stop", "speed": 5.0}, "Extra inputs"),
]


@pytest.mark.parametrize("data", VALID, ids=lambda d: d["action"])
def test_valid_steps(data: dict) -> None:
    step = Step(**data)
    assert step.model_dump(exclude_none=True) == data


@pytest.mark.parametrize(("data", "reason"), INVALID, ids=[str(i) for i in range(len(INVALID))])
def test_invalid_steps(data: dict, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        Step(**data)


@pytest.mark.parametrize("direction", ["left", "right", "around"])
def test_180_degree_turn_is_around(direction: str) -> None:
    assert Step(action="turn", direction=direction, angle_deg=180.0) == Step(
        action="turn", direction="around"
    )


def test_plan_needs_steps_and_forbids_extra_keys() -> None:
    with pytest.raises(ValidationError):
        Plan(steps=[])
    with pytest.raises(ValidationError):
        Plan.model_validate({"steps": [{"action": "stop"}], "speed": 3})


def test_plan_json_has_all_six_keys() -> None:
    plan = Plan(steps=[Step(action="go_to", target="fridge")])
    assert plan.to_json_dict() == {
        "steps": [
            {
                "action": "go_to",
                "target": "fridge",
                "direction": None,
                "distance_m": None,
                "angle_deg": None,
                "duration_s": None,
            }
        ]
    }


def test_plan_from_data_raises_instruction_error_with_one_line() -> None:
    with pytest.raises(InstructionError) as info:
        plan_from_data({"steps": [{"action": "move", "direction": "forward", "distance_m": 500}]})
    assert info.value.code == "invalid_value" and "\n" not in str(info.value)


def test_json_schema_export_is_strict_and_complete() -> None:
    schema = plan_json_schema()
    json.dumps(schema)  # serialisable
    step = schema["$defs"]["Step"]
    assert schema["required"] == ["steps"] and schema["additionalProperties"] is False
    assert step["additionalProperties"] is False
    assert (
        set(step["required"])
        == set(step["properties"])
        == {"action", "target", "direction", "distance_m", "angle_deg", "duration_s"}
    )
    assert step["properties"]["action"]["enum"] == list(ACTIONS)
    assert "default" not in json.dumps(schema)
    assert schema["properties"]["steps"]["minItems"] == 1


def test_json_schema_non_strict_keeps_defaults() -> None:
    assert "default" in json.dumps(plan_json_schema(strict=False))
