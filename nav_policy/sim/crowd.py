"""Pedestrians walking between goals with the social force model (Helbing & Molnar 1995).

Each pedestrian a follows its desired direction e_a (towards its current goal along the
shortest route through the static map) at its preferred speed v0_a, and is pushed by the
others, the walls and (when the crowd reacts to it) the robot:

    dv_a/dt = (v0_a e_a - v_a) / tau                                  driving term
            + sum_b w(e_a, -f_ab) f_ab,  f_ab = -grad_{r_ab} V0 exp(-b_ab / sigma)
            + f_aB,  f_aB = (U0 / R) exp(-d_aB / R) n_aB                 walls
    2 b_ab = sqrt((|r_ab| + |r_ab - v_b dt_s e_b|)^2 - (v_b dt_s)^2)     the elliptical
                                                                      potential's semi-minor axis
    w(e, f) = 1 if e . f >= |f| cos(phi), else c                      field of view

with r_ab = r_a - r_b, d_aB the distance to the nearest static obstacle and n_aB the unit vector
away from it; speeds are capped at v_max = 1.3 v0. Parameters are the paper's (tau 0.5 s,
V0 2.1 m^2/s^2, sigma 0.3 m, dt_s 2 s, U0 10 m^2/s^2, R 0.2 m, phi 100 deg, c 0.5). The robot
enters as one more b with its own velocity. Everything is vectorised over pedestrians.

A pedestrian whose current goal is within `goal_reached` switches to its next goal (cyclic).
Routes: per goal, a geodesic distance field on a coarse grid of the static map (inflated by
the pedestrian radius) gives each cell a successor towards the goal; e_a points at the cell a
few successors ahead (LOOKAHEAD), so pedestrians walk round walls and through doors.

A `Crowd` is plain data (a world's pedestrians, their goals and parameters). `LiveCrowd`
steps it in time; `Crowd.nominal_trajectories` walks it without a robot (what a world file
and an SDF export of the world replay). Every backend steps the same LiveCrowd each control
tick: `positions = live.advance_to(t, robot_xy, robot_velocity)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nav_policy.sim.grid import GridMap, geodesic_field

ROUTE_RESOLUTION = 0.1  # m, routing grid
LOOKAHEAD = 6  # cells ahead on the route that e_a points at


@dataclass(frozen=True)
class SocialForceParams:
    tau: float = 0.5  # s, relaxation time
    v0_pair: float = 2.1  # V0, m^2/s^2
    sigma: float = 0.3  # m
    step_time: float = 2.0  # dt_s, s: how far ahead the other's step is anticipated
    u0_wall: float = 10.0  # U0, m^2/s^2
    r_wall: float = 0.2  # R, m
    phi_deg: float = 100.0  # half field of view
    c_behind: float = 0.5  # weight of what is behind
    v_max_factor: float = 1.3
    goal_reached: float = 0.5  # m


def pair_forces(pos: np.ndarray, vel: np.ndarray, other_pos: np.ndarray,
                other_vel: np.ndarray, p: SocialForceParams) -> np.ndarray:
    """f_ab (n, m, 2): the repulsion on each a from each b, -grad_{r_ab} V0 exp(-b / sigma)."""
    r = pos[:, None, :] - other_pos[None, :, :]
    s = other_vel[None, :, :] * p.step_time  # v_b dt_s e_b
    q = r - s
    nr = np.linalg.norm(r, axis=-1)
    nq = np.linalg.norm(q, axis=-1)
    ns = np.linalg.norm(s, axis=-1)
    b = 0.5 * np.sqrt(np.maximum((nr + nq) ** 2 - ns ** 2, 1e-12))
    safe_r, safe_q = np.maximum(nr, 1e-9)[..., None], np.maximum(nq, 1e-9)[..., None]
    grad_b = ((nr + nq) / (4.0 * b))[..., None] * (r / safe_r + q / safe_q)
    return (p.v0_pair / p.sigma) * np.exp(-b / p.sigma)[..., None] * grad_b


def view_weight(e: np.ndarray, f: np.ndarray, p: SocialForceParams) -> np.ndarray:
    """w(e_a, -f_ab): 1 when b (in the direction -f_ab) is within phi of e_a, else c."""
    toward = -f
    dot = np.einsum("nk,nmk->nm", e, toward)
    return np.where(dot >= np.linalg.norm(toward, axis=-1) * math.cos(math.radians(p.phi_deg)),
                    1.0, p.c_behind)


def wall_forces(clearance: np.ndarray, normal: np.ndarray, p: SocialForceParams) -> np.ndarray:
    """f_aB (n, 2) = (U0 / R) exp(-d / R) n, d the distance to the nearest static obstacle."""
    return (p.u0_wall / p.r_wall) * np.exp(-clearance / p.r_wall)[:, None] * normal


def driving_forces(e: np.ndarray, vel: np.ndarray, v0: np.ndarray,
                   p: SocialForceParams) -> np.ndarray:
    """(v0 e - v) / tau (n, 2)."""
    return (v0[:, None] * e - vel) / p.tau


@dataclass
class Routes:
    """Per goal a successor map on the routing grid; plus the map's clearance and its gradient."""

    grid: GridMap
    succ: np.ndarray  # (G, H, W) flat index of the next cell towards goal g (self at the goal)
    normal: np.ndarray  # (H, W, 2) unit vector away from the nearest static obstacle

    @classmethod
    def build(cls, world: Any, goals: np.ndarray, radius: float) -> Routes:
        grid = GridMap.from_world(world, ROUTE_RESOLUTION)
        h, w = grid.shape
        gy, gx = np.gradient(grid.clearance, grid.resolution)
        norm = np.maximum(np.hypot(gx, gy), 1e-9)
        normal = np.stack([gx / norm, gy / norm], axis=-1)
        succ = np.empty((len(goals), h, w), dtype=np.int32)
        idx = np.arange(h * w, dtype=np.int32).reshape(h, w)
        for g, goal in enumerate(goals):
            fld = geodesic_field(grid, (float(goal[0]), float(goal[1])), radius)
            pad = np.pad(fld, 1, constant_values=np.inf)
            pidx = np.pad(idx, 1, constant_values=-1)
            best, arg = fld.copy(), idx.copy()
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    nb = pad[1 + di:1 + di + h, 1 + dj:1 + dj + w]
                    better = nb < best
                    best = np.where(better, nb, best)
                    arg = np.where(better, pidx[1 + di:1 + di + h, 1 + dj:1 + dj + w], arg)
            succ[g] = arg
        return cls(grid, succ, normal)

    def cells(self, pos: np.ndarray) -> np.ndarray:
        g = self.grid
        j = np.clip(np.rint((pos[:, 0] - g.origin[0]) / g.resolution), 0, g.shape[1] - 1)
        i = np.clip(np.rint((pos[:, 1] - g.origin[1]) / g.resolution), 0, g.shape[0] - 1)
        return (i * g.shape[1] + j).astype(np.int64)

    def directions(self, pos: np.ndarray, goal_idx: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """e_a (n, 2): towards the cell LOOKAHEAD steps along the route, or the goal itself."""
        cell = self.cells(pos)
        flat = self.succ.reshape(len(self.succ), -1)
        for _ in range(LOOKAHEAD):
            cell = flat[goal_idx, cell]
        w = self.grid.shape[1]
        target = np.stack([self.grid.origin[0] + (cell % w) * self.grid.resolution,
                           self.grid.origin[1] + (cell // w) * self.grid.resolution], axis=1)
        to_goal = goals[goal_idx] - pos
        near = np.linalg.norm(to_goal, axis=1) < LOOKAHEAD * self.grid.resolution
        target = np.where(near[:, None], goals[goal_idx], target)
        d = target - pos
        n = np.linalg.norm(d, axis=1, keepdims=True)
        fallback = to_goal / np.maximum(np.linalg.norm(to_goal, axis=1, keepdims=True), 1e-9)
        return np.where(n > 1e-6, d / np.maximum(n, 1e-9), fallback)

    def wall(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distance to the nearest static obstacle, unit vector away from it) at each position."""
        cell = self.cells(pos)
        return self.grid.clearance.ravel()[cell], self.normal.reshape(-1, 2)[cell]


@dataclass(frozen=True)
class Crowd:
    """A world's pedestrians: start positions, radii, preferred speeds, goal cycles, and whether
    they react to the robot (a per-episode parameter)."""

    start: tuple[tuple[float, float], ...]
    radius: tuple[float, ...]
    speed: tuple[float, ...]  # preferred speed v0, m/s
    goals: tuple[tuple[float, float], ...]  # points of interest
    plan: tuple[tuple[int, ...], ...]  # per pedestrian, the goal indices it cycles through
    react: bool
    params: SocialForceParams = SocialForceParams()
    dt: float = 0.1
    routes: Routes | None = field(default=None, compare=False, repr=False)

    def live(self, world: Any) -> LiveCrowd:
        return LiveCrowd(self, self.routes or Routes.build(world, np.asarray(self.goals),
                                                           max(self.radius)))

    def nominal_trajectories(self, world: Any, horizon: float) -> np.ndarray:
        """(steps + 1, n, 2) positions every dt for `horizon` seconds, no robot."""
        live = self.live(world)
        out = [live.pos.copy()]
        for _ in range(int(round(horizon / self.dt))):
            live.step(None, None)
            out.append(live.pos.copy())
        return np.stack(out)


class LiveCrowd:
    """A crowd being stepped: state (positions, velocities, current goals) and time."""

    def __init__(self, crowd: Crowd, routes: Routes) -> None:
        self.crowd = crowd
        self.routes = routes
        self.p = crowd.params
        self.pos = np.asarray(crowd.start, dtype=np.float64).reshape(-1, 2).copy()
        self.vel = np.zeros_like(self.pos)
        self.v0 = np.asarray(crowd.speed, dtype=np.float64)
        self.goals = np.asarray(crowd.goals, dtype=np.float64).reshape(-1, 2)
        width = max(len(p) for p in crowd.plan)
        self.plan = np.array([list(p) + [p[0]] * (width - len(p)) for p in crowd.plan],
                             dtype=np.int64)
        self.plan_len = np.array([len(p) for p in crowd.plan], dtype=np.int64)
        self.rows = np.arange(len(self.pos))
        self.leg = np.zeros(len(self.pos), dtype=np.int64)
        self.time = 0.0
        self.history: list[np.ndarray] = [self.pos.copy()]

    def goal_index(self) -> np.ndarray:
        return self.plan[self.rows, self.leg % self.plan_len]

    def accelerations(self, robot_xy: np.ndarray | None,
                      robot_vel: np.ndarray | None) -> np.ndarray:
        p, pos, vel = self.p, self.pos, self.vel
        gi = self.goal_index()
        e = self.routes.directions(pos, gi, self.goals)
        acc = driving_forces(e, vel, self.v0, p)
        f = pair_forces(pos, vel, pos, vel, p)
        np.einsum("nnk->nk", f)[:] = 0.0  # no force of a pedestrian on itself
        acc += (view_weight(e, f, p)[..., None] * f).sum(axis=1)
        if self.crowd.react and robot_xy is not None:
            rv = np.zeros(2) if robot_vel is None else np.asarray(robot_vel, dtype=np.float64)
            fr = pair_forces(pos, vel, np.asarray(robot_xy, dtype=np.float64)[None], rv[None], p)
            acc += (view_weight(e, fr, p)[..., None] * fr).sum(axis=1)
        d, n = self.routes.wall(pos)
        acc += wall_forces(d, n, p)
        return acc

    def step(self, robot_xy: np.ndarray | None, robot_vel: np.ndarray | None) -> None:
        """One dt: semi-implicit Euler, speed capped at v_max = 1.3 v0, goals switched."""
        dt = self.crowd.dt
        vel = self.vel + dt * self.accelerations(robot_xy, robot_vel)
        cap = self.p.v_max_factor * self.v0
        speed = np.linalg.norm(vel, axis=1)
        vel *= np.minimum(1.0, cap / np.maximum(speed, 1e-9))[:, None]
        self.vel = vel
        self.pos = self.pos + dt * vel
        reached = np.linalg.norm(self.goals[self.goal_index()] - self.pos, axis=1) \
            < self.p.goal_reached
        self.leg += reached
        self.time += dt
        self.history.append(self.pos.copy())

    def advance_to(self, t: float, robot_xy: Any = None, robot_vel: Any = None) -> np.ndarray:
        """Step until the crowd's time reaches t (control ticks are multiples of dt)."""
        while self.time + 1e-9 < t:
            self.step(None if robot_xy is None else np.asarray(robot_xy, dtype=np.float64),
                      robot_vel)
        return self.pos

    def executed(self) -> list[tuple[tuple[float, float, float], ...]]:
        """Per pedestrian, the (t, x, y) keys it actually walked (for metrics and plots)."""
        h = np.stack(self.history)
        ts = self.crowd.dt * np.arange(len(h))
        return [tuple((float(t), float(x), float(y)) for t, (x, y) in zip(ts, h[:, k]))
                for k in range(h.shape[1])]
