"""An exact 2D lidar for World geometry (closed-form rays against circles and rectangles).

The referee of the backend parity tests and of `python -m nav_policy.bench.parity`: both engines
are compared with it, beam by beam. Obstacles lower than the scanner are invisible, as in the
engines; all obstacles are prisms standing on the floor, so a horizontal scan is a 2D cast.
"""

from __future__ import annotations

import math

import numpy as np

from nav_policy.sim.world import Box, World


def exact_scan(world: World, x: float, y: float, angles: np.ndarray, t: float, range_max: float,
               height: float, moving_xy: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact ranges from (x, y) along `angles` (+inf beyond range_max) and, per beam, what it
    hits: 0 box or wall, 1 static cylinder, 2 moving cylinder, -1 nothing. Obstacles lower
    than the scanner are invisible, as in both engines. Moving obstacles are at position(t),
    or at `moving_xy` (a live crowd's pedestrians, which no formula of t gives)."""
    dx, dy = np.cos(angles), np.sin(angles)
    best = np.full(angles.shape, np.inf)
    kind = np.full(angles.shape, -1)

    def circle(cx: float, cy: float, r: float, k: int) -> None:
        ox, oy = x - cx, y - cy
        b = ox * dx + oy * dy
        disc = b * b - (ox * ox + oy * oy - r * r)
        with np.errstate(invalid="ignore"):
            tt = np.where(disc >= 0, -b - np.sqrt(disc), np.inf)
        tt = np.where(tt >= 0, tt, np.inf)
        closer = tt < best
        best[closer], kind[closer] = tt[closer], k

    def rect(ob: Box) -> None:
        c, s = math.cos(ob.yaw), math.sin(ob.yaw)
        ox, oy = x - ob.center[0], y - ob.center[1]
        lo = (c * ox + s * oy, -s * ox + c * oy)  # origin in the box frame
        ld = (c * dx + s * dy, -s * dx + c * dy)
        tmin, tmax = np.zeros_like(dx), np.full(dx.shape, np.inf)
        for o, d, h in ((lo[0], ld[0], ob.size[0] / 2), (lo[1], ld[1], ob.size[1] / 2)):
            with np.errstate(divide="ignore", invalid="ignore"):
                t1, t2 = (-h - o) / d, (h - o) / d
            par = np.abs(d) < 1e-12  # parallel to this slab: inside it always, outside never
            inside = np.abs(o) <= h
            t1 = np.where(par, np.where(inside, -np.inf, np.inf), t1)
            t2 = np.where(par, np.inf, t2)
            tmin = np.maximum(tmin, np.minimum(t1, t2))
            tmax = np.minimum(tmax, np.maximum(t1, t2))
        tt = np.where(tmin <= tmax, tmin, np.inf)
        closer = tt < best
        best[closer], kind[closer] = tt[closer], 0

    for ob in world.all_static():
        if ob.height <= height:
            continue
        if isinstance(ob, Box):
            rect(ob)
        else:
            circle(*ob.center, ob.radius, 1)
    where = moving_xy if moving_xy is not None else [m.position(t) for m in world.moving]
    for m, xy in zip(world.moving, where):
        if m.height > height:
            circle(*xy, m.radius, 2)
    best[best > range_max] = np.inf
    kind[~np.isfinite(best)] = -1
    return best, kind
