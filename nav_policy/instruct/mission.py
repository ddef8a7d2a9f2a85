"""Mission geometry: where the robot drives for each plan step (pure: no ROS, no PyBullet).

MissionGeometry turns one plan Step (docs/DESIGN.md, "Plan schema") and the robot's pose into a
StepTarget, in the landmark file's frame (the odometry frame of the simulator):

- go_to X: an approach point at a standoff from X on the side facing the robot, in free
  space (objects); the doorway itself (doors, when free); the position (areas, else the nearest
  free point).
- go_past X: two waypoints, abreast of X (at a lateral offset that clears it) and beyond it
  along the direction of travel; the side is the one toward the next step's target, else left.
- go_through D: a point before and a point after the door along its normal. The normal is the
  perpendicular of the wall the door sits in, found from the map (the direction of the
  shortest free extent through the door is along the wall); without a map it is the direction
  of travel.
- go_into A: A's position (the area centroid), or the nearest free point to it.
- exit A: the nearest reachable point outside A toward the next step. A's extent is the free
  space connected to its centroid once the map's doors are closed; without a map (or when A is
  not closed by doors) a disc of `area_radius`.
- turn: rotate in place to an absolute heading (left is counter-clockwise; 90 deg, 180 for
  around, unless angle_deg says otherwise). move: a goal `distance_m` ahead or behind.
- wait: hold for duration_s. stop: hold.

With a FreeSpace (the world's clearance and a reachability grid), every goal point must have
clearance >= robot radius + clearance_margin and be connected to the robot through space at
least robot radius + path_margin wide; otherwise StepUnreachable. Without one every point is
taken as free (pure geometry, as in the hand-computed tests).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nav_policy.instruct.landmarks import Landmark, LandmarkMap
from nav_policy.instruct.schema import Step

Point = tuple[float, float]
DEFAULT_TURN_DEG = 90.0


class StepUnreachable(Exception):
    """No free, reachable goal exists for a step; the message is one line."""


@dataclass(frozen=True)
class Pose2D:
    """Robot pose in the landmark (map / odometry) frame."""

    x: float
    y: float
    yaw: float = 0.0

    @property
    def xy(self) -> Point:
        return (self.x, self.y)


@dataclass(frozen=True)
class GeometryConfig:
    """Distances (m) and search resolution of the step geometry."""

    robot_radius: float = 0.2
    clearance_margin: float = 0.15  # goal points: clearance >= radius + this
    path_margin: float = 0.15  # reachability: corridors at least radius + this from obstacles
    standoff: float = 0.6  # go_to object: nearest approach distance from its centre
    max_standoff: float = 2.5  # ... and farthest
    pass_offset: float = 0.6  # go_past: smallest lateral offset from the landmark centre
    pass_beyond: float = 1.0  # go_past: distance beyond the abreast point
    door_depth: float = 0.7  # go_through: before/after points, from the door centre
    door_block_radius: float = 0.6  # exit: doors closed with discs of this radius
    area_radius: float = 1.5  # exit: area extent when the map cannot tell
    exit_margin: float = 0.5  # exit: how far outside the area the goal lies
    search_step: float = 0.05
    angle_step_deg: float = 15.0

    @property
    def goal_clearance(self) -> float:
        return self.robot_radius + self.clearance_margin

    @property
    def path_clearance(self) -> float:
        return self.robot_radius + self.path_margin


@dataclass(frozen=True)
class StepTarget:
    """What the executor does for one step.

    kind: drive (visit `waypoints` in order; the last is the step's target), turn (rotate in
    place to `heading`), wait (hold `duration_s`), stop (hold), skip (nothing to do: `note`).
    """

    kind: str
    waypoints: tuple[Point, ...] = ()
    heading: float | None = None
    duration_s: float | None = None
    note: str = ""

    @property
    def goal(self) -> Point | None:
        return self.waypoints[-1] if self.waypoints else None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "waypoints": [list(p) for p in self.waypoints],
                "heading": self.heading, "duration_s": self.duration_s, "note": self.note}


def wrap_angle(a: float) -> float:
    """a in (-pi, pi]."""
    return math.atan2(math.sin(a), math.cos(a))


def _unit(dx: float, dy: float, fallback: Point = (1.0, 0.0)) -> Point:
    n = math.hypot(dx, dy)
    return (dx / n, dy / n) if n > 1e-9 else fallback


def _add(p: Point, d: Point, s: float) -> Point:
    return (p[0] + s * d[0], p[1] + s * d[1])


def _round(p: Point) -> Point:
    return (round(p[0], 3), round(p[1], 3))


def turn_heading(yaw: float, direction: str, angle_deg: float | None) -> float:
    """Absolute heading after turning `direction` (left = counter-clockwise) by angle_deg."""
    default = 180.0 if direction == "around" else DEFAULT_TURN_DEG
    angle = math.radians(angle_deg if angle_deg is not None else default)
    sign = -1.0 if direction == "right" else 1.0
    return wrap_angle(yaw + sign * angle)


# ---- free space ---------------------------------------------------------------------------


class FreeSpace:
    """Clearance and reachability on a world's static map.

    `clearance(x, y)` is exact (the world's distance function); reachability is on a grid
    (nav_policy.sim.grid) of cells farther than `path_clearance` from every obstacle.
    """

    def __init__(self, clearance: Callable[[np.ndarray, np.ndarray], np.ndarray], grid: Any,
                 bounds: tuple[float, float, float, float], path_clearance: float) -> None:
        self._clearance = clearance
        self.grid = grid
        self.bounds = bounds
        self.path_clearance = path_clearance
        self._fields: dict[tuple[int, int], np.ndarray] = {}

    @classmethod
    def from_world(cls, world: Any, path_clearance: float, resolution: float = 0.05
                   ) -> FreeSpace:
        """FreeSpace of a nav_policy.sim.world.World (static obstacles and walls)."""
        from nav_policy.sim.grid import GridMap

        hx, hy = world.half
        return cls(world.clearance, GridMap.from_world(world, resolution), (-hx, -hy, hx, hy),
                   path_clearance)

    def clearance(self, p: Point) -> float:
        x0, y0, x1, y1 = self.bounds
        if not (x0 < p[0] < x1 and y0 < p[1] < y1):
            return 0.0
        return float(self._clearance(np.array(p[0]), np.array(p[1])))

    def segment_clearance(self, a: Point, b: Point, step: float = 0.05) -> float:
        n = max(int(math.dist(a, b) / step), 1) + 1
        return min(self.clearance((a[0] + (b[0] - a[0]) * k / (n - 1),
                                   a[1] + (b[1] - a[1]) * k / (n - 1))) for k in range(n))

    def _free_cells(self) -> np.ndarray:
        return self.grid.clearance > self.path_clearance

    def _source_cell(self, p: Point) -> tuple[int, int] | None:
        """The grid cell of p, or the nearest free cell within 0.6 m (robot hugging a wall)."""
        free = self._free_cells()
        i, j = self.grid.cell(*p)
        if free[i, j]:
            return i, j
        r = int(math.ceil(0.6 / self.grid.resolution))
        ii, jj = np.mgrid[max(i - r, 0):min(i + r + 1, free.shape[0]),
                          max(j - r, 0):min(j + r + 1, free.shape[1])]
        ok = free[ii, jj]
        if not ok.any():
            return None
        d = (ii - i) ** 2 + (jj - j) ** 2
        d = np.where(ok, d, np.iinfo(np.int64).max)
        k = int(np.argmin(d))
        return int(ii.flat[k]), int(jj.flat[k])

    def field_from(self, p: Point) -> np.ndarray:
        """Geodesic distance (m) from p to every cell (inf where unreachable)."""
        from nav_policy.sim.grid import geodesic_field

        cell = self._source_cell(p)
        if cell is None:
            return np.full(self.grid.shape, np.inf)
        if cell not in self._fields:
            if len(self._fields) > 8:
                self._fields.clear()
            self._fields[cell] = geodesic_field(self.grid, self.grid.point(*cell),
                                                self.path_clearance)
        return self._fields[cell]

    def route_length(self, field: np.ndarray, p: Point) -> float:
        """Geodesic length from the field's source to p (inf if unreachable)."""
        cell = self._source_cell(p)
        return float(field[cell]) if cell is not None else math.inf

    def path(self, start: Point, goal: Point) -> np.ndarray | None:
        """String-pulled grid path start -> goal (N, 2), or None when there is none."""
        from nav_policy.errors import WorldError
        from nav_policy.sim.grid import shortest_path

        field = self.field_from(goal)
        try:
            pts = shortest_path(self.grid, field, start, self.path_clearance)
        except WorldError:
            return None
        pts = np.vstack([pts, np.asarray(goal, dtype=float)[None]])
        return pts

    def wall_direction(self, p: Point, radius: float = 1.0) -> Point:
        """Direction of the wall through a doorway at p: the principal axis of the occupied
        cells within `radius` (the two jambs' walls line up through the door)."""
        g = self.grid
        h, w = g.shape
        i0, j0 = g.cell(*p)
        r = int(math.ceil(radius / g.resolution))
        ii, jj = np.mgrid[max(i0 - r, 0):min(i0 + r + 1, h), max(j0 - r, 0):min(j0 + r + 1, w)]
        xs = g.origin[0] + jj * g.resolution
        ys = g.origin[1] + ii * g.resolution
        occ = (g.clearance[ii, jj] < 0.5 * g.resolution) & (np.hypot(xs - p[0], ys - p[1]) <= radius)
        if occ.sum() < 3:
            return (1.0, 0.0)
        pts = np.stack([xs[occ], ys[occ]], axis=1)
        pts = pts - pts.mean(axis=0)
        _, vecs = np.linalg.eigh(pts.T @ pts)
        d = vecs[:, -1]
        return (float(d[0]), float(d[1]))


# ---- step geometry -------------------------------------------------------------------------


class MissionGeometry:
    """Plan steps to StepTargets on a landmark map, with an optional FreeSpace."""

    def __init__(self, landmarks: LandmarkMap, free: FreeSpace | None = None,
                 config: GeometryConfig | None = None) -> None:
        self.landmarks = landmarks
        self.free = free
        self.cfg = config or GeometryConfig()

    @classmethod
    def from_world(cls, landmarks: LandmarkMap, world: Any,
                   config: GeometryConfig | None = None) -> MissionGeometry:
        cfg = config or GeometryConfig()
        return cls(landmarks, FreeSpace.from_world(world, cfg.path_clearance), cfg)

    # ---- helpers ------------------------------------------------------------------------
    def landmark(self, name: str) -> Landmark:
        try:
            return self.landmarks.get(name)
        except KeyError:
            raise StepUnreachable(f"{name!r} is not a landmark of {self.landmarks.source}") \
                from None

    def hint(self, steps: Sequence[Step], index: int) -> Point | None:
        """Position of the first target after step `index` (where the mission heads next)."""
        for step in steps[index + 1:]:
            if step.target is not None:
                try:
                    return self.landmarks.get(step.target).position
                except KeyError:
                    return None
        return None

    def is_free(self, p: Point) -> bool:
        return self.free is None or self.free.clearance(p) >= self.cfg.goal_clearance

    def _routes(self, pose: Pose2D) -> Callable[[Point], float]:
        """Geodesic length from the robot to a point (Euclidean without a map)."""
        if self.free is None:
            return lambda p: math.dist(pose.xy, p)
        field = self.free.field_from(pose.xy)
        free = self.free
        return lambda p: free.route_length(field, p)

    def _angles(self) -> list[float]:
        """0, +s, -s, +2s, -2s, ... up to 180 degrees (radians)."""
        s = self.cfg.angle_step_deg
        out = [0.0]
        for k in range(1, int(180 / s) + 1):
            out += [math.radians(k * s), -math.radians(k * s)]
        return out[:-1] if abs(math.degrees(out[-1])) >= 180 else out

    def _first_free_along(self, origin: Point, d: Point, r0: float, r1: float) -> Point | None:
        steps = int(round((r1 - r0) / self.cfg.search_step))
        for k in range(steps + 1):
            p = _add(origin, d, r0 + k * self.cfg.search_step)
            if self.is_free(p):
                return p
        return None

    def _pick(self, candidates: Iterable[Point], route: Callable[[Point], float],
              extra: Callable[[Point], float] | None = None) -> Point | None:
        """Cheapest reachable candidate; near-ties go to the earliest (the preferred order)."""
        scored = [(route(p) + (extra(p) if extra else 0.0), p) for p in candidates]
        scored = [(c, p) for c, p in scored if math.isfinite(c)]
        if not scored:
            return None
        best = min(c for c, _ in scored)
        return next(p for c, p in scored if c <= best * 1.05 + 0.3)

    def ring_point(self, centre: Point, prefer: Point, pose: Pose2D, r0: float) -> Point:
        """Free reachable point around `centre`, r0..max_standoff out, preferring `prefer`."""
        if self.free is None:
            return _round(_add(centre, prefer, r0))
        base = math.atan2(prefer[1], prefer[0])
        cands = []
        for a in self._angles():
            d = (math.cos(base + a), math.sin(base + a))
            p = self._first_free_along(centre, d, r0, self.cfg.max_standoff)
            if p is not None:
                cands.append(p)
        best = self._pick(cands, self._routes(pose))
        if best is None:
            raise StepUnreachable(f"no free reachable point within {self.cfg.max_standoff} m of "
                                  f"({centre[0]:.2f}, {centre[1]:.2f})")
        return _round(best)

    def _reachable_or_raise(self, p: Point, pose: Pose2D, what: str) -> Point:
        if not self.is_free(p):
            raise StepUnreachable(f"{what} ({p[0]:.2f}, {p[1]:.2f}) is not in free space")
        if not math.isfinite(self._routes(pose)(p)):
            raise StepUnreachable(f"{what} ({p[0]:.2f}, {p[1]:.2f}) cannot be reached from "
                                  f"({pose.x:.2f}, {pose.y:.2f})")
        return _round(p)

    def _free_near(self, p: Point, pose: Pose2D) -> Point:
        """p if free and reachable, else the nearest such point around it."""
        if self.is_free(p) and math.isfinite(self._routes(pose)(p)):
            return _round(p)
        return self.ring_point(p, _unit(pose.x - p[0], pose.y - p[1]), pose,
                               self.cfg.search_step)

    # ---- steps -----------------------------------------------------------------------------
    def target(self, step: Step, pose: Pose2D, hint: Point | None = None) -> StepTarget:
        """The StepTarget of `step` from `pose`; StepUnreachable when there is none."""
        handlers: dict[str, Callable[[Step, Pose2D, Point | None], StepTarget]] = {
            "go_to": self.go_to, "go_past": self.go_past, "go_through": self.go_through,
            "go_into": self.go_into, "exit": self.exit, "turn": self.turn, "move": self.move,
            "wait": self.wait, "stop": self.stop,
        }
        return handlers[step.action](step, pose, hint)

    def go_to(self, step: Step, pose: Pose2D, hint: Point | None = None) -> StepTarget:
        lm = self.landmark(str(step.target))
        if lm.kind == "area":
            return StepTarget("drive", (self._free_near(lm.position, pose),))
        facing = _unit(pose.x - lm.position[0], pose.y - lm.position[1])
        if lm.kind == "door" and self.is_free(lm.position) and \
                math.isfinite(self._routes(pose)(lm.position)):
            return StepTarget("drive", (_round(lm.position),))
        r0 = self.cfg.search_step if lm.kind == "door" else self.cfg.standoff
        return StepTarget("drive", (self.ring_point(lm.position, facing, pose, r0),))

    def go_past(self, step: Step, pose: Pose2D, hint: Point | None = None) -> StepTarget:
        lm = self.landmark(str(step.target))
        L = lm.position
        d = _unit(L[0] - pose.x, L[1] - pose.y, (math.cos(pose.yaw), math.sin(pose.yaw)))
        n = (-d[1], d[0])  # left of the direction of travel
        sides = [1.0, -1.0]
        if hint is not None and (hint[0] - L[0]) * n[0] + (hint[1] - L[1]) * n[1] < 0:
            sides = [-1.0, 1.0]
        options = [opt for s in sides if (opt := self._pass_side(L, d, (s * n[0], s * n[1])))]
        if not options:
            raise StepUnreachable(f"no free way past {lm.name!r}")
        if self.free is None:
            return StepTarget("drive", options[0])
        route = self._routes(pose)

        def cost(pair: tuple[Point, Point]) -> float:
            tail = math.dist(pair[1], hint) if hint is not None else 0.0
            return route(pair[0]) + math.dist(*pair) + tail

        costs = [(cost(o), o) for o in options]
        costs = [(c, o) for c, o in costs if math.isfinite(c)]
        if not costs:
            raise StepUnreachable(f"the way past {lm.name!r} cannot be reached")
        best = min(c for c, _ in costs)
        return StepTarget("drive", next(o for c, o in costs if c <= best * 1.05 + 0.3))

    def _pass_side(self, L: Point, d: Point, side: Point) -> tuple[Point, Point] | None:
        """(abreast, beyond) on one side, or None when that side is blocked.

        The abreast point moves out from pass_offset until both it and the full-length beyond
        point are free with a clear segment between them; failing that, the nearest free
        abreast point with the longest beyond segment that fits.
        """
        r, fallback = self.cfg.pass_offset, None
        while r <= self.cfg.max_standoff + 1e-9:
            abreast = _add(L, side, r)
            r += self.cfg.search_step
            if not self.is_free(abreast):
                continue
            for f in (1.0, 0.75, 0.5, 0.25):
                beyond = _add(abreast, d, f * self.cfg.pass_beyond)
                if self._clear_leg(abreast, beyond):
                    if f == 1.0 or self.free is None:
                        return (_round(abreast), _round(beyond))
                    fallback = fallback or (_round(abreast), _round(beyond))
                    break
        return fallback

    def _clear_leg(self, a: Point, b: Point) -> bool:
        if self.free is None:
            return True
        return self.is_free(b) and \
            self.free.segment_clearance(a, b) >= self.cfg.robot_radius + 0.1

    def door_normal(self, door: Point, pose: Pose2D, hint: Point | None) -> Point:
        """Unit normal of the door, pointing away from the robot (into where it goes)."""
        away = _unit(door[0] - pose.x, door[1] - pose.y)
        if self.free is None:
            return away
        w = self.free.wall_direction(door)
        n = (-w[1], w[0])
        along = n[0] * away[0] + n[1] * away[1]
        if abs(along) < 0.1 and hint is not None:  # robot in the door plane: head to the hint
            to_hint = _unit(hint[0] - door[0], hint[1] - door[1])
            along = n[0] * to_hint[0] + n[1] * to_hint[1]
        return n if along >= 0 else (-n[0], -n[1])

    def go_through(self, step: Step, pose: Pose2D, hint: Point | None = None) -> StepTarget:
        lm = self.landmark(str(step.target))
        D = lm.position
        n = self.door_normal(D, pose, hint)
        after = self._door_point(D, n, 1.0, pose, f"the far side of {lm.name!r}")
        if math.dist(pose.xy, D) < self.cfg.door_depth:
            return StepTarget("drive", (after,))  # already at the door
        before = self._door_point(D, n, -1.0, pose, f"the near side of {lm.name!r}")
        return StepTarget("drive", (before, after))

    def _door_point(self, D: Point, n: Point, sign: float, pose: Pose2D, what: str) -> Point:
        for depth in (self.cfg.door_depth, 0.5 * self.cfg.door_depth, 1.5 * self.cfg.door_depth):
            p = _add(D, n, sign * depth)
            if self.is_free(p):
                return self._reachable_or_raise(p, pose, what)
        raise StepUnreachable(f"{what} is not in free space (door at ({D[0]:.2f}, {D[1]:.2f}))")

    def go_into(self, step: Step, pose: Pose2D, hint: Point | None = None) -> StepTarget:
        lm = self.landmark(str(step.target))
        return StepTarget("drive", (self._free_near(lm.position, pose),))

    def exit(self, step: Step, pose: Pose2D, hint: Point | None = None) -> StepTarget:
        lm = self.landmark(str(step.target))
        region = self.area_region(lm) if self.free is not None else None
        if region is None:
            return self._exit_disc(lm, pose, hint)
        inside, outside_far = region
        if not inside[self.free.grid.cell(*pose.xy)]:  # type: ignore[union-attr]
            return StepTarget("skip", note=f"already outside {lm.name!r}")
        grid = self.free.grid  # type: ignore[union-attr]
        route = self._routes(pose)
        ii, jj = np.nonzero(outside_far & (grid.clearance >= self.cfg.goal_clearance))
        cands = [grid.point(int(i), int(j)) for i, j in zip(ii, jj)]
        extra = (lambda p: math.dist(p, hint)) if hint is not None else None
        best = self._pick_exit(cands, route, extra)
        if best is None:
            raise StepUnreachable(f"no reachable point outside {lm.name!r}")
        return StepTarget("drive", (_round(best),))

    def _pick_exit(self, cands: list[Point], route: Callable[[Point], float],
                   extra: Callable[[Point], float] | None) -> Point | None:
        scored = [(route(p) + (extra(p) if extra else 0.0), p) for p in cands]
        scored = [(c, p) for c, p in scored if math.isfinite(c)]
        return min(scored)[1] if scored else None

    def _exit_disc(self, lm: Landmark, pose: Pose2D, hint: Point | None) -> StepTarget:
        c = lm.position
        if math.dist(pose.xy, c) > self.cfg.area_radius:
            return StepTarget("skip", note=f"already outside {lm.name!r}")
        ref = hint if hint is not None else pose.xy
        d = _unit(ref[0] - c[0], ref[1] - c[1], (math.cos(pose.yaw), math.sin(pose.yaw)))
        p = _add(c, d, self.cfg.area_radius + self.cfg.exit_margin)
        if self.free is None:
            return StepTarget("drive", (_round(p),))
        return StepTarget("drive", (self._free_near(p, pose),))

    def area_region(self, lm: Landmark) -> tuple[np.ndarray, np.ndarray] | None:
        """(inside, far outside) cell masks of an area closed by the map's doors, or None when
        the map does not close it (then the disc of area_radius applies)."""
        from scipy import ndimage

        assert self.free is not None
        grid = self.free.grid
        free = grid.clearance > self.cfg.robot_radius
        h, w = free.shape
        yy, xx = np.mgrid[0:h, 0:w]
        px = grid.origin[0] + xx * grid.resolution
        py = grid.origin[1] + yy * grid.resolution
        doors = np.zeros_like(free)
        for door in (d for d in self.landmarks if d.kind == "door"):
            doors |= np.hypot(px - door.position[0], py - door.position[1]) <= \
                self.cfg.door_block_radius
        free &= ~doors
        labels, _ = ndimage.label(free)
        cell = self.free._source_cell(lm.position)
        if cell is None or labels[cell] == 0:
            return None
        inside = labels == labels[cell]
        if inside.sum() > 0.5 * free.sum():
            return None
        dist_out = ndimage.distance_transform_edt(~inside) * grid.resolution
        return inside, (~inside) & (~doors) & (dist_out >= self.cfg.exit_margin)

    def turn(self, step: Step, pose: Pose2D, hint: Point | None = None) -> StepTarget:
        return StepTarget("turn", heading=turn_heading(pose.yaw, str(step.direction),
                                                      step.angle_deg))

    def move(self, step: Step, pose: Pose2D, hint: Point | None = None) -> StepTarget:
        sign = -1.0 if step.direction == "backward" else 1.0
        d = (math.cos(pose.yaw), math.sin(pose.yaw))
        p = _add(pose.xy, d, sign * float(step.distance_m or 0.0))
        if self.free is None:
            return StepTarget("drive", (_round(p),))
        return StepTarget("drive", (self._reachable_or_raise(p, pose, "the move's goal"),))

    def wait(self, step: Step, pose: Pose2D, hint: Point | None = None) -> StepTarget:
        return StepTarget("wait", duration_s=float(step.duration_s or 0.0))

    def stop(self, step: Step, pose: Pose2D, hint: Point | None = None) -> StepTarget:
        return StepTarget("stop")
