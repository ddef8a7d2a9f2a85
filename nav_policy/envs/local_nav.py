"""LocalNav-v0: drive a differential-drive robot to a goal through clutter from lidar + odometry."""

from __future__ import annotations

from typing import Any

import numpy as np

from nav_policy.codecs import decode_action
from nav_policy.envs.base import BaseNavEnv


class LocalNavEnv(BaseNavEnv):
    """Local navigation to a goal in a procedurally generated world (MuJoCo or PyBullet).

    ## Description
    A TurtleBot3-class differential-drive robot (radius 0.2 m, sim/robots/diffbot.urdf) starts
    at a random pose in a walled arena with static (and, in the dynamic tier, moving)
    obstacles, and must reach a goal 3-9 m away without touching anything. It senses a 360°
    2D lidar and odometry; the goal is given in the odometry frame, as on the robot.

    ## Action space
    `Box(-1, 1, (2,), float32)`. The action codec (nav_policy.codecs.decode_action) maps
    a[0] to forward speed v in [0, v_max] and a[1] to yaw rate w in [-w_max, w_max]
    (limits from config/robot.yaml: 0.5 m/s, 2.0 rad/s). The simulator applies the robot's
    acceleration limits (2.5 m/s², 3.2 rad/s²).

    ## Observation space
    `Box(low, high, (sectors + 7,), float32)`, built by nav_policy.codecs.encode_observation:

    | index        | meaning                                   | unit / range           |
    |--------------|-------------------------------------------|------------------------|
    | 0..S-1       | lidar min-pooled into S sectors (S=60)    | m, [0.12, 3.5]         |
    | S            | goal distance                             | m, [0, 10]             |
    | S+1, S+2     | cos, sin of goal heading (robot frame)    | [-1, 1]                |
    | S+3, S+4     | odometry v, w                             | m/s, rad/s             |
    | S+5, S+6     | previous action                           | [-1, 1]                |

    That is codec v1, the default on a robot whose lidar is 360° at its centre (our diffbot).
    On other robot profiles (`robot=`) or with `codec="2"` the observation is codec v2: S
    sector distances from the robot centre (sectors by angle, the lidar's points moved from its
    mount pose), S seen-mask values (1 where the lidar covers the sector; unseen sectors read
    range_min), `history` x S past scans re-expressed in the current robot frame, then the same
    7 values; see nav_policy/codecs/observation.py.

    ## Rewards (each term reported in `info["reward_terms"]`)
    - progress: `progress_weight` x decrease of the distance to the goal this step (geodesic
      free-space distance when `geodesic_progress`, else Euclidean)
    - goal: `goal_reward` on reaching the goal
    - collision: `collision_penalty` on touching an obstacle
    - proximity: `proximity_penalty` x (1 - clearance / proximity_margin) when the closest
      lidar return is within `proximity_margin` of the robot's body
    - step: `step_penalty` every step
    - smoothness: `smoothness_penalty` x squared change of the action

    ## Starting state
    The world's start pose (random position and heading in generated worlds), at rest.

    ## Episode end
    Terminated when the robot centre is within `goal_tolerance` (0.25 m) of the goal or when it
    collides. Truncated only by the time limit (`max_episode_steps`, 500 steps = 50 s at 10 Hz).

    ## Arguments
    `gymnasium.make("nav_policy/LocalNav-v0", tier="medium", motion_mode="kinematic", ...)`:
    tier (easy | medium | hard | dynamic | crowd, or a list with `tier_weights` for a mixture), world
    (a World or YAML path, fixed), motion_mode (kinematic | physics), backend (mujoco |
    pybullet; default mujoco in kinematic mode, pybullet in physics mode, which MuJoCo does not
    have here; both give the same scans, collisions and episodes, see
    test/test_sim_backends.py; the depth camera is PyBullet's), control_hz (10),
    physics_hz (240), sectors (60), goal_tolerance, reward weights above, domain randomisation
    (lidar_noise, lidar_dropout, actuation_noise, odom_drift; with randomize=True each episode
    draws its levels uniformly in [0, given]; lidar noise and dropout default to the robot
    profile's), robot (a RobotSpec, a profile name from config/robots/ or a YAML path; the
    simulated lidar, footprint and limits follow it), codec ("1" | "2"; default "1" where the
    lidar fits it), history (v2: past scans stacked), min_fov_deg (v2: narrowest field of view
    the model will accept; default the profile's), obs_range_max (v2: 3.5 m),
    world_pool (0: a
    fresh world every episode; N: episodes draw from N pre-generated worlds per tier, cached, see
    nav_policy.sim.pool), world_pool_dir (where pooled worlds are saved and loaded) and
    render_mode ("rgb_array").
    `reset(options=...)` accepts `tier`, `world_seed` (reproducible world), `world` and `start`.

    ## Version history
    - v0: initial version (codec version 1); robot profiles and codec version 2 added without
      changing the default (diffbot, codec 1) observations.
    """

    def __init__(
        self,
        progress_weight: float = 10.0,
        goal_reward: float = 10.0,
        collision_penalty: float = -10.0,
        proximity_penalty: float = -0.1,
        proximity_margin: float = 0.3,
        step_penalty: float = -0.01,
        smoothness_penalty: float = -0.05,
        geodesic_progress: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.weights = {"progress": progress_weight, "goal": goal_reward,
                        "collision": collision_penalty, "proximity": proximity_penalty,
                        "step": step_penalty, "smoothness": smoothness_penalty}
        self.proximity_margin = proximity_margin
        self.geodesic_progress = geodesic_progress
        self._dist = 0.0

    def _progress_distance(self) -> float:
        return self.geodesic_to_goal() if self.geodesic_progress else self.distance_to_goal()

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        self._reset_sim(seed, options)
        self._dist = self._progress_distance()
        return self._observation(), self._info({}, False)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.clip(np.asarray(action, dtype=np.float32).reshape(2), -1.0, 1.0)
        v, w = decode_action(a, self.action_spec)
        collided = self.sim.step(float(v), float(w))
        self._ranges = self.sim.scan()
        dist = self._progress_distance()
        reached = (not collided) and self.distance_to_goal() <= self.goal_tolerance
        clearance = self.min_clearance()
        W = self.weights
        terms = {
            "progress": W["progress"] * (self._dist - dist),
            "goal": W["goal"] if reached else 0.0,
            "collision": W["collision"] if collided else 0.0,
            "proximity": W["proximity"] * max(0.0, 1.0 - max(clearance, 0.0) / self.proximity_margin),
            "step": W["step"],
            "smoothness": W["smoothness"] * float(np.sum((a - self.prev_action) ** 2)),
        }
        self._dist = dist
        self.prev_action = a
        self.trajectory.append(self._traj_point())
        obs = self._observation()
        return obs, float(sum(terms.values())), bool(reached or collided), False, \
            self._info(terms, reached, clearance)

    def _info(self, terms: dict[str, float], reached: bool,
              clearance: float | None = None) -> dict[str, Any]:
        assert self.world is not None
        return {"reward_terms": terms, "is_success": bool(reached),
                "collision": bool(self.sim.collided), "distance_to_goal": self.distance_to_goal(),
                "clearance": self.min_clearance() if clearance is None else clearance,
                "time": self.sim.t, "world": self.world.name, "tier": self.world.tier}
