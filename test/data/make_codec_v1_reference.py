"""Reference values of the shipped v1 models (models/local_rl.onnx, local_ebm.onnx) on fixed
inputs: two env rollouts (medium and dynamic tier, fixed seeds) driven by the rl model, with
every step's SensorFrame, observation and both models' (v, w).

test/data/codec_v1_reference.npz was written by this script with the code of commit 5903f5f
(before codec v2):  PYTHONPATH=<checkout at 5903f5f> python test/data/make_codec_v1_reference.py
test/test_codec_v1_compat.py runs rollout() with the current code and compares.
"""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np

KEYS = ("ranges", "pose", "velocity", "goal", "prev_rl", "prev_ebm", "obs", "rl", "ebm", "stamp")


def rollout() -> dict[str, np.ndarray]:
    import nav_policy  # noqa: F401  registers the env ids
    from nav_policy.codecs import encode_action
    from nav_policy.planners import make_planner

    rl, ebm = make_planner("rl"), make_planner("ebm")
    rec: dict[str, list] = {k: [] for k in KEYS}
    for tier, seed in (("medium", 11), ("dynamic", 12)):
        env = gym.make("nav_policy/LocalNav-v0", tier=tier, backend="pybullet")  # the only backend at 5903f5f
        env.reset(seed=seed, options={"world_seed": 5000 + seed})
        rl.reset()
        ebm.reset()
        for _ in range(30):
            f = env.unwrapped.sensors()
            rec["prev_rl"].append(rl.prev_action.copy())
            rec["prev_ebm"].append(ebm.prev_action.copy())
            v, w = rl.compute(f)
            ve, we = ebm.compute(f)
            rec["ranges"].append(np.asarray(f.ranges, np.float32))
            rec["pose"].append(f.pose)
            rec["velocity"].append(f.velocity)
            rec["goal"].append(f.goal)
            rec["stamp"].append(f.stamp)
            rec["obs"].append(env.unwrapped._observation())
            rec["rl"].append((v, w))
            rec["ebm"].append((ve, we))
            _, _, term, trunc, _ = env.step(encode_action(v, w, env.unwrapped.action_spec))
            if term or trunc:
                break
        env.close()
    return {k: np.asarray(v) for k, v in rec.items()}


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "test/data/codec_v1_reference.npz"
    np.savez_compressed(out, **rollout())
