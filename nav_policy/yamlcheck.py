"""Unknown keys in the project's YAML files are errors, one way everywhere.

A typo (`obstacels:` for `obstacles:`) must not load as an empty world. Every loader declares
the keys it knows next to its schema (a tuple of names, or a pydantic model with
extra="forbid") and calls check_keys on each mapping it reads, at every level; the message names
the file and place, the key, the closest known key and the known ones:

    sim/worlds/x.yaml: unknown key 'obstacels' (did you mean 'obstacles'?); known: goal, ...

Extending a schema (a new key in a world's `moving:` entries, say) is one more name in the
tuple declared beside it. This module imports nothing of the project but errors.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from nav_policy.errors import ConfigError


def closest(key: str, known: Iterable[str]) -> str | None:
    """The known key a typo most likely meant (None when nothing is close)."""
    names = [str(k) for k in known]
    lowered = {n.lower(): n for n in names}
    if str(key).lower() in lowered:  # a case slip: `Obstacles`
        return lowered[str(key).lower()]
    match = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
    return match[0] if match else None


def unknown_key_message(key: Any, known: Iterable[str], where: str) -> str:
    """'WHERE: unknown key 'K' (did you mean 'M'?); known: a, b, c'."""
    names = sorted(str(k) for k in known)
    best = closest(str(key), names)
    hint = f" (did you mean {best!r}?)" if best else ""
    return f"{where}: unknown key {str(key)!r}{hint}; known: {', '.join(names)}"


def check_keys(data: Mapping[Any, Any], known: Iterable[str], where: str,
               error: type[Exception] = ConfigError) -> None:
    """Raise `error` naming the first key of `data` that is not in `known`."""
    names = set(known)
    for key in data:
        if str(key) not in names:
            raise error(unknown_key_message(key, names, where))


def pydantic_extra_message(model: Any, loc: tuple[Any, ...], where: str) -> str | None:
    """For a pydantic 'extra_forbidden' error at `loc` of `model`: the unknown-key message with
    the fields known at that level (None when the level cannot be resolved)."""
    cls = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            return None
        cls = _model_of(field.annotation)
        if cls is None:
            return None
    known = list(getattr(cls, "model_fields", {}))
    if not known:
        return None
    at = ".".join(str(x) for x in loc[:-1])
    return unknown_key_message(loc[-1], known, f"{where}: {at}" if at else where)


def _model_of(annotation: Any) -> Any:
    """The pydantic model inside an annotation (X, X | None, list[X])."""
    import typing

    if hasattr(annotation, "model_fields"):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
