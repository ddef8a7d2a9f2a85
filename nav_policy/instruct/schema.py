"""The plan schema (docs/DESIGN.md, "Plan schema") as pydantic v2 models, and its JSON Schema.

    {"steps": [{"action": A, "target": str|null, "direction": str|null,
                "distance_m": float|null, "angle_deg": float|null, "duration_s": float|null}]}

Per-action rules (enforced by Step's validator; the JSON Schema carries the per-field enums and
bounds, the cross-field rules are checked after decoding):

- go_to, go_past, go_through, go_into, exit: `target` required, every other field null.
- turn: `direction` in left|right|around, optional `angle_deg` in (0, 360]. A null angle means
  90 degrees for left/right and 180 for around. A turn of 180 degrees is canonicalised to
  direction "around" with a null angle, so "turn around" and "turn left 180 degrees" compare equal.
- move: `direction` in forward|backward and `distance_m` in (0, MAX_DISTANCE_M].
- wait: `duration_s` in (0, MAX_WAIT_S].
- stop: every field null (hold position until the next instruction).

No field carries a speed: the planner's own limits apply to every step.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Action = Literal[
    "go_to", "go_past", "go_through", "go_into", "exit", "turn", "move", "wait", "stop"
]
Direction = Literal["left", "right", "around", "forward", "backward"]

ACTIONS: tuple[str, ...] = (
    "go_to",
    "go_past",
    "go_through",
    "go_into",
    "exit",
    "turn",
    "move",
    "wait",
    "stop",
)
TARGET_ACTIONS = frozenset({"go_to", "go_past", "go_through", "go_into", "exit"})
TURN_DIRECTIONS = frozenset({"left", "right", "around"})
MOVE_DIRECTIONS = frozenset({"forward", "backward"})

MAX_DISTANCE_M = 50.0  # longest relative move; the arena of the demo is 10 m across
MAX_ANGLE_DEG = 360.0
MAX_WAIT_S = 600.0
MAX_STEPS = 32
MAX_TARGET_CHARS = 80

_FIELDS = ("target", "direction", "distance_m", "angle_deg", "duration_s")
_ALLOWED: dict[str, frozenset[str]] = {
    **{a: frozenset({"target"}) for a in TARGET_ACTIONS},
    "turn": frozenset({"direction", "angle_deg"}),
    "move": frozenset({"direction", "distance_m"}),
    "wait": frozenset({"duration_s"}),
    "stop": frozenset(),
}
_REQUIRED: dict[str, frozenset[str]] = {
    **{a: frozenset({"target"}) for a in TARGET_ACTIONS},
    "turn": frozenset({"direction"}),
    "move": frozenset({"direction", "distance_m"}),
    "wait": frozenset({"duration_s"}),
    "stop": frozenset(),
}


class Step(BaseModel):
    """One step of a plan. Build with keywords; unset fields are null."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    action: Action = Field(description="What to do; see the per-action rules of the plan schema.")
    target: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_TARGET_CHARS,
        description="Canonical landmark name (go_to, go_past, go_through, go_into, exit).",
    )
    direction: Direction | None = Field(
        default=None, description="turn: left|right|around; move: forward|backward."
    )
    distance_m: float | None = Field(
        default=None, gt=0.0, le=MAX_DISTANCE_M, description="move: distance in metres."
    )
    angle_deg: float | None = Field(
        default=None,
        gt=0.0,
        le=MAX_ANGLE_DEG,
        description="turn: angle in degrees (null: 90, or 180 for around).",
    )
    duration_s: float | None = Field(
        default=None, gt=0.0, le=MAX_WAIT_S, description="wait: duration in seconds."
    )

    @model_validator(mode="before")
    @classmethod
    def _canonical_turn(cls, data: Any) -> Any:
        """A 180 degree turn is "around" with a null angle, whatever side was named."""
        if isinstance(data, dict) and data.get("action") == "turn":
            angle = data.get("angle_deg")
            if isinstance(angle, (int, float)) and not isinstance(angle, bool) and angle == 180:
                data = {**data, "direction": "around", "angle_deg": None}
        return data

    @model_validator(mode="after")
    def _check_fields(self) -> Step:
        """Each action has its own required and forbidden fields."""
        present = {f for f in _FIELDS if getattr(self, f) is not None}
        extra = present - _ALLOWED[self.action]
        if extra:
            raise ValueError(f"{self.action} takes no {', '.join(sorted(extra))}")
        missing = _REQUIRED[self.action] - present
        if missing:
            raise ValueError(f"{self.action} needs {', '.join(sorted(missing))}")
        if self.action == "turn" and self.direction not in TURN_DIRECTIONS:
            raise ValueError(f"turn direction must be left, right or around, not {self.direction}")
        if self.action == "turn" and self.direction == "around" and self.angle_deg is not None:
            raise ValueError("turn around takes no angle (it is 180 degrees)")
        if self.action == "move" and self.direction not in MOVE_DIRECTIONS:
            raise ValueError(f"move direction must be forward or backward, not {self.direction}")
        if self.target is not None and not self.target.strip():
            raise ValueError("target must not be blank")
        return self


class Plan(BaseModel):
    """An ordered list of steps; the robot runs them one after the other."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS, description="Steps in order.")

    def to_json_dict(self) -> dict[str, Any]:
        """The plan as docs/DESIGN.md writes it: every step with all six keys (nulls included)."""
        return self.model_dump(mode="json")


def _strip_defaults(node: Any) -> None:
    """Remove "default" keys in place (strict structured-output modes reject them)."""
    if isinstance(node, dict):
        node.pop("default", None)
        for value in node.values():
            _strip_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _strip_defaults(value)


def plan_json_schema(strict: bool = True) -> dict[str, Any]:
    """JSON Schema of Plan, exported from the pydantic models.

    With strict=True (what the VLM backend sends as response_format json_schema), every property
    is listed in "required" (the optional ones are nullable), objects forbid additional
    properties and no "default" keys remain: the subset that OpenAI strict mode, vLLM (xgrammar /
    guidance) and llama.cpp's schema-to-grammar accept.
    """
    schema = copy.deepcopy(Plan.model_json_schema())
    if strict:
        _strip_defaults(schema)
        for obj in [schema, *schema.get("$defs", {}).values()]:
            if obj.get("type") == "object":
                obj["required"] = list(obj.get("properties", {}))
                obj["additionalProperties"] = False
    return schema


def validation_reason(exc: Exception) -> str:
    """A one-line reason from a pydantic ValidationError (first error only)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    first = errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def plan_from_data(data: Any) -> Plan:
    """Validate decoded JSON (or a dict) as a Plan; InstructionError(invalid_value) if it is not one."""
    from pydantic import ValidationError

    from nav_policy.instruct.errors import InstructionError

    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise InstructionError(
            f"not a valid plan: {validation_reason(exc)}", code="invalid_value"
        ) from None
