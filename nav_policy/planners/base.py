"""The LocalPlanner interface and the pure geometry helpers the classical planners share.

Conventions (REP 103/105): the odometry frame is x forward / y left at the start pose; the
robot frame has the robot at the origin looking along +x. Planners score candidate motions in
the robot frame: the scan is moved there from the lidar's mount pose (SensorFrame.mount; none
for the diffbot), the goal and the optional path from the odometry frame.

Scan validity follows sensor_msgs/LaserScan: a beam is an obstacle point when it is finite and
within [range_min, range_max]; +inf means "no return" (free up to range_max) and is a valid
reading; NaN, -inf and beams below range_min are invalid and ignored. A frame whose scan
nav_policy.codecs.scan.scan_problem refuses (more than half its beams invalid: the same rule
as the learned planners' codec and the node), or whose pose, velocity or goal is not finite, is
unusable: every planner then returns (0.0, 0.0) and says why in `last_info["reason"]`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy.spatial import cKDTree

from nav_policy.codecs.frame import SensorFrame
from nav_policy.codecs.scan import scan_problem
from nav_policy.sim.robot import RobotSpec


@runtime_checkable
class LocalPlanner(Protocol):
    """What the benchmark, the env scripts and the ROS node call, for every planner kind."""

    name: str
    last_info: dict[str, Any]

    def reset(self) -> None:
        """Forget episode state (warm starts, oscillation memory)."""

    def compute(self, frame: SensorFrame) -> tuple[float, float]:
        """Velocity command (v m/s, w rad/s) within the robot limits for this frame."""


# ---- limits --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Velocity and acceleration limits of a differential-drive robot, plus its radius: the
    radius of its profile's footprint (a rectangle's circumscribed circle, so the classical
    planners' circle checks stay conservative; the safety layer checks the rectangle)."""

    v_min: float
    v_max: float
    w_max: float
    acc_v: float
    acc_w: float
    radius: float

    @classmethod
    def from_robot(cls, robot: RobotSpec, v_min: float = 0.0) -> Limits:
        """Limits of `robot`; v_min is 0 for robots that never reverse (the env's action codec)."""
        fp = robot.footprint
        radius = fp.circumradius if fp is not None else robot.radius
        return cls(v_min=v_min, v_max=robot.v_max, w_max=robot.w_max, acc_v=robot.acc_v,
                   acc_w=robot.acc_w, radius=radius)

    def clamp(self, v: float, w: float) -> tuple[float, float]:
        """(v, w) clipped into the velocity limits, as plain floats."""
        return (float(min(max(v, self.v_min), self.v_max)),
                float(min(max(w, -self.w_max), self.w_max)))


# ---- frame checks and scan -----------------------------------------------------------------


def _returns(frame: SensorFrame) -> np.ndarray:
    """Mask of beams that hit something: finite and within [range_min, range_max].

    The limits are compared in the scan's own float type, so a float32 reading of exactly
    range_min counts."""
    raw = np.asarray(frame.ranges)
    kind = raw.dtype if np.issubdtype(raw.dtype, np.floating) else np.dtype(np.float64)
    r = raw.astype(kind, copy=False)
    lo, hi = np.asarray(frame.range_min, dtype=kind), np.asarray(frame.range_max, dtype=kind)
    with np.errstate(invalid="ignore"):
        return np.isfinite(r) & (r >= lo) & (r <= hi)


def valid_beams(frame: SensorFrame) -> np.ndarray:
    """Mask of beams that carry information: a return in range, or +inf (no return)."""
    return _returns(frame) | np.isposinf(np.asarray(frame.ranges, dtype=np.float64))


def frame_problem(frame: SensorFrame) -> str | None:
    """Why `frame` cannot be planned on, or None when it is usable."""
    r = np.asarray(frame.ranges)
    if r.ndim != 1 or r.size == 0:
        return "empty or non-1D scan"
    if not all(math.isfinite(float(a)) for a in (frame.angle_min, frame.angle_increment,
                                                 frame.range_min, frame.range_max)):
        return "non-finite scan geometry (angle_min, angle_increment, range_min or range_max)"
    problem = scan_problem(r, float(frame.range_min))  # the rule the learned planners use too
    if problem:
        return problem
    if not all(math.isfinite(float(a)) for a in frame.pose):
        return "non-finite pose"
    if not all(math.isfinite(float(a)) for a in frame.velocity):
        return "non-finite odometry velocity"
    if not all(math.isfinite(float(a)) for a in frame.goal):
        return "non-finite goal"
    if frame.path is not None:
        path = np.asarray(frame.path, dtype=np.float64)
        if path.ndim != 2 or path.shape[1] != 2 or len(path) == 0:
            return f"path must be a non-empty (N, 2) array, got shape {path.shape}"
        if not np.isfinite(path).all():
            return "path has non-finite points"
    return None


def scan_points(frame: SensorFrame) -> np.ndarray:
    """Obstacle points (M, 2) in the robot frame from the scan's returns (see module doc),
    moved from the lidar's mount pose (frame.mount) onto base_link."""
    hit = _returns(frame)
    a = frame.angle_min + frame.angle_increment * np.flatnonzero(hit)
    d = np.asarray(frame.ranges, dtype=np.float64)[hit]
    if not frame.mounted:
        return np.stack([d * np.cos(a), d * np.sin(a)], axis=1)
    mx, my, myaw = (float(m) for m in frame.mount)
    return np.stack([mx + d * np.cos(a + myaw), my + d * np.sin(a + myaw)], axis=1)


# ---- frames --------------------------------------------------------------------------------


def wrap_angle(a: np.ndarray | float) -> np.ndarray | float:
    """Angle(s) wrapped into [-pi, pi); a float for a scalar input."""
    out = (np.asarray(a, dtype=np.float64) + math.pi) % (2 * math.pi) - math.pi
    return float(out) if out.ndim == 0 else out


def to_robot_frame(pose: tuple[float, float, float], points: np.ndarray) -> np.ndarray:
    """Odometry-frame points (N, 2) expressed in the robot frame of `pose` = (x, y, yaw)."""
    x, y, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    d = np.asarray(points, dtype=np.float64).reshape(-1, 2) - np.array([x, y])
    return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], axis=1)


def goal_in_robot_frame(pose: tuple[float, float, float],
                        goal: tuple[float, float]) -> tuple[float, float]:
    """The goal (odometry frame) in the robot frame: (forward, left) metres."""
    g = to_robot_frame(pose, np.array([goal], dtype=np.float64))[0]
    return float(g[0]), float(g[1])


# ---- paths ---------------------------------------------------------------------------------


def project_on_path(path: np.ndarray, point: np.ndarray) -> tuple[int, float]:
    """Closest point of the polyline `path` (N, 2) to `point`: (segment index, fraction in it).

    A one-point path projects onto that point (segment 0, fraction 0).
    """
    pts = np.asarray(path, dtype=np.float64)
    if len(pts) < 2:
        return 0, 0.0
    a, b = pts[:-1], pts[1:]
    ab = b - a
    den = np.maximum((ab ** 2).sum(axis=1), 1e-12)
    t = np.clip(((np.asarray(point) - a) * ab).sum(axis=1) / den, 0.0, 1.0)
    d = np.hypot(*(a + t[:, None] * ab - point).T)
    k = int(np.argmin(d))
    return k, float(t[k])


def path_window(path: np.ndarray, position: np.ndarray, length: float) -> np.ndarray:
    """The part of `path` from the projection of `position` to `length` metres further on.

    Returns a polyline (M, 2), M >= 1, starting at the projection; clipped at the path's end.
    """
    pts = np.asarray(path, dtype=np.float64)
    k, t = project_on_path(pts, np.asarray(position, dtype=np.float64))
    if len(pts) < 2:
        return pts[:1].copy()
    start = pts[k] + t * (pts[k + 1] - pts[k])
    out = [start]
    left = length
    cur = start
    for nxt in pts[k + 1:]:
        seg = float(np.hypot(*(nxt - cur)))
        if seg >= left:
            out.append(cur + (nxt - cur) * (left / seg if seg > 0 else 0.0))
            break
        out.append(nxt)
        left -= seg
        cur = nxt
    return np.array(out)


def lookahead_point(path: np.ndarray, position: np.ndarray, distance: float) -> np.ndarray:
    """The point `distance` metres along `path` past the projection of `position` (pure pursuit).

    Clipped at the path's last point.
    """
    return path_window(path, position, distance)[-1]


def polyline_distance(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    """Distance from each of `points` (..., 2) to the polyline (M, 2); a point if M == 1."""
    p = np.asarray(points, dtype=np.float64)
    line = np.asarray(polyline, dtype=np.float64)
    if len(line) == 1:
        return np.hypot(p[..., 0] - line[0, 0], p[..., 1] - line[0, 1])
    a, b = line[:-1], line[1:]
    ab = b - a
    den = np.maximum((ab ** 2).sum(axis=1), 1e-12)
    ap = p[..., None, :] - a  # (..., S, 2)
    t = np.clip((ap * ab).sum(axis=-1) / den, 0.0, 1.0)
    diff = ap - t[..., None] * ab
    return np.sqrt((diff ** 2).sum(axis=-1)).min(axis=-1)


# ---- obstacle clearance --------------------------------------------------------------------


class Clearance:
    """Distance from query positions to the nearest scan point (exact, k-d tree).

    Distances beyond `horizon` are reported as `horizon`; with no points every query is
    `horizon` (nothing seen within range).
    """

    def __init__(self, points: np.ndarray, horizon: float) -> None:
        self.horizon = float(horizon)
        self.tree = cKDTree(points) if len(points) else None

    def __call__(self, xy: np.ndarray, horizon: float | None = None) -> np.ndarray:
        """Clearance of positions (..., 2), capped at `horizon` (default self.horizon); a
        smaller horizon answers faster (the k-d tree search stops there)."""
        cap = self.horizon if horizon is None else float(horizon)
        q = np.asarray(xy, dtype=np.float64)
        if self.tree is None:
            return np.full(q.shape[:-1], cap)
        d, _ = self.tree.query(q.reshape(-1, 2), k=1, distance_upper_bound=cap)
        return np.minimum(d, cap).reshape(q.shape[:-1])


# ---- local cost-to-go (DWB MapGridCritic on a scan-built rolling grid) ------------------------

_STEPS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass
class GoalField:
    """Shortest free-space distance (m) to the goal on a rolling grid around the robot.

    Cell (i, j) centre = origin + (j, i) * resolution, robot frame. Queries outside the grid
    read the nearest border cell.
    """

    values: np.ndarray  # (H, W)
    origin: tuple[float, float]
    resolution: float

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        q = np.asarray(xy, dtype=np.float64)
        h, w = self.values.shape
        j = np.clip(np.rint((q[..., 0] - self.origin[0]) / self.resolution), 0, w - 1)
        i = np.clip(np.rint((q[..., 1] - self.origin[1]) / self.resolution), 0, h - 1)
        return self.values[i.astype(np.intp), j.astype(np.intp)]


def _grid_edges(free: np.ndarray, resolution: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8-connected edges (rows, cols, weights) between free cells, no corner cutting."""
    h, w = free.shape
    idx = np.arange(h * w).reshape(h, w)
    rows, cols, wts = [], [], []
    for di, dj in _STEPS:
        i0, i1 = max(0, -di), h - max(0, di)
        j0, j1 = max(0, -dj), w - max(0, dj)
        a = free[i0:i1, j0:j1] & free[i0 + di:i1 + di, j0 + dj:j1 + dj]
        if di and dj:
            a &= free[i0 + di:i1 + di, j0:j1] & free[i0:i1, j0 + dj:j1 + dj]
        rows.append(idx[i0:i1, j0:j1][a])
        cols.append(idx[i0 + di:i1 + di, j0 + dj:j1 + dj][a])
        wts.append(np.full(int(a.sum()), resolution * math.hypot(di, dj)))
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(wts)


def goal_field(clearance: Clearance, goal: np.ndarray, inflation: float, half_size: float,
               resolution: float = 0.1, goal_radius: float = 0.3,
               blocked_slope: float = 2.0) -> GoalField:
    """Cost-to-go to `goal` (robot frame) around obstacles seen by the scan.

    Cells closer than `inflation` to a scan point are blocked (except within `goal_radius` of
    the goal). Dijkstra runs from a virtual source joined to the goal's cell when the goal is
    on the grid, else to every free border cell with the straight-line distance from that
    cell to the goal (unseen space beyond the grid counts as free, as in a rolling costmap).
    Blocked and unreachable cells read the value of the nearest reachable cell plus
    `blocked_slope` x the distance to it, so the field still points out of an inflated zone
    the robot has ended up in; with no reachable cell at all it is the straight line.
    """
    from scipy.ndimage import distance_transform_edt
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    n_side = math.ceil(2 * half_size / resolution)
    o = -resolution * (n_side - 1) / 2
    coords = o + resolution * np.arange(n_side)
    gx, gy = np.meshgrid(coords, coords)
    cells = np.stack([gx, gy], axis=-1)
    to_goal = np.hypot(gx - goal[0], gy - goal[1])
    free = (clearance(cells, horizon=inflation) >= inflation) | (to_goal <= goal_radius)
    rows, cols, wts = _grid_edges(free, resolution)
    n = n_side * n_side
    if abs(goal[0]) <= -o and abs(goal[1]) <= -o:  # goal on the grid
        seeds = np.flatnonzero((to_goal <= max(goal_radius, resolution)).ravel() & free.ravel())
    else:
        border = np.zeros_like(free)
        border[[0, -1], :] = True
        border[:, [0, -1]] = True
        seeds = np.flatnonzero((border & free).ravel())
    src = np.full(len(seeds), n)
    graph = coo_matrix((np.concatenate([wts, to_goal.ravel()[seeds] + 1e-9]),
                        (np.concatenate([rows, src]), np.concatenate([cols, seeds]))),
                       shape=(n + 1, n + 1)).tocsr()
    dist = dijkstra(graph, directed=False, indices=n)[:n].reshape(n_side, n_side)
    reach = np.isfinite(dist)
    if not reach.any():
        values = to_goal
    else:
        out, (ii, jj) = distance_transform_edt(~reach, return_indices=True)
        values = np.where(reach, dist, dist[ii, jj] + blocked_slope * resolution * out)
    return GoalField(values=values, origin=(o, o), resolution=resolution)


# ---- shared compute() plumbing -------------------------------------------------------------


@dataclass
class Scene:
    """One frame in the robot frame: what the planners' critics read."""

    points: np.ndarray  # (M, 2) obstacle points
    clearance: Clearance
    goal: np.ndarray  # (2,)
    path: np.ndarray | None  # (K, 2) window of the path ahead, robot frame, or None
    velocity: tuple[float, float]
    pose: tuple[float, float, float]  # odometry pose, for state that lives across frames


class PlannerBase:
    """Validation, timing and clamping around a planner's `_plan(scene)`.

    Subclasses set `name`, implement `_plan` and may extend `reset`.
    """

    name = "base"
    path_window_length = 3.0  # metres of path ahead kept for the path critics

    def __init__(self, limits: Limits, goal_tolerance: float = 0.25,
                 clearance_horizon: float = 1.5) -> None:
        self.limits = limits
        self.goal_tolerance = float(goal_tolerance)
        self.clearance_horizon = float(clearance_horizon)
        self.last_info: dict[str, Any] = {}

    def reset(self) -> None:
        self.last_info = {}

    def compute(self, frame: SensorFrame) -> tuple[float, float]:
        t0 = time.perf_counter()
        problem = frame_problem(frame)
        if problem is not None:
            self.last_info = {"reason": problem}
            self._on_stop()
            return 0.0, 0.0
        goal = np.array(goal_in_robot_frame(frame.pose, frame.goal))
        if float(np.hypot(*goal)) <= self.goal_tolerance:
            self.last_info = {"reason": "goal reached", "compute_s": time.perf_counter() - t0}
            self._on_stop()
            return 0.0, 0.0
        scene = self._scene(frame, goal)
        v, w = self._plan(scene)
        v, w = self.limits.clamp(v, w)
        self.last_info["compute_s"] = time.perf_counter() - t0
        return v, w

    def _scene(self, frame: SensorFrame, goal: np.ndarray) -> Scene:
        points = scan_points(frame)
        path = None
        if frame.path is not None:
            world_path = np.asarray(frame.path, dtype=np.float64)
            window = path_window(world_path, np.asarray(frame.pose[:2]), self.path_window_length)
            path = to_robot_frame(frame.pose, window)
        return Scene(points=points, clearance=Clearance(points, self.clearance_horizon),
                     goal=goal, path=path,
                     velocity=(float(frame.velocity[0]), float(frame.velocity[1])),
                     pose=(float(frame.pose[0]), float(frame.pose[1]), float(frame.pose[2])))

    def _on_stop(self) -> None:
        """Hook: the planner returned (0, 0) without planning (unusable frame, goal reached)."""

    def _plan(self, scene: Scene) -> tuple[float, float]:
        raise NotImplementedError
