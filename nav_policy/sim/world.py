"""World model: static obstacles, moving obstacles, start and goal. Plain data, no PyBullet.

A world is what the simulator builds, the benchmark scores against, and export-sdf writes.
YAML form (sim/worlds/*.yaml):

    name: two_boxes
    size: [10.0, 10.0]            # arena, metres, centred on the origin, walled
    obstacles:
      - {type: box, center: [1.0, 0.5], size: [0.6, 1.2], yaw: 0.3, height: 0.5}
      - {type: cylinder, center: [-2.0, 1.0], radius: 0.3}
    moving:                       # ping-pong along waypoints at constant speed, or timed
      - {radius: 0.25, speed: 0.4, waypoints: [[0, -3], [0, 3]]}
      - {radius: 0.3, trajectory: [[0, 2, -2], [4, 2, 2], [6, 0, 2]], loop: true}
    start: [-4.0, -4.0, 0.0]      # x, y, yaw
    goal: [4.0, 4.0]
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nav_policy.errors import WorldError
from nav_policy.yamlcheck import check_keys

WALL_THICKNESS = 0.1
DEFAULT_HEIGHT = 0.5

# the keys a world YAML may hold, per level (an unknown one is an error naming the closest);
# a new key is one more name here and its reading in world_from_dict
# `source`: where a world came from (a free-form mapping, e.g. the BARN file it was converted
# from; provenance only, the simulator ignores it)
WORLD_KEYS = ("name", "size", "obstacles", "moving", "start", "goal", "tier", "seed",
              "shortest_path", "source")
BOX_KEYS = ("type", "center", "size", "yaw", "height")
CYLINDER_KEYS = ("type", "center", "radius", "height")
MOVING_KEYS = ("radius", "speed", "waypoints", "height")  # the ping-pong form
TIMED_KEYS = ("radius", "trajectory", "loop", "height")  # the timed form


@dataclass(frozen=True)
class Box:
    center: tuple[float, float]
    size: tuple[float, float]  # full extents along the box's own x, y
    yaw: float = 0.0
    height: float = DEFAULT_HEIGHT

    def distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Euclidean distance from points to the box (0 inside)."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        dx, dy = x - self.center[0], y - self.center[1]
        lx = np.abs(c * dx + s * dy) - self.size[0] / 2
        ly = np.abs(-s * dx + c * dy) - self.size[1] / 2
        return np.hypot(np.maximum(lx, 0.0), np.maximum(ly, 0.0))

    def bounds(self) -> tuple[float, float, float, float]:
        r = math.hypot(*self.size) / 2
        return (self.center[0] - r, self.center[1] - r, self.center[0] + r, self.center[1] + r)


@dataclass(frozen=True)
class Cylinder:
    center: tuple[float, float]
    radius: float
    height: float = DEFAULT_HEIGHT

    def distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.maximum(np.hypot(x - self.center[0], y - self.center[1]) - self.radius, 0.0)

    def bounds(self) -> tuple[float, float, float, float]:
        r = self.radius
        return (self.center[0] - r, self.center[1] - r, self.center[0] + r, self.center[1] + r)


Obstacle = Box | Cylinder


@dataclass(frozen=True)
class MovingObstacle:
    """A moving cylinder: at constant speed along its waypoints and back (ping-pong), or, when
    `trajectory` holds (t, x, y) keys, piecewise linear in time through them (held at the first
    key before it; after the last key held there, or with `loop` repeated from the first key
    with period t_last - t_first). `position(t)` is a pure function of time: every backend and
    the metrics call it."""

    radius: float
    speed: float
    waypoints: tuple[tuple[float, float], ...]
    height: float = DEFAULT_HEIGHT
    trajectory: tuple[tuple[float, float, float], ...] = ()
    loop: bool = False

    @classmethod
    def timed(cls, radius: float, trajectory: Any, loop: bool = False,
              height: float = DEFAULT_HEIGHT) -> MovingObstacle:
        """A timed obstacle from (t, x, y) keys (t strictly increasing); waypoints = its path."""
        keys = tuple((float(t), float(x), float(y)) for t, x, y in trajectory)
        return cls(radius, 0.0, tuple((x, y) for _, x, y in keys), height, keys, bool(loop))

    def position(self, t: float) -> tuple[float, float]:
        if self.trajectory:
            return self._timed_position(t)
        pts = np.asarray(self.waypoints, dtype=float)
        if len(pts) == 1 or self.speed <= 0:
            return float(pts[0, 0]), float(pts[0, 1])
        seg = np.hypot(*np.diff(pts, axis=0).T)
        total = float(seg.sum())
        if total <= 0:
            return float(pts[0, 0]), float(pts[0, 1])
        s = (self.speed * t) % (2 * total)
        if s > total:
            s = 2 * total - s
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        i = int(min(np.searchsorted(cum, s, side="right") - 1, len(seg) - 1))
        f = (s - cum[i]) / seg[i] if seg[i] > 0 else 0.0
        p = pts[i] + f * (pts[i + 1] - pts[i])
        return float(p[0]), float(p[1])

    def _timed_position(self, t: float) -> tuple[float, float]:
        keys = self.trajectory
        t0, tn = keys[0][0], keys[-1][0]
        if self.loop and tn > t0 and t > tn:
            t = t0 + (t - t0) % (tn - t0)
        if t <= t0:
            return keys[0][1], keys[0][2]
        if t >= tn:
            return keys[-1][1], keys[-1][2]
        i = bisect.bisect_right(keys, t, key=_key_time) - 1
        (ta, xa, ya), (tb, xb, yb) = keys[i], keys[i + 1]
        f = (t - ta) / (tb - ta)
        return xa + f * (xb - xa), ya + f * (yb - ya)


@dataclass(frozen=True)
class World:
    name: str
    size: tuple[float, float]
    obstacles: tuple[Obstacle, ...]
    start: tuple[float, float, float]
    goal: tuple[float, float]
    moving: tuple[MovingObstacle, ...] = ()
    tier: str = "custom"
    seed: int | None = None
    shortest_path: float | None = None  # A* length on the map inflated by the robot radius
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def half(self) -> tuple[float, float]:
        return self.size[0] / 2, self.size[1] / 2

    def walls(self) -> tuple[Box, ...]:
        hx, hy = self.half
        t = WALL_THICKNESS
        return (
            Box((0.0, hy + t / 2), (self.size[0] + 2 * t, t)),
            Box((0.0, -hy - t / 2), (self.size[0] + 2 * t, t)),
            Box((hx + t / 2, 0.0), (t, self.size[1])),
            Box((-hx - t / 2, 0.0), (t, self.size[1])),
        )

    def all_static(self) -> tuple[Obstacle, ...]:
        return self.obstacles + self.walls()

    def clearance(self, x: np.ndarray, y: np.ndarray, t: float | None = None) -> np.ndarray:
        """Distance from points to the nearest static obstacle or wall (and moving ones at t)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        d = np.full(np.broadcast(x, y).shape, np.inf)
        for ob in self.all_static():
            d = np.minimum(d, ob.distance(x, y))
        if t is not None:
            for m in self.moving:
                cx, cy = m.position(t)
                d = np.minimum(d, np.maximum(np.hypot(x - cx, y - cy) - m.radius, 0.0))
        return d

    # ---- YAML ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        obs: list[dict[str, Any]] = []
        for ob in self.obstacles:
            if isinstance(ob, Box):
                obs.append({"type": "box", "center": list(ob.center), "size": list(ob.size),
                            "yaw": ob.yaw, "height": ob.height})
            else:
                obs.append({"type": "cylinder", "center": list(ob.center), "radius": ob.radius,
                            "height": ob.height})
        out: dict[str, Any] = {
            "name": self.name, "tier": self.tier, "seed": self.seed, "size": list(self.size),
            "obstacles": obs,
            "moving": [_moving_dict(m) for m in self.moving],
            "start": list(self.start), "goal": list(self.goal),
        }
        if self.shortest_path is not None:
            out["shortest_path"] = self.shortest_path
        return out

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(plain(self.to_dict()), sort_keys=False))


def _key_time(key: tuple[float, float, float]) -> float:
    return key[0]


def _moving_dict(m: MovingObstacle) -> dict[str, Any]:
    if m.trajectory:
        return {"radius": m.radius, "height": m.height, "loop": m.loop,
                "trajectory": [list(k) for k in m.trajectory]}
    return {"radius": m.radius, "speed": m.speed, "height": m.height,
            "waypoints": [list(w) for w in m.waypoints]}


def _timed(m: dict[str, Any], where: str) -> MovingObstacle:
    """A moving obstacle in the timed form {radius, trajectory: [[t, x, y], ...], loop}."""
    if "waypoints" in m or "speed" in m:
        raise WorldError(f"{where}: give either 'trajectory' or 'waypoints'/'speed', not both")
    keys = m.get("trajectory")
    if not isinstance(keys, list) or not keys:
        raise WorldError(f"{where}: 'trajectory' must be a non-empty list of [t, x, y]")
    pts = [_vec({"k": k}, "k", 3, f"{where}.trajectory[{i}]") for i, k in enumerate(keys)]
    for i in range(1, len(pts)):
        if not pts[i][0] > pts[i - 1][0]:
            raise WorldError(f"{where}: trajectory times must increase strictly, got t = "
                             f"{pts[i - 1][0]} then {pts[i][0]} (keys {i - 1}, {i})")
    loop = m.get("loop", False)
    if not isinstance(loop, bool):
        raise WorldError(f"{where}: 'loop' must be true or false, got {loop!r}")
    return MovingObstacle.timed(_pos(m, "radius", where), pts, loop,
                                _pos(m, "height", where, DEFAULT_HEIGHT))


def plain(obj: Any) -> Any:
    """numpy scalars → Python numbers, tuples → lists, recursively (for YAML/JSON)."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


def _vec(d: dict[str, Any], key: str, n: int, where: str) -> tuple[float, ...]:
    val = d.get(key)
    if not isinstance(val, (list, tuple)) or len(val) != n:
        raise WorldError(f"{where}: '{key}' must be a list of {n} numbers, got {val!r}")
    try:
        out = tuple(float(v) for v in val)
    except (TypeError, ValueError) as exc:
        raise WorldError(f"{where}: '{key}' must be numbers, got {val!r}") from exc
    if not all(math.isfinite(v) for v in out):
        raise WorldError(f"{where}: '{key}' must be finite, got {val!r}")
    return out


def _pos(d: dict[str, Any], key: str, where: str, default: float | None = None) -> float:
    if key not in d and default is not None:
        return default
    try:
        v = float(d[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise WorldError(f"{where}: '{key}' must be a number, got {d.get(key)!r}") from exc
    if not math.isfinite(v) or v <= 0:
        raise WorldError(f"{where}: '{key}' must be positive, got {v}")
    return v


def _num(d: dict[str, Any], key: str, where: str, default: float) -> float:
    """A finite number (any sign), or the default when the key is absent."""
    if key not in d or d[key] is None:
        return default
    val = d[key]
    if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
        raise WorldError(f"{where}: '{key}' must be a finite number, got {val!r}")
    return float(val)


def _entries(data: dict[str, Any], key: str, source: str) -> list[Any]:
    val = data.get(key) or []
    if not isinstance(val, list):
        raise WorldError(f"{source}: '{key}' must be a list, got {type(val).__name__}")
    return val


def world_from_dict(data: Any, source: str = "world") -> World:
    if not isinstance(data, dict):
        raise WorldError(f"{source}: expected a mapping at the top level")
    check_keys(data, WORLD_KEYS, source, WorldError)
    size = _vec(data, "size", 2, source)
    if min(size) <= 0:
        raise WorldError(f"{source}: 'size' must be positive, got {size}")
    obstacles: list[Obstacle] = []
    for i, ob in enumerate(_entries(data, "obstacles", source)):
        where = f"{source}: obstacles[{i}]"
        if not isinstance(ob, dict):
            raise WorldError(f"{where}: expected a mapping")
        kind = ob.get("type")
        if kind in ("box", "cylinder"):
            check_keys(ob, BOX_KEYS if kind == "box" else CYLINDER_KEYS, f"{where} ({kind})",
                       WorldError)
        if kind == "box":
            sz = _vec(ob, "size", 2, where)
            if min(sz) <= 0:
                raise WorldError(f"{where}: 'size' must be positive")
            yaw = _num(ob, "yaw", where, 0.0)
            obstacles.append(Box(_vec(ob, "center", 2, where), sz, yaw,  # type: ignore[arg-type]
                                 _pos(ob, "height", where, DEFAULT_HEIGHT)))
        elif kind == "cylinder":
            obstacles.append(Cylinder(_vec(ob, "center", 2, where),  # type: ignore[arg-type]
                                      _pos(ob, "radius", where),
                                      _pos(ob, "height", where, DEFAULT_HEIGHT)))
        else:
            raise WorldError(f"{where}: unknown obstacle type {kind!r} (expected box or cylinder)")
    moving: list[MovingObstacle] = []
    for i, m in enumerate(_entries(data, "moving", source)):
        where = f"{source}: moving[{i}]"
        if not isinstance(m, dict):
            raise WorldError(f"{where}: expected a mapping")
        if "trajectory" in m:
            timed = _timed(m, where)  # first: it names a mix of the two forms
            check_keys(m, TIMED_KEYS, where, WorldError)
            moving.append(timed)
            continue
        check_keys(m, MOVING_KEYS, where, WorldError)
        wps = m.get("waypoints")
        if not isinstance(wps, list) or not wps:
            raise WorldError(f"{where}: 'waypoints' must be a non-empty list of [x, y]")
        pts = tuple(_vec({"p": w}, "p", 2, f"{where}.waypoints") for w in wps)
        speed = _num(m, "speed", where, 0.0)
        if speed < 0:
            raise WorldError(f"{where}: 'speed' must be >= 0")
        moving.append(MovingObstacle(_pos(m, "radius", where), speed, pts,  # type: ignore[arg-type]
                                     _pos(m, "height", where, DEFAULT_HEIGHT)))
    raw_start = data.get("start")
    if isinstance(raw_start, (list, tuple)) and len(raw_start) == 3:
        start = _vec(data, "start", 3, source)
    else:
        start = (*_vec(data, "start", 2, source), 0.0)
    goal = _vec(data, "goal", 2, source)
    hx, hy = size[0] / 2, size[1] / 2
    for name, p in (("start", start), ("goal", goal)):
        if abs(p[0]) >= hx or abs(p[1]) >= hy:
            raise WorldError(f"{source}: {name} {list(p[:2])} lies outside the arena {list(size)}")
    sp = _num(data, "shortest_path", source, -1.0)
    if "source" in data and not isinstance(data["source"], dict):
        raise WorldError(f"{source}: 'source' must be a mapping (where the world came from)")
    return World(
        name=str(data.get("name", Path(source).stem)), size=size,  # type: ignore[arg-type]
        obstacles=tuple(obstacles), moving=tuple(moving), start=start,  # type: ignore[arg-type]
        goal=goal, tier=str(data.get("tier", "custom")),  # type: ignore[arg-type]
        seed=data.get("seed"), shortest_path=sp if sp >= 0 else None,
    )


def load_world(path: str | Path) -> World:
    """Load a world YAML file; errors name the file and the problem."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise WorldError(f"cannot read world file {p}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise WorldError(f"world file {p} is not valid YAML: {exc}".splitlines()[0]) from exc
    return world_from_dict(data, str(p))
