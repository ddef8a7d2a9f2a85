"""Occupancy grids, geodesic distance fields and shortest paths on a world (no PyBullet).

The shortest path length l used for SPL is computed here: Dijkstra from the goal on an
8-connected grid of cells whose clearance exceeds the robot radius (the map inflated by the
robot radius), then the cell path is string-pulled with grid line-of-sight, so l is close to
the true Euclidean shortest path rather than the 8-connected metric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from nav_policy.errors import WorldError
from nav_policy.sim.world import World

_NEIGHBOURS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass
class GridMap:
    """Clearance raster of a world's static obstacles. Cell (i, j) centre = origin + (j, i)*res."""

    clearance: np.ndarray  # (H, W) metres to the nearest static obstacle or wall
    resolution: float
    origin: tuple[float, float]  # world coordinates of cell (0, 0)'s centre

    @classmethod
    def from_world(cls, world: World, resolution: float = 0.05) -> GridMap:
        hx, hy = world.half
        nx, ny = int(round(world.size[0] / resolution)), int(round(world.size[1] / resolution))
        ox, oy = -hx + resolution / 2, -hy + resolution / 2
        xs = ox + resolution * np.arange(nx)
        ys = oy + resolution * np.arange(ny)
        gx, gy = np.meshgrid(xs, ys)
        return cls(world.clearance(gx, gy), resolution, (ox, oy))

    @property
    def shape(self) -> tuple[int, int]:
        return self.clearance.shape  # type: ignore[return-value]

    def cell(self, x: float, y: float) -> tuple[int, int]:
        j = int(round((x - self.origin[0]) / self.resolution))
        i = int(round((y - self.origin[1]) / self.resolution))
        h, w = self.shape
        return min(max(i, 0), h - 1), min(max(j, 0), w - 1)

    def point(self, i: int, j: int) -> tuple[float, float]:
        return self.origin[0] + j * self.resolution, self.origin[1] + i * self.resolution

    def clearance_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        j = np.clip(np.rint((np.asarray(x) - self.origin[0]) / self.resolution), 0, self.shape[1] - 1)
        i = np.clip(np.rint((np.asarray(y) - self.origin[1]) / self.resolution), 0, self.shape[0] - 1)
        return self.clearance[i.astype(int), j.astype(int)]


def geodesic_field(grid: GridMap, goal: tuple[float, float], radius: float) -> np.ndarray:
    """Shortest 8-connected path length (m) from every cell to the goal through free space.

    Free space is clearance > radius; occupied or unreachable cells get +inf.
    """
    free = grid.clearance > radius
    h, w = free.shape
    idx = np.arange(h * w).reshape(h, w)
    rows, cols, wts = [], [], []
    for di, dj in _NEIGHBOURS:
        i0, i1 = max(0, -di), h - max(0, di)
        j0, j1 = max(0, -dj), w - max(0, dj)
        a = free[i0:i1, j0:j1] & free[i0 + di:i1 + di, j0 + dj:j1 + dj]
        if di and dj:  # no corner cutting
            a &= free[i0 + di:i1 + di, j0:j1] & free[i0:i1, j0 + dj:j1 + dj]
        rows.append(idx[i0:i1, j0:j1][a])
        cols.append(idx[i0 + di:i1 + di, j0 + dj:j1 + dj][a])
        wts.append(np.full(int(a.sum()), grid.resolution * math.hypot(di, dj)))
    n = h * w
    graph = coo_matrix((np.concatenate(wts), (np.concatenate(rows), np.concatenate(cols))),
                       shape=(n, n)).tocsr()
    gi, gj = grid.cell(*goal)
    dist = dijkstra(graph, directed=False, indices=gi * w + gj)
    field = dist.reshape(h, w)
    field[~free] = np.inf
    return field


def _line_free(grid: GridMap, free: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> bool:
    n = int(max(abs(b[0] - a[0]), abs(b[1] - a[1])) * 2) + 1
    ii = np.rint(np.linspace(a[0], b[0], n + 1)).astype(int)
    jj = np.rint(np.linspace(a[1], b[1], n + 1)).astype(int)
    return bool(free[ii, jj].all())


def shortest_path(grid: GridMap, field: np.ndarray, start: tuple[float, float],
                  radius: float) -> np.ndarray:
    """Waypoints (N, 2) from start to the goal of `field`, string-pulled. Raises if none."""
    free = grid.clearance > radius
    si, sj = grid.cell(*start)
    if not np.isfinite(field[si, sj]):
        raise WorldError(f"no collision-free path from start {tuple(round(v, 2) for v in start)}"
                         " to the goal")
    h, w = field.shape
    cells = [(si, sj)]
    i, j = si, sj
    for _ in range(h * w):
        if field[i, j] == 0.0:
            break
        best = (i, j)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                ni, nj = i + di, j + dj
                if 0 <= ni < h and 0 <= nj < w and field[ni, nj] < field[best]:
                    best = (ni, nj)
        if best == (i, j):
            break
        i, j = best
        cells.append(best)
    # string pulling: keep the farthest visible cell each time
    pulled = [cells[0]]
    k = 0
    while k < len(cells) - 1:
        nxt = k + 1
        while nxt + 1 < len(cells) and _line_free(grid, free, cells[k], cells[nxt + 1]):
            nxt += 1
        pulled.append(cells[nxt])
        k = nxt
    pts = np.array([grid.point(i, j) for i, j in pulled])
    pts[0] = start
    return pts


def path_length(points: np.ndarray) -> float:
    if len(points) < 2:
        return 0.0
    return float(np.hypot(*np.diff(np.asarray(points, dtype=float), axis=0).T).sum())
