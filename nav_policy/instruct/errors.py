"""The one error type of instruction parsing: a one-line reason plus a stable reason code."""

from __future__ import annotations

from nav_policy.errors import NavPolicyError

#: Reason codes carried by InstructionError.code (the evaluation corpus and tests use them).
CODES = (
    "empty",  # nothing to parse
    "too_long",  # instruction longer than MAX_TEXT_CHARS
    "no_action",  # a clause with no recognisable navigation action
    "missing_target",  # an action that needs a landmark was given none ("leave", "come back")
    "invalid_value",  # a number out of range, a distance without a unit, a turn without direction
    "coordinates",  # coordinates instead of a landmark ("go to 3, 4")
    "relational",  # a place described relative to others ("the chair on the left")
    "negation",  # "don't go ...", "avoid ...": not expressible as a plan
    "unknown_landmark",  # not in the landmark file (or not grounded with enough confidence)
    "kind_mismatch",  # e.g. "enter the fridge": go_into needs an area
    "landmark_file",  # the landmark file is missing or malformed
    "vlm_failed",  # the VLM backend failed and the fallback is "reject"
    "out_of_schema",  # stairs, manipulation, following a person: not a navigation plan step
)


class InstructionError(NavPolicyError):
    """An instruction (or landmark file) that cannot become a plan. str(exc) is the reason.

    The robot must not move on such an instruction: the whole instruction is rejected, never
    a part of it. `code` is one of CODES.
    """

    def __init__(self, message: str, code: str = "no_action") -> None:
        super().__init__(message)
        self.code = code if code in CODES else "no_action"


class LandmarkFileError(InstructionError):
    """A landmark file that is missing, not YAML, or not in the docs/DESIGN.md format."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="landmark_file")
