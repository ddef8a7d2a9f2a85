"""Global path for "with global path" mode: grid A*-equivalent shortest path on the known
static map, reusing nav_policy.sim.grid (clearance raster, Dijkstra geodesic field from the
goal, string-pulled descent), the same planner that defines the SPL reference length.

Moving obstacles are not in the static map; the local planner handles them from the scan.
"""

from __future__ import annotations

import numpy as np

from nav_policy.errors import WorldError
from nav_policy.sim.grid import GridMap, geodesic_field, shortest_path
from nav_policy.sim.world import World


def global_path(world: World, radius: float, margin: float = 0.1, resolution: float = 0.05,
                start: tuple[float, float] | None = None) -> np.ndarray:
    """Waypoints (N, 2), odometry frame = world frame at the start, from `start` (default the
    world's start) to the world's goal.

    The map is inflated by `radius + margin` so the path keeps some clearance for the local
    planner's footprint margin; where that closes every way through (a gap narrower than
    2 x (radius + margin)), it falls back to the bare robot radius. Raises WorldError when
    even that has no path.
    """
    grid = GridMap.from_world(world, resolution)
    origin = start if start is not None else (float(world.start[0]), float(world.start[1]))
    inflations = (radius + margin, radius) if margin > 0 else (radius,)
    last: WorldError | None = None
    for inflation in inflations:
        field = geodesic_field(grid, world.goal, inflation)
        try:
            path = shortest_path(grid, field, origin, inflation)
        except WorldError as exc:
            last = exc
            continue
        path[-1] = world.goal
        return path
    assert last is not None
    raise last
