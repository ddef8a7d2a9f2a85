"""Numbers and units in instructions: number words to digits, and unit conversion to SI.

`words_to_digits("turn left forty-five degrees")` -> "turn left 45 degrees". Handles 0..999999
in words ("one hundred and eighty"), "X point Y", "X and a half", "half a", and "a"/"an"
before a unit word ("a meter" -> "1 meter"). Digits pass through unchanged.
"""

from __future__ import annotations

import re

_SMALL = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000}
NUMBER_WORDS = frozenset(_SMALL) | frozenset(_TENS) | frozenset(_SCALES)

#: Length units -> metres per unit.
LENGTH_UNITS: dict[str, float] = {
    **dict.fromkeys(("m", "meter", "meters", "metre", "metres"), 1.0),
    **dict.fromkeys(("cm", "centimeter", "centimeters", "centimetre", "centimetres"), 0.01),
    **dict.fromkeys(("mm", "millimeter", "millimeters", "millimetre", "millimetres"), 0.001),
    **dict.fromkeys(("ft", "foot", "feet"), 0.3048),
    **dict.fromkeys(("inch", "inches"), 0.0254),
    **dict.fromkeys(("yd", "yard", "yards"), 0.9144),
}
#: Time units -> seconds per unit.
TIME_UNITS: dict[str, float] = {
    **dict.fromkeys(("ms", "millisecond", "milliseconds"), 0.001),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
}
ANGLE_UNITS = frozenset({"degree", "degrees", "deg", "degs"})
_UNIT_WORDS = (frozenset(LENGTH_UNITS) | frozenset(TIME_UNITS) | ANGLE_UNITS) - {
    "m",
    "s",
    "h",
    "ms",
}
_DIGITS = re.compile(r"^\d+(?:\.\d+)?$")
_PUNCT = ",.;:!?"
DECIMALS = 3  # distances and durations are rounded to millimetres / milliseconds


def _core(token: str) -> str:
    return token.rstrip(_PUNCT)


def _is_word_number(core: str) -> bool:
    parts = core.split("-")
    return all(p in NUMBER_WORDS for p in parts) and bool(core)


def _words_value(words: list[str]) -> float:
    """Value of a run of number words, e.g. ["one", "hundred", "eighty"] -> 180."""
    total, current = 0, 0
    for word in words:
        for part in word.split("-"):
            if part in _SMALL:
                current += _SMALL[part]
            elif part in _TENS:
                current += _TENS[part]
            elif part == "hundred":
                current = max(current, 1) * 100
            elif part == "thousand":
                total += max(current, 1) * 1000
                current = 0
    return float(total + current)


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _half_at(cores: list[str], i: int) -> bool:
    """True when cores[i:i+3] is "and a half"."""
    return cores[i : i + 3] == ["and", "a", "half"]


def _and_inside(tokens: list[str], cores: list[str], i: int, j: int) -> bool:
    """True when cores[j] is the "and" of "hundred and eighty"."""
    return (
        cores[j] == "and"
        and j > i
        and cores[j - 1] == "hundred"
        and tokens[j - 1] == cores[j - 1]
        and j + 1 < len(cores)
        and _is_word_number(cores[j + 1])
    )


def _run_end(tokens: list[str], cores: list[str], i: int) -> int:
    """Index after the run of number words starting at i ("and" allowed after "hundred")."""
    j = i
    while j < len(cores):
        if _is_word_number(cores[j]):
            j += 1
        elif _and_inside(tokens, cores, i, j):
            j += 1
        else:
            break
        if tokens[j - 1] != cores[j - 1]:  # punctuation ends the run
            break
    return j


def _parse_at(tokens: list[str], cores: list[str], i: int) -> tuple[float, int] | None:
    """A number starting at token i: (value, index after it), or None."""
    core = cores[i]
    nxt = cores[i + 1] if i + 1 < len(cores) else ""
    if core == "half" and nxt in ("a", "an"):
        return 0.5, i + 2
    if core in ("a", "an") and nxt == "hundred":
        swapped = [*cores[:i], "one", *cores[i + 1 :]]
        return _parse_at([*tokens[:i], "one", *tokens[i + 1 :]], swapped, i)
    if core in ("a", "an") and nxt in _UNIT_WORDS:
        return 1.0, i + 1
    if _DIGITS.match(core):
        value, j = float(core), i + 1
    elif _is_word_number(core):
        j = _run_end(tokens, cores, i)
        value = _words_value(cores[i:j])
        if (
            j + 1 < len(cores)
            and cores[j] == "point"
            and _is_word_number(cores[j + 1])
            and cores[j + 1] in _SMALL
        ):
            k = j + 1
            digits = ""
            while k < len(cores) and cores[k] in _SMALL and _SMALL[cores[k]] < 10:
                digits += str(_SMALL[cores[k]])
                k += 1
            if digits:
                value, j = float(f"{int(value)}.{digits}"), k
    else:
        return None
    if tokens[j - 1] == cores[j - 1] and _half_at(cores, j):
        value, j = value + 0.5, j + 3
    return value, j


def words_to_digits(text: str) -> str:
    """Replace numbers written in words by digits; everything else is kept as it was."""
    spans = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", text)]
    tokens = [s[2] for s in spans]
    cores = [_core(t) for t in tokens]
    out: list[str] = []
    last, i = 0, 0
    while i < len(tokens):
        parsed = _parse_at(tokens, cores, i) if cores[i] else None
        if parsed is None or (parsed[1] == i + 1 and _DIGITS.match(cores[i])):
            i += 1
            continue
        value, j = parsed
        trailing = tokens[j - 1][len(cores[j - 1]) :]
        out.append(text[last : spans[i][0]])
        out.append(_fmt(value) + trailing)
        last, i = spans[j - 1][1], j
    out.append(text[last:])
    return "".join(out)


def to_metres(value: float, unit: str) -> float:
    """A length in metres, rounded to DECIMALS. KeyError for an unknown unit."""
    return round(value * LENGTH_UNITS[unit], DECIMALS)


def to_seconds(value: float, unit: str) -> float:
    """A duration in seconds, rounded to DECIMALS. KeyError for an unknown unit."""
    return round(value * TIME_UNITS[unit], DECIMALS)
