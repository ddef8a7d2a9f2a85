"""Procedural benchmark/training worlds by tier, reproducible from a seed.

Every generated world keeps a collision-free start→goal path on the map inflated by the robot
radius (checked with the grid planner in nav_policy.sim.grid); its length is stored as
World.shortest_path (the l of SPL).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nav_policy.errors import WorldError
from nav_policy.sim.grid import GridMap, geodesic_field, path_length, shortest_path
from nav_policy.sim.world import Box, Cylinder, MovingObstacle, Obstacle, World


@dataclass(frozen=True)
class TierConfig:
    size: tuple[float, float]
    n_obstacles: int
    min_gap: float  # smallest free gap between obstacles, metres (before robot inflation)
    goal_distance: tuple[float, float]
    n_moving: int = 0
    moving_speed: tuple[float, float] = (0.2, 0.5)
    box_side: tuple[float, float] = (0.3, 1.2)
    cylinder_radius: tuple[float, float] = (0.15, 0.4)


ROBOT_WIDTH = 0.4  # 2 x radius of the reference robot; hard tier gaps go down to 1.5x this

TIERS: dict[str, TierConfig] = {
    "easy": TierConfig(size=(8.0, 8.0), n_obstacles=6, min_gap=1.2, goal_distance=(3.0, 6.0)),
    "medium": TierConfig(size=(10.0, 10.0), n_obstacles=16, min_gap=0.9, goal_distance=(5.0, 8.0)),
    "hard": TierConfig(size=(10.0, 10.0), n_obstacles=34, min_gap=1.5 * ROBOT_WIDTH,
                       goal_distance=(6.0, 9.0)),
    "dynamic": TierConfig(size=(10.0, 10.0), n_obstacles=10, min_gap=0.9,
                          goal_distance=(5.0, 8.0), n_moving=5),
}
# Tiers outside TIERS (which the published tables, studies and defaults iterate): opt-in by name.
# crowd: rooms or a corridor (walls with doors), 5-25 pedestrians (social force, sim/crowd.py)
EXTRA_TIERS: dict[str, TierConfig] = {
    "crowd": TierConfig(size=(12.0, 10.0), n_obstacles=0, min_gap=1.2,
                        goal_distance=(6.0, 9.0), n_moving=25, moving_speed=(0.5, 1.5)),
}
KNOWN_TIERS: tuple[str, ...] = (*TIERS, *EXTRA_TIERS)
CROWD_SIZE = (5, 25)  # pedestrians per world
CROWD_RADIUS = (0.25, 0.3)  # m
CROWD_HORIZON = 60.0  # s of nominal (robot-free) walk stored as timed trajectories
WALL = 0.15  # m, interior wall thickness


@dataclass
class WorldMaps:
    """Derived maps of a world: clearance grid, geodesic field to the goal, shortest path."""

    grid: GridMap
    field: np.ndarray
    path: np.ndarray

    @property
    def length(self) -> float:
        return path_length(self.path)


def analyse_world(world: World, radius: float, resolution: float = 0.05) -> WorldMaps:
    """Grid, geodesic field and shortest path; raises WorldError if the goal is unreachable."""
    grid = GridMap.from_world(world, resolution)
    for name, p in (("start", world.start[:2]), ("goal", world.goal)):
        if float(world.clearance(np.array(p[0]), np.array(p[1]))) <= radius:
            raise WorldError(f"world '{world.name}': {name} {list(p)} is inside an obstacle "
                             f"(inflated by the robot radius {radius} m)")
    field = geodesic_field(grid, world.goal, radius)
    path = shortest_path(grid, field, world.start[:2], radius)
    return WorldMaps(grid, field, path)


def tier_config(tier: str) -> TierConfig:
    if tier not in KNOWN_TIERS:
        raise WorldError(f"unknown tier {tier!r}; expected one of {', '.join(KNOWN_TIERS)}")
    return TIERS[tier] if tier in TIERS else EXTRA_TIERS[tier]


def _vertices(box: Box) -> np.ndarray:
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    hx, hy = box.size[0] / 2, box.size[1] / 2
    local = np.array([[hx, hy], [-hx, hy], [-hx, -hy], [hx, -hy]])
    return local @ np.array([[c, s], [-s, c]]) + np.asarray(box.center)


def _outline(ob: Obstacle, step: float = 0.05) -> np.ndarray:
    """Points on the obstacle's boundary, at most `step` apart (vertices included)."""
    if isinstance(ob, Cylinder):
        n = max(8, int(2 * math.pi * ob.radius / step))
        a = np.linspace(0, 2 * math.pi, n, endpoint=False)
        return np.stack([ob.center[0] + ob.radius * np.cos(a),
                         ob.center[1] + ob.radius * np.sin(a)], axis=1)
    v = _vertices(ob)
    pts = [v]
    for k in range(4):
        a, b = v[k], v[(k + 1) % 4]
        n = max(1, int(np.hypot(*(b - a)) / step))
        if n > 1:  # n == 1 adds no point between the vertices
            t = np.linspace(0, 1, n, endpoint=False)[1:, None]
            pts.append(a + t * (b - a))
    return np.concatenate(pts)


def _boxes_overlap(va: np.ndarray, vb: np.ndarray) -> bool:
    """Separating-axis test of two rectangles given by their vertices (touching counts)."""
    for poly in (va, vb):
        for k in range(2):
            edge = poly[k + 1] - poly[k]
            axis = np.array([-edge[1], edge[0]])
            pa, pb = va @ axis, vb @ axis
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


def gap(a: Obstacle, b: Obstacle) -> float:
    """Free distance between two obstacles (0 if they touch or overlap)."""
    if isinstance(a, Cylinder) and isinstance(b, Cylinder):
        return max(0.0, math.hypot(a.center[0] - b.center[0], a.center[1] - b.center[1])
                   - a.radius - b.radius)
    if isinstance(a, Cylinder):
        a, b = b, a
    if isinstance(b, Cylinder):  # a is a box
        return max(0.0, float(a.distance(np.array(b.center[0]), np.array(b.center[1]))) - b.radius)
    # Two boxes: 0 if they overlap, else the distance is reached at a vertex of one of them.
    assert isinstance(a, Box) and isinstance(b, Box)
    va, vb = _vertices(a), _vertices(b)
    if _boxes_overlap(va, vb):
        return 0.0
    return float(min(b.distance(va[:, 0], va[:, 1]).min(), a.distance(vb[:, 0], vb[:, 1]).min()))


def _random_obstacle(cfg: TierConfig, rng: np.random.Generator) -> Obstacle:
    hx, hy = cfg.size[0] / 2, cfg.size[1] / 2
    center = (float(rng.uniform(-hx + 0.3, hx - 0.3)), float(rng.uniform(-hy + 0.3, hy - 0.3)))
    if rng.random() < 0.5:
        return Cylinder(center, float(rng.uniform(*cfg.cylinder_radius)))
    side = rng.uniform(*cfg.box_side, size=2)
    return Box(center, (float(side[0]), float(side[1])), float(rng.uniform(-math.pi, math.pi)))


def _wall_gap(ob: Obstacle, cfg: TierConfig) -> float:
    hx, hy = cfg.size[0] / 2, cfg.size[1] / 2
    pts = _outline(ob, step=1.0)
    if np.any(np.abs(pts[:, 0]) >= hx) or np.any(np.abs(pts[:, 1]) >= hy):
        return 0.0
    return float(min((hx - np.abs(pts[:, 0])).min(), (hy - np.abs(pts[:, 1])).min()))


def _place_obstacles(cfg: TierConfig, rng: np.random.Generator) -> list[Obstacle]:
    placed: list[Obstacle] = []
    tries = 0
    while len(placed) < cfg.n_obstacles and tries < cfg.n_obstacles * 60:
        tries += 1
        cand = _random_obstacle(cfg, rng)
        wg = _wall_gap(cand, cfg)
        if 0.0 < wg < cfg.min_gap or wg == 0.0:
            continue
        if all(gap(cand, other) >= cfg.min_gap for other in placed):
            placed.append(cand)
    return placed


def _sample_free(world: World, rng: np.random.Generator, clearance: float,
                 n: int = 64) -> np.ndarray:
    hx, hy = world.half
    pts = np.stack([rng.uniform(-hx + clearance, hx - clearance, n),
                    rng.uniform(-hy + clearance, hy - clearance, n)], axis=1)
    ok = world.clearance(pts[:, 0], pts[:, 1]) > clearance
    return pts[ok]


def _moving(cfg: TierConfig, world: World, rng: np.random.Generator,
            radius: float) -> tuple[MovingObstacle, ...]:
    out: list[MovingObstacle] = []
    sx, sy = world.start[:2]
    for _ in range(cfg.n_moving * 40):
        if len(out) == cfg.n_moving:
            break
        r = float(rng.uniform(0.15, 0.3))
        cands = _sample_free(world, rng, r + 0.1, n=8)
        if len(cands) < 2:
            continue
        a, b = cands[0], cands[1]
        length = float(np.hypot(*(b - a)))
        if not 2.0 <= length <= 6.0:
            continue
        t = np.linspace(0, 1, int(length / 0.05) + 2)
        seg = a + t[:, None] * (b - a)
        if np.any(world.clearance(seg[:, 0], seg[:, 1]) <= r + 0.05):
            continue
        # keep the robot's start and the goal clear of the obstacle's whole sweep
        for px, py in ((sx, sy), world.goal):
            d = np.hypot(seg[:, 0] - px, seg[:, 1] - py).min()
            if d < r + radius + 0.6:
                break
        else:
            out.append(MovingObstacle(r, float(rng.uniform(*cfg.moving_speed)),
                                      ((float(a[0]), float(a[1])), (float(b[0]), float(b[1])))))
    return tuple(out)


def _segments(axis: str, at: float, lo: float, hi: float, doors: list[tuple[float, float]]
              ) -> list[Box]:
    """Wall boxes along x (axis 'x', at y = at) or y from lo to hi, leaving the door gaps."""
    out, cur = [], lo
    for a, b in sorted(doors) + [(hi, hi)]:
        if a - cur > 0.05:
            mid, length = (cur + a) / 2, a - cur
            out.append(Box((mid, at), (length, WALL)) if axis == "x"
                       else Box((at, mid), (WALL, length)))
        cur = b
    return out


def _doors(rng: np.random.Generator, lo: float, hi: float, n: int,
           width: tuple[float, float] = (1.2, 1.8)) -> list[tuple[float, float]]:
    """n non-overlapping door intervals inside (lo, hi), at least 0.5 m from its ends."""
    for _ in range(100):
        w = rng.uniform(*width, size=n)
        c = np.sort(rng.uniform(lo + 0.5 + w.max() / 2, hi - 0.5 - w.max() / 2, size=n))
        iv = [(float(ci - wi / 2), float(ci + wi / 2)) for ci, wi in zip(c, w)]
        if all(iv[k + 1][0] - iv[k][1] > 0.8 for k in range(n - 1)):
            return iv
    return [((lo + hi) / 2 - 0.75, (lo + hi) / 2 + 0.75)]


def _crowd_layout(cfg: TierConfig, rng: np.random.Generator) -> tuple[str, tuple[Obstacle, ...]]:
    """Interior walls with doors: four rooms round a cross, or a corridor between two halls."""
    hx, hy = cfg.size[0] / 2, cfg.size[1] / 2
    if rng.random() < 0.5:
        xc, yc = float(rng.uniform(-1.5, 1.5)), float(rng.uniform(-1.0, 1.0))
        walls = (_segments("y", xc, -hy, yc - WALL / 2, _doors(rng, -hy, yc, 1))
                 + _segments("y", xc, yc + WALL / 2, hy, _doors(rng, yc, hy, 1))
                 + _segments("x", yc, -hx, xc - WALL / 2, _doors(rng, -hx, xc, 1))
                 + _segments("x", yc, xc + WALL / 2, hx, _doors(rng, xc, hx, 1)))
        return "rooms", tuple(walls)
    half = float(rng.uniform(1.0, 1.5))
    walls = (_segments("x", half, -hx, hx, _doors(rng, -hx, hx, 2, (1.2, 1.6)))
             + _segments("x", -half, -hx, hx, _doors(rng, -hx, hx, 2, (1.2, 1.6))))
    return "corridor", tuple(walls)


def _spread(world: World, rng: np.random.Generator, n: int, clearance: float, apart: float,
            avoid: list[tuple[tuple[float, float], float]]) -> list[tuple[float, float]]:
    """Up to n free points (clearance) at least `apart` from each other and from `avoid`."""
    out: list[tuple[float, float]] = []
    for _ in range(40):
        for x, y in _sample_free(world, rng, clearance, n=64):
            pt = (float(x), float(y))
            if len(out) < n and all(math.hypot(pt[0] - a, pt[1] - b) >= apart for a, b in out) \
                    and all(math.hypot(pt[0] - a, pt[1] - b) >= d for (a, b), d in avoid):
                out.append(pt)
        if len(out) == n:
            break
    return out


def _generate_crowd(cfg: TierConfig, seed: int, radius: float,
                    resolution: float) -> tuple[World, WorldMaps]:
    from nav_policy.sim.crowd import Crowd, Routes

    rng = np.random.default_rng(seed)
    for _attempt in range(20):
        layout, walls = _crowd_layout(cfg, rng)
        base = World(name=f"crowd_{seed}", size=cfg.size, obstacles=walls, start=(0.0, 0.0, 0.0),
                     goal=(0.0, 0.0), tier="crowd", seed=seed)
        grid = GridMap.from_world(base, resolution)
        pts = _sample_free(base, rng, radius + 0.3, n=256)
        d = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1])
        ii, jj = np.nonzero((d >= cfg.goal_distance[0]) & (d <= cfg.goal_distance[1]))
        if len(ii) == 0:
            continue
        k = int(rng.integers(len(ii)))
        start, goal = (float(pts[ii[k], 0]), float(pts[ii[k], 1])), \
            (float(pts[jj[k], 0]), float(pts[jj[k], 1]))
        field = geodesic_field(grid, goal, radius)
        if not np.isfinite(field[grid.cell(*start)]):
            continue
        n_ped = int(rng.integers(CROWD_SIZE[0], CROWD_SIZE[1] + 1))
        pois = _spread(base, rng, 8, 0.7, 2.0, [(start, 1.0), (goal, 1.0)])
        peds = _spread(base, rng, n_ped, 0.45, 0.7, [(start, 1.5), (goal, 1.0)])
        if len(pois) < 3 or len(peds) < CROWD_SIZE[0]:
            continue
        plan = tuple(tuple(int(g) for g in rng.permutation(len(pois))[:int(rng.integers(2, 5))])
                     for _ in peds)
        goals = np.asarray(pois)
        routes = Routes.build(base, goals, CROWD_RADIUS[1])
        crowd = Crowd(start=tuple(peds),
                      radius=tuple(float(r) for r in rng.uniform(*CROWD_RADIUS, len(peds))),
                      speed=tuple(float(v) for v in rng.uniform(*cfg.moving_speed, len(peds))),
                      goals=tuple(pois), plan=plan, react=bool(rng.random() < 0.5),
                      routes=routes)
        walk = crowd.nominal_trajectories(base, CROWD_HORIZON)
        ts = crowd.dt * np.arange(len(walk))
        moving = tuple(MovingObstacle.timed(r, np.column_stack([ts, walk[:, k]]).round(4))
                       for k, r in enumerate(crowd.radius))
        yaw = float(rng.uniform(-math.pi, math.pi))
        path = shortest_path(grid, field, start, radius)
        world = World(name=base.name, size=cfg.size, obstacles=walls, moving=moving,
                      start=(start[0], start[1], yaw), goal=goal, tier="crowd", seed=seed,
                      shortest_path=round(path_length(path), 4),
                      meta={"crowd": crowd, "layout": layout})
        return world, WorldMaps(grid, field, path)
    raise WorldError(f"could not generate a feasible crowd world from seed {seed}")


def generate_world(tier: str, seed: int, radius: float = 0.2,
                   resolution: float = 0.05) -> tuple[World, WorldMaps]:
    """A feasible world of `tier` from `seed` (same seed, same world)."""
    cfg = tier_config(tier)
    if tier == "crowd":
        return _generate_crowd(cfg, seed, radius, resolution)
    rng = np.random.default_rng(seed)
    for _attempt in range(20):
        obstacles = tuple(_place_obstacles(cfg, rng))
        base = World(name=f"{tier}_{seed}", size=cfg.size, obstacles=obstacles,
                     start=(0.0, 0.0, 0.0), goal=(0.0, 0.0), tier=tier, seed=seed)
        grid = GridMap.from_world(base, resolution)
        for _pair in range(30):
            pts = _sample_free(base, rng, radius + 0.3)
            if len(pts) < 2:
                continue
            d = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1])
            ii, jj = np.nonzero((d >= cfg.goal_distance[0]) & (d <= cfg.goal_distance[1]))
            if len(ii) == 0:
                continue
            k = int(rng.integers(len(ii)))
            start, goal = pts[ii[k]], pts[jj[k]]
            field = geodesic_field(grid, (float(goal[0]), float(goal[1])), radius)
            si, sj = grid.cell(float(start[0]), float(start[1]))
            if not np.isfinite(field[si, sj]):
                continue
            yaw = float(rng.uniform(-math.pi, math.pi))
            world = World(name=base.name, size=cfg.size, obstacles=obstacles,
                          start=(float(start[0]), float(start[1]), yaw),
                          goal=(float(goal[0]), float(goal[1])), tier=tier, seed=seed)
            path = shortest_path(grid, field, world.start[:2], radius)
            moving = _moving(cfg, world, rng, radius)
            world = World(name=world.name, size=cfg.size, obstacles=obstacles, moving=moving,
                          start=world.start, goal=world.goal, tier=tier, seed=seed,
                          shortest_path=round(path_length(path), 4))
            return world, WorldMaps(grid, field, path)
    raise WorldError(f"could not generate a feasible {tier} world from seed {seed}")
