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

import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from nav_policy.instruct.errors import InstructionError
from nav_policy.instruct.grounding import (
    DEFAULT_MARGIN,
    DEFAULT_THRESHOLD,
    Embedder,
    Grounder,
    Grounding,
    kind_of_phrase,
)
from nav_policy.instruct.landmarks import Landmark, LandmarkMap, normalize_name
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
    "stopping": "stop", "stopped": "stop", "stepping": "step", "stepped": "step", "taking": "take", "making": "make",
    "veering": "veer", "bearing": "bear",
    "continuing": "continue", "walked": "walk", "turned": "turn", "waiting": "wait", "are at": "reach",
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
#: Misspellings seen in human route instructions -> the word meant (function words and verbs
#: only; a misspelt landmark goes through the spelling fallback of grounding, with a warning).
TYPOS = {
    "thru": "through", "though": "through", "throught": "through", "thew": "the", "teh": "the",
    "hte": "the", "dinning": "dining", "stiars": "stairs",
    "strait": "straight", "staight": "straight", "foward": "forward", "fowards": "forward",
    "forwards": "forward", "turm": "turn", "trun": "turn", "wlak": "walk", "waht": "what",
    "hallways": "hallway", "hall way": "hallway", "entry way": "entryway", "door way": "doorway",
    "towards": "toward", "untill": "until", "untile": "until", "rigth": "right", "rihgt": "right",
    "lfet": "left", "leftt": "left", "bathrom": "bathroom", "bedrom": "bedroom", "kitchn": "kitchen",
    "livingroom": "living room", "diningroom": "dining room", "bedroomm": "bedroom",
}  # fmt: skip
_TYPO_RE = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(TYPOS, key=len, reverse=True)) + r")\b")
_FILLER_RE = re.compile(
    r"\b(?:just|slightly|directly|immediately|all the way|the rest of the way|half way|halfway|"
    r"further)\b(?=\s+(?:into|in|to|toward|through|past|"
    r"by|down|along|across|out|inside|outside|up to|back|forward|ahead|in front|next|near|beside|at|"
    r"before|after|until|once|when|left|right|and|then|$))"
)


def _prepare(text: str, protected: tuple[str, ...]) -> tuple[str, list[str]]:
    """Normalised text and the warnings of what was dropped. Raises on reject-at-sight input."""
    if not isinstance(text, str):
        raise InstructionError("the instruction must be text", code="empty")
    if len(text) > MAX_TEXT_CHARS:
        raise InstructionError(
            f"instruction longer than {MAX_TEXT_CHARS} characters", code="too_long"
        )
    s = unicodedata.normalize("NFKC", text).translate(_UNICODE_MAP).lower()
    s = re.sub(r"\s*(?:\r\n|\r|\n)+\s*", ". ", s.strip())  # a line break ends a sentence
    s = re.sub(r"([a-z])([.!?;,])(?=[a-z])", r"\1\2 ", s)  # "hallway.Turn" -> "hallway. turn"
    s = "".join(ch if ch.isprintable() else " " for ch in s)
    s = _TYPO_RE.sub(lambda m: TYPOS[m.group()], s)
    s = re.sub(rf"\b({_GO}|walked|went|moved|pass)\s+pass?ed\b", r"\1 past", s)  # "walk passed"
    s = re.sub(r"\bu[\s-]?turn\b", "uturn", s)
    s = re.sub(r"\s+", " ", s)
    s = _FILLER_RE.sub(" ", s)
    s = re.sub(r"\bstraight\s+(?=(?:through|thru|into|past|to|toward|down|along|across|out|in|inside|by|ahead to)\b)", "", s)
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


#: Verbs that start a new clause when a chain has no punctuation ("exit bedroom turn right").
_CHAIN_VERB = (
    r"(?:turn|walk|go|head|stop|wait|exit|enter|leave|continue|proceed|veer|bear|pass|"
    r"take a|take another|make a|make another|hang a|step into|step out)"
)
_NO_SPLIT_AFTER = frozenset(
    "the a an to and then you i please just will can should must could would not don't and, "
    "you'll you're let's lets me us or before after until when once as if where that which who "
    "to, slowly".split()
)
_CHAIN_RE = re.compile(rf"\s+(?={_CHAIN_VERB}\b)")
_PURPOSE_RE = re.compile(
    r"\s+(?:in order\s+)?to\s+(?=(?:go|enter|exit|leave|get|reach|walk|head|turn|face|pass)\b)"
)
_LOCATED_RE = re.compile(
    rf"^(?P<prep>in|inside|at|once in|when in|once inside|when you are in|once you are in)\s+"
    rf"(?P<t>(?:{_DET}\s+)?[a-z][a-z ]*?)\s+(?P<rest>(?:turn|take a|make a|take another|make another|"
    r"hang a|go|walk|head|stop|wait|veer|bear|continue)\b.*)$"
)


def _chain_split(raw: str) -> list[str]:
    """A punctuation-less chain -> clauses: before an imperative verb that follows a noun, before
    a purpose "to enter/exit ...", and after a leading location ("in the hallway turn right")."""
    pieces: list[str] = []
    parts = _PURPOSE_RE.split(raw)
    if len(parts) > 1 and not re.match(rf"^(?:{_CHAIN_VERB}|{_GO}|move|leave|exit|enter|turn)\b", parts[0]):
        parts = [raw]  # "i want you to go ...": not a purpose clause
    elif len(parts) > 1 and _BARE_MOTION.match(_clean(parts[0])):
        parts = parts[1:]  # "walk straight to enter the hallway": the walking is the entering
    for part in parts:
        words = part.split(" ")
        start = 0
        for m in _CHAIN_RE.finditer(part):
            before = part[start : m.start()].strip()
            prev = before.split(" ")[-1] if before else ""
            if before and prev not in _NO_SPLIT_AFTER and len(before.split()) >= 2:
                pieces.append(before)
                start = m.end()
        pieces.append(part[start:].strip())
        del words
    out: list[str] = []
    for piece in pieces:
        m = _LOCATED_RE.match(_clean(piece))
        if m:
            out.extend([f"{m.group('prep').split()[-1]} {m.group('t')}", m.group("rest")])
        else:
            out.append(piece)
    return out


def split_clauses(text: str) -> list[str]:
    """Prepared text -> clauses in the order the robot should do them."""
    ordered: list[str] = []
    pending_before: list[str] = []
    for raw in (c for r in _SPLIT_RE.split(text) for c in _chain_split(r)):
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
    default_step: bool = False  # a "go forward" with no distance (DEFAULT_STEP_M)
    clause: str = ""  # the clause this step came from (for error messages)


@dataclass
class _Ctx:
    """What a clause rule may need: the steps so far, the warnings list and the landmarks."""

    steps: list[RawStep] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    landmarks: LandmarkMap | None = None

    def is_landmark(self, phrase: str) -> bool:
        return self.landmarks is not None and self.landmarks.lookup(phrase) is not None


#: "go forward" with no distance moves this far (docs/INSTRUCTIONS.md).
DEFAULT_STEP_M = 1.0

# --- out-of-schema requests: a clear refusal naming the clause ------------------------------------
_OUT_OF_SCHEMA: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"\b(?:stairs?|stair ?cases?|stairways?|stairwells?|upstairs|downstairs|(?<!\d\s)steps|landings?|"
            r"escalators?|elevators?|lifts?|ladders?|climb\w*|flights? of)\b"
        ),
        "stairs, steps and lifts are out of reach of this robot (it drives on one floor)",
    ),
    (
        re.compile(
            r"^(?:(?:please|robot|can you|could you|would you|will you|you should|i want you to)\s+)*"
            r"(?:take(?! (?:a|an|another|the first|the next|the second|the last)\s+(?:\w+\s+)?(?:left|right|turn|uturn)\b)(?! me\b| us\b)|"
            r"bring(?! me to| us to)|grab|pick|put|place|drop|release|let go|open|close|shut|"
            r"switch|turn (?:on|off)|clean|wash|wipe|carry|catch|fetch|hand|give|push|pull|"
            r"cook|connect|remove|lift|hold (?!on|position|still)|throw|fill|empty|water|feed|"
            r"plug|unplug|charge (?!at)|press|lock|unlock|get me|get us|serve|pour)\b"
        ),
        "handling objects is not a navigation step",
    ),
    (
        re.compile(r"\b(?:search|look for|look at|looking for|watch|inspect|check on|control)\b"),
        "searching for or inspecting things is not a navigation step",
    ),
    (
        re.compile(r"\b(?:follow|accompany|chase)\s+(?:me|us|him|her|them|the (?:person|man|woman|guy|lady|kid|child|dog|cat))\b|\bfollow\s+(?!the (?:hall|hallway|corridor|wall|path))"),
        "following a person is not a plan step",
    ),
)


def _out_of_schema(clause: str, ctx: _Ctx) -> list[RawStep] | None:
    """Refuse stairs, manipulation, search and following, naming the clause."""
    for regex, why in _OUT_OF_SCHEMA:
        m = regex.search(clause)
        if m:
            raise InstructionError(f"{clause!r}: {why}", code="out_of_schema")
    m = re.match(r"^(?:find|locate|look for)\s+(?P<t>.+)$", clause)
    if m and ctx.landmarks is not None and not ctx.is_landmark(m.group("t")):
        raise InstructionError(
            f"{clause!r}: searching for an object is not a navigation step "
            f"({m.group('t')!r} is not a landmark of the map)",
            code="out_of_schema",
        )
    return None


_LOCATION_RE = re.compile(rf"^(?P<prep>in|inside|at)\s+(?P<t>{_DET}\s+.+|[a-z]+(?: [a-z]+)?)$")


def _located(clause: str, ctx: _Ctx) -> list[RawStep] | None:
    """A bare location clause ("in the hallway", "at the end of the hall"): be there first."""
    m = _LOCATION_RE.match(clause)
    if m is None:
        return None
    action = "go_into" if m.group("prep") in ("in", "inside") else "go_to"
    return _target_steps(action, m.group("t"), clause, ctx)


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
    r"(?:turn|spin|rotate|pivot|swing|whirl)(?:\s+yourself)?\s+(?:around|round|back|about)|about face|turn about|"
    r"(?:make a |do a |take a )?uturn(?:\s+(?:to the\s+)?(?:left|right))?)"
    r"(?:\s+(?:in place|on the spot))?$"
)
_TAKE_TURN_RE = re.compile(
    r"^(?:make|take|hang|do|hook|have)\s+(?:a|an|another)\s+(?:(?:hard|sharp|slight|quick|soft|gentle|"
    r"small|immediate|full|ninety degree|90 degree)\s+)?(?P<dir>left|right)(?:\s+turn)?(?:\s+(?P<tail>.+))?$"
)
_VEER_RE = re.compile(
    r"^(?:veer|bear|curve|swing|go|head|walk|keep|stay)\s+(?:(?:hard|sharp|slight|"
    r"slightly|a little|a bit|to the|to your)\s+)*(?P<dir>left|right)(?:\s+(?P<tail>.+))?$"
)
_TURN_TAIL_RE = re.compile(
    r"^(?P<prep>into|in to|in|inside|to|toward|at|after|through|down|along|across|out of|onto|past|"
    r"when you reach|when you get to|once you reach|and)\s+(?P<t>.+)$"
)
_TAIL_ACTION = {
    "into": "go_into", "in to": "go_into", "onto": "go_into", "to": "go_to", "toward": "go_to",
    "through": "go_through", "down": "go_through", "along": "go_through", "across": "go_through",
    "out of": "exit", "past": "go_past",
}  # fmt: skip


def _turn_with_tail(direction: str, tail: str | None, clause: str, ctx: _Ctx) -> list[RawStep]:
    """A turn followed by where it leads: "take a right into the bathroom" -> turn, go_into."""
    turn = RawStep("turn", direction=direction)
    if not tail:
        return [turn]
    tail = tail.strip()
    if tail in ("turn", "again", "here", "there", "now", "side", "hand side"):
        return [turn]
    m = _TURN_TAIL_RE.match(tail)
    if m is None:
        raise InstructionError(f"could not understand {clause!r}", code="no_action")
    prep, target = m.group("prep"), m.group("t")
    if prep in ("in", "inside"):  # "make a right in the bedroom": be in the bedroom, then turn
        return [*_target_steps("go_into", target, clause, ctx), turn]
    if prep in ("at", "when you reach", "when you get to", "once you reach"):
        return [*_target_steps("go_to", target, clause, ctx), turn]
    if prep == "after":
        return [*_target_steps("go_past", target, clause, ctx), turn]
    if prep == "and":
        return [turn, *parse_clause(target, ctx)]
    return [turn, *_target_steps(_TAIL_ACTION[prep], target, clause, ctx)]

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
    (re.compile(r"^follow\s+(?P<t>(?:the\s+)?(?:hall|hallway|corridor|path|passage)\b.*)$"), "go_through"),
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
            r"^(?:stop|halt|park|pull up|wait|stay|stand)\s+(?:(?:right|just)\s+)?(?:in(?! front)|inside|within)\b\s*(?P<t>.*)$"
        ),
        "go_into",
    ),
    (
        re.compile(
            r"^(?:stop|halt|park|pull up|wait|stay|stand)\s+(?:(?:right|just)\s+)?"
            r"(?:at|by|next to|in front of|beside|near|close to|alongside)\b\s*(?P<t>.*)$"
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
    rf"^(?:(?P<prep>to|into|past|through|by|towards|toward|down|along|across|out of|onto)\s+)?(?P<t>{_DET}\s+.+)$"
)
_BARE_NP_RE = re.compile(
    r"^(?:(?P<prep>to|into|past|through|by|toward|down|along|across|out of|onto)\s+)?(?P<t>[a-z][a-z ]{0,40})$"
)
_PREP_ACTION = {
    "down": "go_through",
    "along": "go_through",
    "across": "go_through",
    "out of": "exit",
    "onto": "go_into",
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
_TARGET_TRAIL = re.compile(
    r"\s+(?:now|again|there|first|too|as well|please|ahead|straight ahead|directly ahead|"
    r"right there|right away|and stop|and wait|and wait there|then stop)$"
)
_PART_OF_RE = re.compile(
    rf"^(?:{_DET}\s+)?(?P<part>foot|edge|base|front|side|middle|center|centre|end|far end|other end|entrance|entry|doorway|inside)\s+of\s+(?P<t>.+)$"
)
_DOOR_HEAD_RE = re.compile(r"\b(?:door|doors|doorway|doorways|entrance|entryway|opening|gate|exit|archway)$")
_AREA_HEAD_RE = re.compile(r"\b(?:room|area|hall|hallway|corridor|space|zone)$")
_SPLIT_TARGET_RE = re.compile(r"^(?P<a>.+?)\s+(?P<prep>into|in to|onto|out to|toward|to)\s+(?P<b>(?:the|a|an|your|my)?\s*[a-z].*)$")
_STOP_VERB_RE = re.compile(r"^(?:stop|halt|wait|stay|park|pull up)\b")


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
    m = _TAKE_TURN_RE.match(clause) or _VEER_RE.match(clause)
    if m:
        return _turn_with_tail(m.group("dir"), m.group("tail"), clause, ctx)
    m = _TURN_RE.match(clause)
    if m is None:
        return None
    into = re.match(r"^turn\s+(?P<prep>into|in to|toward|to face)\s+(?P<t>.+)$", clause)
    if into:  # "turn into the kitchen": no direction given, the kitchen says where
        action = "go_into" if into.group("prep") in ("into", "in to") else "go_to"
        return _target_steps(action, into.group("t"), clause, ctx)
    tail = re.match(
        r"^(?:turn|rotate|veer)\s+(?:(?:to the|to your|hard|sharp|slight|slightly)\s+)*(?P<dir>left|right|around)"
        r"(?:\s+(?:again|turn))?\s+(?P<tail>(?:into|in to|in|inside|to|toward|after|through|down|along|across|out of|onto|past|when you reach|when you get to|once you reach)\s+.+)$",
        clause,
    )
    if tail and not _TURN_AT_RE.match(clause):
        return _turn_with_tail(tail.group("dir"), tail.group("tail"), clause, ctx)
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
        if backward:
            raise InstructionError(
                f"{clause!r}: how far? give a distance with a unit (e.g. 2 m)", code="invalid_value"
            )
        return [RawStep("move", direction="forward", distance_m=DEFAULT_STEP_M, default_step=True)]
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
    """Raw steps of a target verb: splits "X through Y" and drops a go_past side with a warning;
    "the end of the hall" is go_through the hall, "the foot of the bed" is the bed; "out of X
    into Y" and "down the hall to Y" are two steps."""
    phrase = phrase.strip(" ,")
    prev = None
    while prev != phrase:
        prev = phrase
        phrase = _TARGET_TRAIL.sub("", phrase).strip(" ,")
    if action == "exit" and re.match(r"^(?:into|in to|onto|to)\s", phrase):  # "exit into the hall"
        return _target_steps("go_into", phrase.split(" ", 1)[1], clause, ctx)
    if not ctx.is_landmark(phrase):
        split = _SPLIT_TARGET_RE.match(phrase)
        if split and (action in ("exit", "go_through", "go_past") or split.group("prep") != "to") and not (
            split.group("prep") == "to" and _DOOR_HEAD_RE.search(split.group("a"))
        ):
            second = "go_into" if split.group("prep") in ("into", "in to", "onto", "out to") else "go_to"
            return [
                *_target_steps(action, split.group("a"), clause, ctx),
                *_target_steps(second, split.group("b"), clause, ctx),
            ]
        chain = re.match(
            r"^(?P<a>.+?)\s+(?:on|by|near|at|next to)\s+(?!(?:your|the|my)\s+(?:left|right)\b)(?P<b>.+)$",
            phrase,
        )
        if chain and ctx.landmarks is not None:
            first = ctx.landmarks.lookup(chain.group("a"))
            if first is not None and first.kind == "area":  # "stop in the living room on the rug"
                return [RawStep("go_into", phrase=chain.group("a"), clause=clause),
                        *_target_steps("go_to", chain.group("b"), clause, ctx)]  # fmt: skip
        part = _PART_OF_RE.match(phrase)
        if part:
            inner = part.group("t")
            if part.group("part") in ("end", "far end", "other end"):
                steps = _target_steps("go_through", inner, clause, ctx)
                return [*steps, RawStep("stop")] if _STOP_VERB_RE.match(clause) else steps
            if part.group("part") == "inside":
                return _target_steps("go_into", inner, clause, ctx)
            phrase = inner
    if action == "go_past":
        side = _SIDE_RE.search(phrase)
        if side:
            ctx.warnings.append(
                f"ignored side preference {side.group().strip()!r}: a plan step has no side"
            )
            phrase = phrase[: side.start()]
    if not phrase and action == "exit":
        phrase = "the room"  # "walk out", "exit": the area the robot is in (needs its pose)
    if not phrase:
        raise InstructionError(f"{clause!r} needs a landmark", code="missing_target")
    via = _VIA_RE.match(phrase) if action in ("go_to", "go_into", "exit") else None
    if via is None:
        return [RawStep(action, phrase=phrase, clause=clause)]
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
    m = _BARE_NP_RE.match(clause)  # "leave the bathroom, and bedroom": a bare landmark name
    if m and prev.action in TARGET_ACTIONS and ctx.is_landmark(m.group("t")):
        action = _PREP_ACTION.get(m.group("prep") or "", prev.action)
        return _target_steps(action, m.group("t"), clause, ctx)
    m = _BARE_DISTANCE_RE.match(clause)
    if m and prev.action == "move":  # "move forward 2 m and then 3 m"
        return [replace(prev, distance_m=_metres(m, clause))]
    return None


_RULES: tuple[Callable[[str, _Ctx], list[RawStep] | None], ...] = (
    _out_of_schema,
    _stop,
    _wait,
    _turn,
    _move,
    _target,
    _continuation,
    _located,
)


def parse_clause(clause: str, ctx: _Ctx) -> list[RawStep]:
    """Raw steps of one clause by the first rule that matches; InstructionError if none does."""
    first = clause.split(" ", 1)[0]
    if first.endswith("ing") and first in _GERUNDS:  # "taking a hard right", "heading past X"
        clause = _GERUNDS[first] + clause[len(first) :]
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
    r"under|above|below|on top of|inside the|outside the|at|facing|from you|north|south|east|west|"
    r"northern|southern|eastern|western|northernmost|southernmost|leftmost|rightmost|next|another|"
    r"with|that|who|whose|has|have|having)\b|^(?:(?:the|a)\s+)?(?:\d+|both|several|all|some|many|few)\s+[a-z]"
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


def _names_only(phrase: str) -> bool:
    """True when _check_phrase lets the phrase through (it may then reach the embeddings)."""
    try:
        _check_phrase(phrase)
    except InstructionError:
        return False
    return True


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


_ROOM_WORDS = frozenset(
    {"room", "this room", "that room", "current room", "area", "this area", "space", "place"}
)
_SIDE_SUFFIX_RE = re.compile(
    r"^(?P<head>.+?)\s+(?:on|to|at)\s+(?:your|the|my)\s+(?P<side>left|right)(?:\s+(?:hand\s+)?side)?$"
)
_GENERIC_HEADS = {
    "door": "door", "doors": "door", "doorway": "door", "opening": "door", "entrance": "door",
    "room": "area", "area": "area", "hall": "area", "hallway": "area",
}  # fmt: skip


@dataclass(frozen=True)
class _Context:
    """What grounding may use besides the text: the robot's pose and where to put warnings."""

    pose: tuple[float, float, float] | None = None
    warnings: list[str] | None = None


def _pose(pose: Sequence[float] | None) -> tuple[float, float, float] | None:
    if pose is None:
        return None
    values = tuple(float(v) for v in pose)
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise InstructionError("the robot pose must be (x, y, yaw), three finite numbers",
                               code="invalid_value")  # fmt: skip
    return values  # type: ignore[return-value]


def ground_steps(
    steps: list[RawStep],
    grounder: Grounder | None,
    pose: Sequence[float] | None = None,
    warnings: list[str] | None = None,
) -> tuple[list[RawStep], list[Grounding]]:
    """Replace each phrase by a canonical landmark name (or a normalised phrase without a map).

    pose (x, y, yaw in the map frame) lets "exit the room" name the area the robot is in and
    "the door on your left" pick a door by side; without it those are refused with the reason."""
    context = _Context(_pose(pose), warnings)
    if grounder is not None:  # one model call for every phrase that needs it, not one each
        grounder.prefetch([
            s.phrase.lower() for s in steps
            if s.phrase and normalize_name(s.phrase) not in _PRONOUNS | _ROOM_WORDS
            and not _SIDE_SUFFIX_RE.match(s.phrase.lower()) and _names_only(s.phrase.lower())
        ])  # fmt: skip
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
        name, action = _ground_one(phrase, step.action, grounder, groundings, context)
        out.append(replace(step, action=action, phrase=name))
        last_target = name
    return out, groundings


def _current_area(phrase: str, action: str, grounder: Grounder, context: _Context) -> str:
    """ "the room" of "exit the room": the area the robot is in, from its pose."""
    if action != "exit":
        raise InstructionError(
            f"{phrase!r}: which room? name it (only 'exit the room' can mean the robot's own room)",
            code="missing_target",
        )
    if context.pose is None:
        raise InstructionError(
            f"{phrase!r}: the room the robot is in is not known here (no robot pose); name the room",
            code="missing_target",
        )
    area = grounder.landmarks.area_at(context.pose[0], context.pose[1])
    if area is None:
        raise InstructionError(
            f"{phrase!r}: the robot at ({context.pose[0]:g}, {context.pose[1]:g}) is in no area of the map",
            code="missing_target",
        )
    return area.name


def _by_side(phrase: str, grounder: Grounder, context: _Context) -> Grounding | None:
    """ "the door on your left": with the robot's pose, the landmark on that side; without it, or
    when two fit, a refusal with the reason. None when the phrase has no side."""
    m = _SIDE_SUFFIX_RE.match(phrase)
    if m is None:
        return None
    head, side = normalize_name(m.group("head")), m.group("side")
    if context.pose is None:
        raise InstructionError(
            f"{phrase!r}: which one is on the {side} depends on where the robot faces, and its "
            "pose is not known here",
            code="relational",
        )
    x, y, yaw = context.pose
    def lateral(lm: Landmark) -> tuple[float, float]:
        dx, dy = lm.position[0] - x, lm.position[1] - y
        forward = dx * math.cos(yaw) + dy * math.sin(yaw)
        left = -dx * math.sin(yaw) + dy * math.cos(yaw)
        return forward, left
    if head in _GENERIC_HEADS:
        kind = _GENERIC_HEADS[head]
        candidates = [lm for lm in grounder.landmarks if lm.kind == kind]
    else:
        hit = grounder.exact(head) or (grounder.variant(head) or (None,))[0]
        if hit is None:
            grounding = grounder.ground(head)
            hit = grounding.landmark
        candidates = [hit]
    on_side = []
    for lm in candidates:
        forward, left = lateral(lm)
        if forward < -0.5:  # behind the robot is not "on your left"
            continue
        if (left > 0.3 if side == "left" else left < -0.3):
            on_side.append((math.dist(lm.position, (x, y)), lm))
    on_side.sort(key=lambda t: t[0])
    if not on_side:
        raise InstructionError(
            f"{phrase!r}: no {head} of the map is on the robot's {side}", code="relational"
        )
    if len(on_side) > 1 and on_side[1][0] - on_side[0][0] < 1.0:
        raise InstructionError(
            f"{phrase!r}: {on_side[0][1].name} and {on_side[1][1].name} are both on the {side}",
            code="relational",
        )
    lm = on_side[0][1]
    return Grounding(phrase, lm, "pose", 1.0, f"the {side} side from the robot's pose")


def _ground_one(
    phrase: str,
    action: str,
    grounder: Grounder | None,
    groundings: list[Grounding],
    context: _Context | None = None,
) -> tuple[str, str]:
    context = context or _Context()
    if grounder is None:
        _check_phrase(phrase)
        key = normalize_name(phrase)
        if not key:
            raise InstructionError(f"{phrase!r} is not a landmark name", code="missing_target")
        return key, action
    if normalize_name(phrase) in _ROOM_WORDS:
        name = _current_area(phrase, action, grounder, context)
        return name, action
    grounding = None if grounder.exact(phrase) else _by_side(phrase, grounder, context)
    if grounding is None:
        hit = grounder.exact(phrase) or grounder.variant(phrase)
        if hit is None:
            _check_phrase(phrase)
        kind = kind_of_phrase(phrase)
        prefer = (kind,) if kind else {"go_into": ("area",), "exit": ("area",),
                                       "go_through": ("door", "area")}.get(action, ())  # fmt: skip
        grounding = grounder.ground(phrase, prefer_kinds=prefer)
    groundings.append(grounding)
    if grounding.note and context.warnings is not None:
        context.warnings.append(
            f"read {phrase!r} as {grounding.landmark.name!r} ({grounding.note})"
        )
    lm = grounding.landmark
    return lm.name, _kind_action(action, lm.kind, lm.name)


# --- stage 5: the parser ------------------------------------------------------------------------


def _tidy(steps: list[RawStep]) -> list[RawStep]:
    """A bare "go forward" right before a target step is that leg's manner, not a step of its
    own; two identical target steps in a row are one ("walk down the hall ... to the end of the
    hall")."""
    out: list[RawStep] = []
    for i, step in enumerate(steps):
        nxt = steps[i + 1] if i + 1 < len(steps) else None
        if step.default_step and nxt is not None and nxt.action in TARGET_ACTIONS:
            continue
        if out and step.action in TARGET_ACTIONS and (out[-1].action, out[-1].phrase) == (
            step.action, step.phrase
        ):
            continue
        out.append(step)
    return out


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

    def parse(self, text: str, pose: Sequence[float] | None = None) -> ParseResult:
        """The plan of an instruction; InstructionError (with a one-line reason) if there is none."""
        prepared, warnings = _prepare(text, self._protected)
        ctx = _Ctx(warnings=warnings, landmarks=self.landmarks)
        for clause in split_clauses(prepared):
            ctx.steps.extend(parse_clause(clause, ctx))
        ctx.steps = [replace(s, phrase=s.phrase.lower()) if s.phrase else s for s in ctx.steps]
        steps, groundings = ground_steps(ctx.steps, self.grounder, pose, ctx.warnings)
        return ParseResult(
            _to_plan(_tidy(steps)), tuple(ctx.warnings), tuple(groundings), "embedded"
        )


def parse_instruction(
    text: str, landmarks: LandmarkMap | None = None, embedder: Embedder | None = None
) -> ParseResult:
    """One-shot convenience wrapper around InstructionParser(landmarks, embedder).parse(text)."""
    return InstructionParser(landmarks, embedder).parse(text)
