"""The embedded instruction parser: English text -> Plan, deterministic, no model server.

Pipeline (each stage a small function below):

1. prepare: lower case, unicode clean-up, number words -> digits, speed requests removed (and
   reported as warnings: the plan never carries a speed), negations and coordinates rejected.
2. split into clauses on punctuation and sequence words ("and", "then", "after that", ...);
   subordinate clauses are put in time order ("stop at X after passing Y" -> pass Y, go to X;
   "before going to X, turn" -> turn, go to X; "go straight until you reach X" -> go to X).
3. each clause -> raw steps by the first matching phrase rule (stop, wait, turn, move, then the
   target verbs go_through, go_past, go_into, exit, go_to); a clause with no verb continues the
   previous one ("go past the couch and the tv").
4. targets are grounded (grounding.py) and checked against the landmark kind (go_into/exit an
   area, go_through a door or area); pronouns ("go through it") name the previous target.
5. the plan is validated by the schema (schema.py).

Any failure raises InstructionError for the whole instruction: nothing is dropped silently.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from nav_policy.instruct.errors import InstructionError
from nav_policy.instruct.grounding import (
    DEFAULT_MARGIN,
    DEFAULT_THRESHOLD,
    Embedder,
    Grounder,
    Grounding,
)
from nav_policy.instruct.landmarks import LandmarkMap, normalize_name
from nav_policy.instruct.numbers import (
    LENGTH_UNITS,
    TIME_UNITS,
    to_metres,
    to_seconds,
    words_to_digits,
)
from nav_policy.instruct.schema import (
    MAX_ANGLE_DEG,
    MAX_DISTANCE_M,
    MAX_STEPS,
    MAX_TARGET_CHARS,
    MAX_WAIT_S,
    TARGET_ACTIONS,
    Plan,
    plan_from_data,
)

MAX_TEXT_CHARS = 500

_NUM = r"(?P<num>-?\d+(?:\.\d+)?)"
_DET = r"(?:the|a|an|my|your|our|this|that)"
_GO = (
    r"(?:go|head|walk|drive|navigate|proceed|travel|move|come|get|step|continue|roll|run|ride|"
    r"return|arrive|make your way|find your way|keep going|keep moving)"
)
_GERUNDS = {
    "passing": "pass", "passed": "pass", "going": "go", "gone": "go", "went": "go",
    "entering": "enter", "entered": "enter", "leaving": "leave", "exiting": "exit",
    "exited": "exit", "reaching": "reach", "reached": "reach", "getting": "get", "got": "get",
    "heading": "head", "walking": "walk", "driving": "drive", "crossing": "cross",
    "crossed": "cross", "turning": "turn", "moving": "move", "arriving": "arrive",
    "arrived": "arrive", "coming": "come", "navigating": "navigate", "proceeding": "proceed",
    "stopping": "stop", "stopped": "stop", "waiting": "wait", "are at": "reach",
    "are next to": "reach", "are in": "reach", "see": "reach",
}  # fmt: skip

# --- stage 1: preparation -------------------------------------------------------------------

_SPEED_RES = (
    re.compile(
        r"\b(?:at|with|going|doing|keeping)?\s*(?:a\s+)?(?:speed\s+(?:of\s+)?)?-?\d+(?:\.\d+)?\s*"
        r"(?:m/s|mps|m s|meters? per second|metres? per second|km/h|kmh|kph|km per hour|"
        r"kilometers? per hour|kilometres? per hour|mph|miles? per hour|cm/s|ft/s|feet per second)"
    ),
    re.compile(
        r"\bat\s+(?:(?:a|your|the)\s+)?(?:full|top|max|maximum|high|low|slow|fast|walking|reduced|half|normal)\s+(?:speed|pace|velocity)\b"
    ),
    re.compile(r"\bas\s+(?:fast|quickly|slowly|slow)\s+as\s+(?:you\s+can|possible)\b"),
    re.compile(r"\bin\s+a\s+hurry\b|\bat\s+speed\b|\bfull\s+throttle\b"),
    re.compile(
        r"\b(?:slowly|quickly|fast|faster|rapidly|hurriedly|carefully|gently|cautiously|asap|quick|slow)\b"
    ),
)
_NEGATION_RE = re.compile(r"\b(?:don'?t|do not|never|avoid|without|not|shouldn'?t|mustn'?t)\b")
_COORD_RES = (
    re.compile(r"-?\d+(?:\.\d+)?\s*,\s*-?\d+(?:\.\d+)?"),
    re.compile(r"\(\s*-?\d"),
    re.compile(r"\b[xyz]\s*[:=]\s*-?\d"),
    re.compile(
        r"\b(?:position|coordinates?|coords?|location|point|pose|waypoint|goal)\s*[:=]?\s*\(?\s*-?\d"
    ),
    re.compile(r"(?<!up )\b(?:to|towards?|reach|at)\s+-?\d"),
)
_TIMING_RE = re.compile(
    r"\b(?:in|within|by|for at most|in under|in less than)\s+\d+(?:\.\d+)?\s*"
    r"(?:s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?)\b"
)
_UNICODE_MAP = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)
_PROTECTED_WORDS = re.compile(r"\b(and|then|next|after|before|until|once|when|finally)\b")


def _prepare(text: str, protected: tuple[str, ...]) -> tuple[str, list[str]]:
    """Normalised text and the warnings of what was dropped. Raises on reject-at-sight input."""
    if not isinstance(text, str):
        raise InstructionError("the instruction must be text", code="empty")
    if len(text) > MAX_TEXT_CHARS:
        raise InstructionError(
            f"instruction longer than {MAX_TEXT_CHARS} characters", code="too_long"
        )
    s = unicodedata.normalize("NFKC", text).translate(_UNICODE_MAP).lower()
    s = "".join(ch if ch.isprintable() else " " for ch in s)
    s = re.sub(r"°", " degrees ", s)
    s = re.sub(r"\bu[\s-]?turn\b", "uturn", s)
    s = re.sub(r"&", " and ", s)
    s = re.sub(r"\bplease\b|\bkindly\b", " ", s)
    s = re.sub(r"\s+", " ", s).strip()
    if not re.search(r"[a-z0-9]", s):
        raise InstructionError("empty instruction", code="empty")
    if _NEGATION_RE.search(s):
        raise InstructionError(
            "negated or avoid-type commands are not supported; say where to go", code="negation"
        )
    s = words_to_digits(s)
    s, warnings = _drop_speed(s)
    _reject_coordinates(s)
    _reject_timing(s)
    return _protect(s, protected), warnings


def _drop_speed(s: str) -> tuple[str, list[str]]:
    """Remove speed and manner requests; each one becomes a warning, never part of the plan."""
    warnings: list[str] = []
    for regex in _SPEED_RES:
        for m in regex.finditer(s):
            warnings.append(
                f"ignored speed request {m.group().strip()!r}: the planner's own speed limits apply"
            )
        s = regex.sub(" ", s)
    return re.sub(r"\s+", " ", s).strip(), warnings


def _reject_coordinates(s: str) -> None:
    for regex in _COORD_RES:
        m = regex.search(s)
        if m:
            raise InstructionError(
                f"coordinates are not accepted ({m.group().strip()!r}); name a landmark of the map",
                code="coordinates",
            )


def _reject_timing(s: str) -> None:
    """Deadlines and delays ("in 5 minutes") are not part of a plan; refuse rather than ignore."""
    m = _TIMING_RE.search(s)
    if m:
        raise InstructionError(
            f"timing requests are not supported ({m.group().strip()!r}); use 'wait N seconds'",
            code="invalid_value",
        )


def _protect(s: str, protected: tuple[str, ...]) -> str:
    """Upper-case sequence words inside landmark names ("bed and breakfast") so no split hits them."""
    for phrase in protected:
        s = re.sub(
            rf"\b{re.escape(phrase)}\b",
            lambda m: _PROTECTED_WORDS.sub(lambda w: w.group().upper(), m.group()),
            s,
        )
    return s


# --- stage 2: clauses in time order -------------------------------------------------------------

_SPLIT_RE = re.compile(
    r"\s*(?:[;!?:]|,|\.(?!\d)|\b(?:and then|and after that|after that|afterwards|and finally|finally|"
    r"and next|then|and|lastly|next(?! to))\b)\s*"
)
_LEAD_FILLER = re.compile(
    r"^(?:robot|hey|hi|ok|okay|now|first|firstly|then|also|just|and|so|next|finally|lastly|"
    r"can you|could you|would you|will you|you should|you need to|you must|i want you to|"
    r"i need you to|i would like you to|i'd like you to|i'd like to|i want to|i need to|let's|lets|"
    r"go ahead and|try to|please)\b[\s,]*"
)
_TRAIL_FILLER = re.compile(
    r"[\s,]*\b(?:now|right now|right away|immediately|for me|thanks|thank you|again|too|as well|"
    r"first|then|straight away|at once)$"
)
_SUB_START = re.compile(
    r"^(?P<kw>after|once|when|as soon as|whenever|until|till)\s+(?:you(?:'ve|'re| have| are)?\s+|having\s+)?(?P<rest>.+)$"
)
_SUB_MID = re.compile(
    r"^(?P<main>.+?)\s+(?P<kw>after|once|when|as soon as|until|till)\s+(?:you(?:'ve|'re| have| are)?\s+|having\s+)?(?P<sub>.+)$"
)
_BEFORE_START = re.compile(r"^before\s+(?:you\s+)?(?P<rest>.+)$")
_BEFORE_MID = re.compile(r"^(?P<main>.+?)\s+before\s+(?:you\s+)?(?P<sub>.+)$")
_BARE_MOTION = re.compile(
    rf"^(?:{_GO}|drive|move)(?:\s+(?:straight|forward|forwards|ahead|on|onward|along))*$"
)


def _clean(clause: str) -> str:
    """Strip politeness and sequencing filler from both ends of a clause."""
    prev = None
    while prev != clause:
        prev = clause
        clause = _LEAD_FILLER.sub("", clause.strip())
        clause = _TRAIL_FILLER.sub("", clause).strip(" ,")
    return clause


def _base_form(sub: str, keyword: str) -> str:
    """A subordinate clause as a command: "passing the couch" -> "pass the couch"."""
    for form, base in sorted(_GERUNDS.items(), key=lambda kv: -len(kv[0])):
        if sub == form or sub.startswith(form + " "):
            return base + sub[len(form) :]
    if re.match(rf"^{_DET}\s", sub):  # "after the tv": pass it; "until the fridge": reach it
        return ("pass " if keyword == "after" else "reach ") + sub
    if keyword == "after" and re.match(rf"^{_NUM}\s*[a-z]+$", sub):  # "after 5 seconds, ..."
        return "wait " + sub
    return sub


def _split_subordinate(clause: str) -> list[str]:
    """One clause -> its parts in time order (subordinate "after/once/when/until" part first)."""
    m = _SUB_START.match(clause)
    if m:
        return [_clean(_base_form(m.group("rest"), m.group("kw")))]
    m = _SUB_MID.match(clause)
    if m:
        sub = _clean(_base_form(m.group("sub"), m.group("kw")))
        main = _clean(m.group("main"))
        if m.group("kw") in ("until", "till") and _BARE_MOTION.match(main):
            return [sub]  # "go straight until you reach X" -> reach X
        return [sub, main] if m.group("kw") not in ("until", "till") else [main, sub]
    m = _BEFORE_MID.match(clause)
    if m:
        return [_clean(m.group("main")), _clean(_base_form(m.group("sub"), "before"))]
    return [clause]


def split_clauses(text: str) -> list[str]:
    """Prepared text -> clauses in the order the robot should do them."""
    ordered: list[str] = []
    pending_before: list[str] = []
    for raw in _SPLIT_RE.split(text):
        clause = _clean(raw)
        if not clause:
            continue
        m = _BEFORE_START.match(clause)
        if m:
            pending_before.append(_clean(_base_form(m.group("rest"), "before")))
            continue
        ordered.extend(p for p in _split_subordinate(clause) if p)
        ordered.extend(pending_before)
        pending_before = []
    return ordered + pending_before


# --- stage 3: clause -> raw steps ----------------------------------------------------------------


@dataclass(frozen=True)
class RawStep:
    """A step before grounding: `phrase` is the target as the instruction wrote it."""

    action: str
    phrase: str | None = None
    direction: str | None = None
    distance_m: float | None = None
    angle_deg: float | None = None
    duration_s: float | None = None


@dataclass
class _Ctx:
    """What a clause rule may need: the steps so far and the warnings list."""

    steps: list[RawStep] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


_STOP_RE = re.compile(
    r"^(?:stop|halt|freeze|stay|wait|hold|pause|remain|stand|hold on|hang on|stay put)"
    r"(?:\s+(?:right|still|there|here|put|position|in place|where you are|on the spot|your position))*$"
)
_WAIT_RE = re.compile(
    r"^(?:wait|pause|stay|hold(?: position| on| still)?|remain|rest|stand(?: still)?|stop|sit|hang on|idle)"
    r"(?:\s+(?:right|still|there|here|put|in place|where you are))*(?:\s+(?:for|during))?\s+"
    rf"{_NUM}\s*(?P<unit>[a-z]+)?$"
)
_VAGUE_WAIT_RE = re.compile(
    r"^(?:wait|pause|stay|hold|remain|rest)\b.*\b(?:bit|moment|while|little|few|couple|some time|sometime|awhile)\b"
)
_AROUND_RE = re.compile(
    r"^(?:(?:make|take|do|perform|pull)\s+(?:a\s+|an\s+)?(?:uturn|180)|"
    r"(?:turn|spin|rotate|pivot|swing|whirl)(?:\s+yourself)?\s+(?:around|round|back|about)|about face|turn about|uturn)"
    r"(?:\s+(?:in place|on the spot))?$"
)
_TAKE_TURN_RE = re.compile(r"^(?:make|take|hang|do|hook)\s+a\s+(?P<dir>left|right)(?:\s+turn)?$")
_TURN_RE = re.compile(r"^(?:turn|rotate|spin|pivot|swing|veer|yaw)\b(?P<rest>.*)$")
_TURN_AT_RE = re.compile(rf"^(?P<head>.*?)\s+at\s+(?P<t>{_DET}\s+.+)$")
_TURN_DIRS = {
    "left": "left", "right": "right", "around": "around", "round": "around", "back": "around",
    "clockwise": "right", "counterclockwise": "left", "anticlockwise": "left",
    "counter-clockwise": "left", "anti-clockwise": "left",
}  # fmt: skip
_TURN_FILLER = frozenset(
    "by to the your towards toward a in place on spot yourself itself side hand through of".split()
)
_ANGLE_RE = re.compile(rf"{_NUM}\s*(?P<unit>degrees?|degs?|deg)?\b")
_MOVE_RE = re.compile(
    r"^(?P<verb>back up|back off|back away|reverse|retreat|advance|go|move|drive|walk|roll|step|"
    r"travel|head|continue|keep going|keep moving|proceed|come|inch|run)\b(?P<rest>.*)$"
)
_BACKWARD_VERBS = frozenset({"back up", "back off", "back away", "reverse", "retreat"})
_FORWARD_WORDS = frozenset({"forward", "forwards", "ahead", "straight", "on", "onward", "onwards"})
_BACKWARD_WORDS = frozenset({"back", "backward", "backwards", "reverse", "in reverse"})
_MOVE_FILLER = frozenset({"by", "another", "a", "further", "more", "in"})
_DISTANCE_RE = re.compile(rf"{_NUM}\s*(?P<unit>[a-z]+)?\b")
_ME = re.compile(
    r"^(?:take|bring|lead|guide|escort|get|drive|walk|show|send)\s+(?:me|us|him|her|them)\b(?:\s+the\s+way)?"
)

_TargetRule = tuple[re.Pattern[str], str]
_TARGET_RULES: tuple[_TargetRule, ...] = (
    (
        re.compile(
            rf"^(?:{_GO}|pass)(?:\s+back)?\s+(?:through|thru|via|down|along|across)\b\s*(?P<t>.*)$"
        ),
        "go_through",
    ),
    (re.compile(r"^(?:cross|traverse)\b\s*(?P<t>.*)$"), "go_through"),
    (re.compile(rf"^{_GO}(?:\s+(?:right|up|back))?\s+in front of\b\s*(?P<t>.*)$"), "go_to"),
    (
        re.compile(rf"^{_GO}(?:\s+back)?\s+(?:past|by|beyond|around|alongside)\b\s*(?P<t>.*)$"),
        "go_past",
    ),
    (re.compile(r"^(?:pass|overtake|bypass|skirt)(?:\s+by)?\b\s*(?P<t>.*)$"), "go_past"),
    (
        re.compile(rf"^{_GO}(?:\s+back)?\s+(?:into|in to|inside of|inside|in)\b\s*(?P<t>.*)$"),
        "go_into",
    ),
    (re.compile(r"^enter(?:\s+into)?\b\s*(?P<t>.*)$"), "go_into"),
    (
        re.compile(
            rf"^{_GO}(?:\s+back)?\s+(?:out of|out from|outside of|outside|out)\b\s*(?P<t>.*)$"
        ),
        "exit",
    ),
    (re.compile(r"^(?:leave|exit|vacate)(?:\s+(?:from|out of))?\b\s*(?P<t>.*)$"), "exit"),
    (
        re.compile(
            r"^(?:stop|halt|park|pull up|wait|stay)\s+(?:(?:right|just)\s+)?"
            r"(?:at|by|next to|in front of|beside|near|close to|alongside|in)\b\s*(?P<t>.*)$"
        ),
        "go_to",
    ),
    (
        re.compile(
            rf"^{_GO}(?:\s+(?:back|over|up|on|all the way|right|straight))*\s+"
            r"(?:to|towards|toward|for|near|next to|close to|beside|at|up to)\b\s*(?P<t>.*)$"
        ),
        "go_to",
    ),
    (
        re.compile(
            r"^(?:reach|approach|visit|find|locate|arrive at|arrive in|get to)\b\s*(?P<t>.*)$"
        ),
        "go_to",
    ),
    (re.compile(rf"^{_GO}(?:\s+back)?\s+(?P<t>{_DET}\s+.+|between\b.*|home|base)$"), "go_to"),
)
_NP_RE = re.compile(
    rf"^(?:(?P<prep>to|into|past|through|by|towards|toward)\s+)?(?P<t>{_DET}\s+.+)$"
)
_PREP_ACTION = {
    "to": "go_to",
    "towards": "go_to",
    "toward": "go_to",
    "into": "go_into",
    "past": "go_past",
    "by": "go_past",
    "through": "go_through",
}
_BARE_TURN_RE = re.compile(r"^(?:to\s+(?:the|your)\s+)?(?P<dir>left|right)$")
_BARE_DISTANCE_RE = re.compile(rf"^(?:another\s+)?{_NUM}\s*(?P<unit>[a-z]+)(?:\s+more)?$")
_SIDE_RE = re.compile(
    r"\s+(?:on|to|keeping it on|keeping it to|with it on|keep it on)\s+(?:your|the|my)\s+(?P<side>left|right)(?:\s+(?:hand\s+)?side)?$"
)
_VIA_RE = re.compile(r"^(?P<t>.+?)\s+(?:through|via|by way of|using)\s+(?P<via>.+)$")
_TARGET_TRAIL = re.compile(r"\s+(?:now|again|there|first|too|as well|please)$")


def _stop(clause: str, ctx: _Ctx) -> list[RawStep] | None:
    return [RawStep("stop")] if _STOP_RE.match(clause) else None


def _wait(clause: str, ctx: _Ctx) -> list[RawStep] | None:
    m = _WAIT_RE.match(clause)
    if m is None:
        if _VAGUE_WAIT_RE.match(clause):
            raise InstructionError(
                f"vague duration in {clause!r}; say how long (e.g. 'wait 10 seconds')",
                code="invalid_value",
            )
        return None
    unit = m.group("unit")
    if unit is None or unit not in TIME_UNITS:
        raise InstructionError(
            f"duration without a time unit in {clause!r} (seconds, minutes)", code="invalid_value"
        )
    seconds = to_seconds(float(m.group("num")), unit)
    if not 0 < seconds <= MAX_WAIT_S:
        raise InstructionError(
            f"wait of {seconds:g} s is out of range (0, {MAX_WAIT_S:g}] s", code="invalid_value"
        )
    return [RawStep("wait", duration_s=seconds)]


def _turn_args(rest: str, clause: str) -> RawStep:
    """The direction and angle of "turn <rest>"; InstructionError for anything else in it."""
    angle = None
    m = _ANGLE_RE.search(rest)
    if m:
        angle = float(m.group("num"))
        rest = rest[: m.start()] + " " + rest[m.end() :]
    directions = set()
    for word in re.findall(r"[a-z][a-z-]*", rest):
        if word in _TURN_DIRS:
            directions.add(_TURN_DIRS[word])
        elif word not in _TURN_FILLER:
            raise InstructionError(f"could not understand {clause!r}", code="no_action")
    if len(directions) > 1:
        raise InstructionError(f"conflicting turn directions in {clause!r}", code="invalid_value")
    direction = directions.pop() if directions else None
    if angle is not None and not 0 < angle <= MAX_ANGLE_DEG:
        raise InstructionError(
            f"turn of {angle:g} degrees is out of range (0, {MAX_ANGLE_DEG:g}]",
            code="invalid_value",
        )
    if angle == 180:
        return RawStep("turn", direction="around")
    if direction is None:
        raise InstructionError(
            f"turn without a direction in {clause!r}; say left, right or around",
            code="invalid_value",
        )
    if direction == "around" and angle is not None:
        raise InstructionError(
            f"'around' is 180 degrees; {angle:g} degrees contradicts it", code="invalid_value"
        )
    return RawStep("turn", direction=direction, angle_deg=angle)


def _turn(clause: str, ctx: _Ctx) -> list[RawStep] | None:
    if _AROUND_RE.match(clause):
        return [RawStep("turn", direction="around")]
    m = _TAKE_TURN_RE.match(clause)
    if m:
        return [RawStep("turn", direction=m.group("dir"))]
    m = _TURN_RE.match(clause)
    if m is None:
        return None
    at = _TURN_AT_RE.match(clause)  # "turn left at the couch": reach the couch, then turn
    if at:
        return [RawStep("go_to", phrase=at.group("t")), *(_turn(at.group("head"), ctx) or [])]
    return [_turn_args(m.group("rest"), clause)]


def _move(clause: str, ctx: _Ctx) -> list[RawStep] | None:
    m = _MOVE_RE.match(clause)
    if m is None:
        return None
    verb, rest = m.group("verb"), m.group("rest").strip()
    dist = _DISTANCE_RE.search(rest)
    words = (rest[: dist.start()] + " " + rest[dist.end() :]) if dist else rest
    tokens = words.replace("in reverse", "reverse").replace("straight ahead", "straight").split()
    if any(t not in _FORWARD_WORDS | _BACKWARD_WORDS | _MOVE_FILLER for t in tokens):
        return None  # not a relative move: a target verb rule will look at it
    if not rest and verb not in _BACKWARD_VERBS:
        return None
    backward = verb in _BACKWARD_VERBS or any(t in _BACKWARD_WORDS for t in tokens)
    if backward and any(t in _FORWARD_WORDS - {"on"} for t in tokens):
        raise InstructionError(f"both forward and backward in {clause!r}", code="invalid_value")
    if dist is None:
        if tokens == ["back"] and verb in ("go", "come", "head", "walk", "drive", "run"):
            raise InstructionError(
                f"{clause!r}: back where? name a landmark or a distance", code="missing_target"
            )
        raise InstructionError(
            f"{clause!r}: how far? give a distance with a unit (e.g. 2 m)", code="invalid_value"
        )
    return [
        RawStep(
            "move",
            direction="backward" if backward else "forward",
            distance_m=_metres(dist, clause),
        )
    ]


def _metres(m: re.Match[str], clause: str) -> float:
    unit = m.group("unit")
    if unit is None or unit not in LENGTH_UNITS:
        raise InstructionError(
            f"distance without a length unit in {clause!r} (m, cm, feet)", code="invalid_value"
        )
    metres = to_metres(float(m.group("num")), unit)
    if not 0 < metres <= MAX_DISTANCE_M:
        raise InstructionError(
            f"move of {metres:g} m is out of range (0, {MAX_DISTANCE_M:g}] m", code="invalid_value"
        )
    return metres


def _target_steps(action: str, phrase: str, clause: str, ctx: _Ctx) -> list[RawStep]:
    """Raw steps of a target verb: splits "X through Y" and drops a go_past side with a warning."""
    phrase = phrase.strip(" ,")
    prev = None
    while prev != phrase:
        prev = phrase
        phrase = _TARGET_TRAIL.sub("", phrase).strip()
    if action == "go_past":
        side = _SIDE_RE.search(phrase)
        if side:
            ctx.warnings.append(
                f"ignored side preference {side.group().strip()!r}: a plan step has no side"
            )
            phrase = phrase[: side.start()]
    if not phrase:
        raise InstructionError(f"{clause!r} needs a landmark", code="missing_target")
    via = _VIA_RE.match(phrase) if action in ("go_to", "go_into", "exit") else None
    if via is None:
        return [RawStep(action, phrase=phrase)]
    through = RawStep("go_through", phrase=via.group("via"))
    return [through] if action == "exit" else [through, RawStep(action, phrase=via.group("t"))]


def _target(clause: str, ctx: _Ctx) -> list[RawStep] | None:
    clause = _ME.sub("go", clause)
    for regex, action in _TARGET_RULES:
        m = regex.match(clause)
        if m:
            return _target_steps(action, m.group("t"), clause, ctx)
    return None


def _continuation(clause: str, ctx: _Ctx) -> list[RawStep] | None:
    """A clause with no verb continues the previous step: "go past the couch and (past) the tv"."""
    if not ctx.steps:
        return None
    prev = ctx.steps[-1]
    m = _BARE_TURN_RE.match(clause)
    if m and prev.action == "turn":
        return [RawStep("turn", direction=m.group("dir"))]
    m = _NP_RE.match(clause)
    if m and prev.action in TARGET_ACTIONS:
        action = _PREP_ACTION.get(m.group("prep") or "", prev.action)
        return _target_steps(action, m.group("t"), clause, ctx)
    m = _BARE_DISTANCE_RE.match(clause)
    if m and prev.action == "move":  # "move forward 2 m and then 3 m"
        return [replace(prev, distance_m=_metres(m, clause))]
    return None


_RULES: tuple[Callable[[str, _Ctx], list[RawStep] | None], ...] = (
    _stop,
    _wait,
    _turn,
    _move,
    _target,
    _continuation,
)


def parse_clause(clause: str, ctx: _Ctx) -> list[RawStep]:
    """Raw steps of one clause by the first rule that matches; InstructionError if none does."""
    for rule in _RULES:
        steps = rule(clause, ctx)
        if steps is not None:
            return steps
    verb = clause.split()[0] if clause.split() else clause
    if re.fullmatch(rf"{_GO}|go back|come back|leave|exit|enter|pass|cross|return", clause):
        raise InstructionError(f"{clause!r} needs a landmark", code="missing_target")
    raise InstructionError(
        f"could not understand {clause!r} (no navigation action in {verb!r})", code="no_action"
    )


# --- stage 4: grounding ---------------------------------------------------------------------

_PRONOUNS = frozenset(
    {"it", "there", "that", "them", "this", "that place", "this place", "the same place", "here"}
)
_RELATIONAL_RE = re.compile(
    r"\b(?:left|right|next to|behind|beside|besides|near|nearest|nearby|close to|between|in front of|"
    r"across from|opposite|closest|farthest|furthest|first|second|third|last|other|which|that is|where|"
    r"under|above|below|on top of|inside the|outside the)\b"
)
_NUMERIC_RE = re.compile(r"^[\d\s.,()\-+]+$")


@dataclass(frozen=True)
class ParseResult:
    """A plan, what was dropped from the instruction (warnings) and how targets were grounded."""

    plan: Plan
    warnings: tuple[str, ...] = ()
    groundings: tuple[Grounding, ...] = ()
    backend: str = "embedded"

    @property
    def used_embeddings(self) -> bool:
        """True when at least one target needed the embedding fallback."""
        return any(g.method == "embedding" for g in self.groundings)


def _check_phrase(phrase: str) -> None:
    """Reject phrases that are coordinates or relative descriptions rather than names."""
    if _NUMERIC_RE.match(phrase) or (
        re.search(r"\d", phrase) and not re.search(r"[a-z]{3,}", phrase)
    ):
        raise InstructionError(
            f"coordinates are not accepted ({phrase!r}); name a landmark of the map",
            code="coordinates",
        )
    m = _RELATIONAL_RE.search(phrase)
    if m:
        raise InstructionError(
            f"{phrase!r} describes a place relative to others ({m.group()!r}); the embedded parser "
            "grounds landmark names only (try --backend vlm with a camera image)",
            code="relational",
        )
    if len(phrase) > MAX_TARGET_CHARS:
        raise InstructionError(
            f"target longer than {MAX_TARGET_CHARS} characters", code="invalid_value"
        )


def _kind_action(action: str, kind: str, name: str) -> str:
    """The action to use on a landmark of this kind; InstructionError when it makes no sense."""
    if action in ("go_into", "exit") and kind == "door":
        return "go_through"  # entering or leaving by a door is passing through it
    if action in ("go_into", "exit") and kind != "area":
        verb = "enter" if action == "go_into" else "exit"
        raise InstructionError(
            f"cannot {verb} {name!r}: it is an {kind}, not an area", code="kind_mismatch"
        )
    if action == "go_through" and kind == "object":
        raise InstructionError(
            f"cannot go through {name!r}: it is an object, not a door or area", code="kind_mismatch"
        )
    return action


def ground_steps(
    steps: list[RawStep], grounder: Grounder | None
) -> tuple[list[RawStep], list[Grounding]]:
    """Replace each phrase by a canonical landmark name (or a normalised phrase without a map)."""
    out: list[RawStep] = []
    groundings: list[Grounding] = []
    last_target: str | None = None
    for step in steps:
        if step.phrase is None:
            out.append(step)
            continue
        phrase = step.phrase.lower()
        if normalize_name(phrase) in _PRONOUNS or phrase in _PRONOUNS:
            if last_target is None:
                raise InstructionError(
                    f"{step.phrase!r} refers to no earlier landmark", code="missing_target"
                )
            out.append(replace(step, phrase=last_target))
            continue
        name, action = _ground_one(phrase, step.action, grounder, groundings)
        out.append(replace(step, action=action, phrase=name))
        last_target = name
    return out, groundings


def _ground_one(
    phrase: str, action: str, grounder: Grounder | None, groundings: list[Grounding]
) -> tuple[str, str]:
    if grounder is None:
        _check_phrase(phrase)
        key = normalize_name(phrase)
        if not key:
            raise InstructionError(f"{phrase!r} is not a landmark name", code="missing_target")
        return key, action
    hit = grounder.exact(phrase)
    if hit is None:
        _check_phrase(phrase)
    grounding = grounder.ground(phrase)
    groundings.append(grounding)
    lm = grounding.landmark
    return lm.name, _kind_action(action, lm.kind, lm.name)


# --- stage 5: the parser ------------------------------------------------------------------------


def _to_plan(steps: list[RawStep]) -> Plan:
    if not steps:
        raise InstructionError("no navigation step in the instruction", code="no_action")
    if len(steps) > MAX_STEPS:
        raise InstructionError(f"more than {MAX_STEPS} steps", code="invalid_value")
    data = [
        {k: v for k, v in (("action", s.action), ("target", s.phrase), ("direction", s.direction),
         ("distance_m", s.distance_m), ("angle_deg", s.angle_deg), ("duration_s", s.duration_s)) if v is not None}
        for s in steps
    ]  # fmt: skip
    return plan_from_data({"steps": data})


class InstructionParser:
    """The embedded parser. With a LandmarkMap every target is grounded in it (see grounding.py).

    embedder=None keeps grounding to exact names and aliases (no model is ever loaded); pass
    grounding.default_embedder() for the paraphrase fallback.
    """

    def __init__(
        self,
        landmarks: LandmarkMap | None = None,
        embedder: Embedder | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        self.landmarks = landmarks
        self.grounder = (
            Grounder(landmarks, embedder, threshold=threshold, margin=margin)
            if landmarks is not None
            else None
        )
        self._protected = self._protected_phrases(landmarks)

    @staticmethod
    def _protected_phrases(landmarks: LandmarkMap | None) -> tuple[str, ...]:
        if landmarks is None:
            return ()
        phrases = {p.lower() for lm in landmarks for p in lm.phrases}
        return tuple(
            sorted((p for p in phrases if _PROTECTED_WORDS.search(p)), key=len, reverse=True)
        )

    def parse(self, text: str) -> ParseResult:
        """The plan of an instruction; InstructionError (with a one-line reason) if there is none."""
        prepared, warnings = _prepare(text, self._protected)
        ctx = _Ctx(warnings=warnings)
        for clause in split_clauses(prepared):
            ctx.steps.extend(parse_clause(clause, ctx))
        ctx.steps = [replace(s, phrase=s.phrase.lower()) if s.phrase else s for s in ctx.steps]
        steps, groundings = ground_steps(ctx.steps, self.grounder)
        return ParseResult(_to_plan(steps), tuple(ctx.warnings), tuple(groundings), "embedded")


def parse_instruction(
    text: str, landmarks: LandmarkMap | None = None, embedder: Embedder | None = None
) -> ParseResult:
    """One-shot convenience wrapper around InstructionParser(landmarks, embedder).parse(text)."""
    return InstructionParser(landmarks, embedder).parse(text)
