"""Landmark files (docs/DESIGN.md): `landmarks: [{name, aliases: [..], position: [x, y], kind}]`.

kind is object | area | door. An area may also carry `extent: [xmin, ymin, xmax, ymax]`, its
floor rectangle in the map frame, so that "exit the room" can tell which room the robot is in
(LandmarkMap.area_at; without extents the nearest area landmark is used). Names and aliases are unique across the whole file once
normalised (case, articles, punctuation and spacing ignored), so every phrase names at most one
landmark. Every problem is a LandmarkFileError with a one-line reason naming the entry.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nav_policy.instruct.errors import LandmarkFileError

KINDS = ("object", "area", "door")
_KEYS = frozenset({"name", "aliases", "position", "kind", "extent"})  # of each landmark
_FILE_KEYS = ("landmarks",)  # the file's top level
_REQUIRED_KEYS = ("name", "position", "kind")
MAX_NAME_CHARS = 80
MAX_LANDMARKS = 10_000
MAX_FILE_BYTES = 4 * 1024 * 1024
_ARTICLES = re.compile(r"^(?:the|a|an|my|your|our|this|that)\s+")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalize_name(text: str) -> str:
    """Matching key of a name or phrase: lower case, no leading article, single spaces."""
    key = _NON_WORD.sub(" ", text.lower()).strip()
    while True:
        stripped = _ARTICLES.sub("", key)
        if stripped == key:
            return key
        key = stripped


@dataclass(frozen=True)
class Landmark:
    """A named place of the map. position is (x, y) in metres in the map frame."""

    name: str
    kind: str
    position: tuple[float, float]
    aliases: tuple[str, ...] = ()
    extent: tuple[float, float, float, float] | None = None  # areas: (xmin, ymin, xmax, ymax)

    def contains(self, x: float, y: float) -> bool:
        """True when (x, y) lies inside this area's extent (False without one)."""
        if self.extent is None:
            return False
        x0, y0, x1, y1 = self.extent
        return x0 <= x <= x1 and y0 <= y <= y1

    @property
    def phrases(self) -> tuple[str, ...]:
        """The name followed by every alias."""
        return (self.name, *self.aliases)


class LandmarkMap:
    """The landmarks of one file, looked up by normalised name or alias."""

    def __init__(self, landmarks: tuple[Landmark, ...], source: str = "<memory>") -> None:
        self.landmarks = landmarks
        self.source = source
        self._index: dict[str, Landmark] = {}
        for lm in landmarks:
            for phrase in lm.phrases:
                key = normalize_name(phrase)
                other = self._index.get(key)
                if other is not None:
                    what = "name" if phrase == lm.name else "alias"
                    raise LandmarkFileError(
                        f"{source}: {what} {phrase!r} of {lm.name!r} duplicates {other.name!r}"
                    )
                self._index[key] = lm

    def __len__(self) -> int:
        return len(self.landmarks)

    def __iter__(self) -> Iterator[Landmark]:
        return iter(self.landmarks)

    def lookup(self, phrase: str) -> Landmark | None:
        """Exact match of a phrase against names and aliases (normalised), or None."""
        return self._index.get(normalize_name(phrase))

    def get(self, name: str) -> Landmark:
        """The landmark with this canonical name; KeyError if none."""
        lm = self._index.get(normalize_name(name))
        if lm is None or lm.name != name:
            raise KeyError(name)
        return lm

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(lm.name for lm in self.landmarks)

    def area_at(self, x: float, y: float) -> Landmark | None:
        """The area the point is in: the smallest extent containing it; else, when no area of
        the file has an extent, the nearest area landmark; None when there is no such area."""
        areas = [lm for lm in self.landmarks if lm.kind == "area"]
        inside = [lm for lm in areas if lm.contains(x, y)]
        if inside:
            return min(inside, key=lambda lm: _area(lm.extent))  # type: ignore[arg-type]
        if not areas or any(lm.extent is not None for lm in areas):
            return None
        return min(areas, key=lambda lm: math.hypot(lm.position[0] - x, lm.position[1] - y))


def _area(extent: tuple[float, float, float, float]) -> float:
    return (extent[2] - extent[0]) * (extent[3] - extent[1])


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LandmarkFileError(f"{what} must be a non-empty string, got {value!r:.40}")
    if len(value) > MAX_NAME_CHARS:
        raise LandmarkFileError(f"{what} is longer than {MAX_NAME_CHARS} characters")
    if not normalize_name(value):
        raise LandmarkFileError(f"{what} {value!r} has no letters or digits")
    return value.strip()


def _position(value: Any, where: str) -> tuple[float, float]:
    ok = isinstance(value, (list, tuple)) and len(value) == 2
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if not ok or not all(math.isfinite(float(v)) for v in value):
        raise LandmarkFileError(
            f"{where}: position must be [x, y] (two finite numbers), got {value!r:.60}"
        )
    return float(value[0]), float(value[1])


def _extent(value: Any, kind: str, where: str) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    if kind != "area":
        raise LandmarkFileError(f"{where}: only an area can have an extent (this is a {kind})")
    ok = isinstance(value, (list, tuple)) and len(value) == 4
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if not ok or not all(math.isfinite(float(v)) for v in value):
        raise LandmarkFileError(
            f"{where}: extent must be [xmin, ymin, xmax, ymax] (four finite numbers), got {value!r:.60}"
        )
    x0, y0, x1, y1 = (float(v) for v in value)
    if not (x0 < x1 and y0 < y1):
        raise LandmarkFileError(f"{where}: extent needs xmin < xmax and ymin < ymax")
    return x0, y0, x1, y1


def _aliases(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise LandmarkFileError(f"{where}: aliases must be a list of strings")
    return tuple(_text(a, f"{where}: alias") for a in value)


def parse_landmark(entry: Any, index: int, source: str) -> Landmark:
    """One entry of the `landmarks` list."""
    where = f"{source}: landmark #{index + 1}"
    if not isinstance(entry, Mapping):
        raise LandmarkFileError(f"{where} must be a mapping with name, position and kind")
    from nav_policy.yamlcheck import check_keys

    check_keys(entry, _KEYS, where, LandmarkFileError)
    for key in _REQUIRED_KEYS:
        if key not in entry:
            name = entry.get("name")
            label = f" ({name!r:.40})" if isinstance(name, str) else ""
            raise LandmarkFileError(f"{where}{label}: missing {key}")
    name = _text(entry["name"], f"{where}: name")
    where = f"{source}: landmark {name!r}"
    kind = entry["kind"]
    if kind not in KINDS:
        raise LandmarkFileError(
            f"{where}: unknown kind {kind!r:.40} (expected one of {', '.join(KINDS)})"
        )
    return Landmark(
        name=name,
        kind=kind,
        position=_position(entry["position"], where),
        aliases=_aliases(entry.get("aliases"), where),
        extent=_extent(entry.get("extent"), kind, where),
    )


def landmarks_from_data(data: Any, source: str = "<memory>") -> LandmarkMap:
    """A LandmarkMap from decoded YAML/JSON data."""
    from nav_policy.yamlcheck import check_keys, closest

    if isinstance(data, Mapping) and ("landmarks" in data or any(
            closest(str(k), _FILE_KEYS) for k in data)):  # `landmark:` is a typo, say so
        check_keys(data, _FILE_KEYS, source, LandmarkFileError)
    if not isinstance(data, Mapping) or "landmarks" not in data:
        raise LandmarkFileError(f"{source}: expected a mapping with a 'landmarks' list")
    entries = data["landmarks"]
    if not isinstance(entries, list) or not entries:
        raise LandmarkFileError(f"{source}: 'landmarks' must be a non-empty list")
    if len(entries) > MAX_LANDMARKS:
        raise LandmarkFileError(f"{source}: more than {MAX_LANDMARKS} landmarks")
    return LandmarkMap(tuple(parse_landmark(e, i, source) for i, e in enumerate(entries)), source)


def landmarks_from_yaml(text: str, source: str = "<memory>") -> LandmarkMap:
    """A LandmarkMap from YAML text (safe_load only)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise LandmarkFileError(f"{source}: not valid YAML{at}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # odd scalars
        raise LandmarkFileError(f"{source}: not valid YAML ({type(exc).__name__})") from None
    return landmarks_from_data(data, source)


def load_landmarks(path: str | Path) -> LandmarkMap:
    """Read a landmark file. LandmarkFileError if it is missing, unreadable or malformed."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise LandmarkFileError(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LandmarkFileError(f"landmark file not found: {path}") from None
    except IsADirectoryError:
        raise LandmarkFileError(f"landmark file is a directory: {path}") from None
    except UnicodeDecodeError:
        raise LandmarkFileError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise LandmarkFileError(
            f"cannot read landmark file {path}: {exc.strerror or exc}"
        ) from None
    return landmarks_from_yaml(text, str(path))
