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
    if tier not in TIERS:
        raise WorldError(f"unknown tier {tier!r}; expected one of {', '.join(TIERS)}")
    return TIERS[tier]


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


def generate_world(tier: str, seed: int, radius: float = 0.2,
                   resolution: float = 0.05) -> tuple[World, WorldMaps]:
    """A feasible world of `tier` from `seed` (same seed, same world)."""
    cfg = tier_config(tier)
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
