"""Running a trained deception policy (ONNX or torch) on a Problem, with the budget guard.

Each decision: build the ego graph (O(ego size)), run the GNN, mask the logits with the
budget guard (candidate j allowed iff w(cur, j) + optc(j, g_r) <= remaining budget), take the
best allowed candidate. The guard is what guarantees "goal reached within budget"; the
distances it uses are the per-goal Dijkstra row optc(·, g_r) computed once per problem.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nav_policy.deception.ego import NODE_FEATURES, EgoGraph
from nav_policy.deception.episode import Episode
from nav_policy.deception.problem import Mode, Problem
from nav_policy.errors import ModelError


class LogitPolicy(Protocol):
    hops: int
    beta_per_edge: float
    mode: str

    def logits(self, ego: EgoGraph) -> np.ndarray: ...


class OnnxPolicy:
    """ORT session over an exported dpp model; refuses files that are not dpp models."""

    def __init__(self, path: str | Path) -> None:
        import onnx
        import onnxruntime as ort

        from nav_policy.runtime.metadata import ModelMetadata, check_compatible

        p = Path(path)
        if not p.is_file():
            what = "is a folder, not an .onnx file" if p.is_dir() else "not found"
            raise ModelError(f"model file {p} {what}")
        try:
            props = {e.key: e.value for e in onnx.load(str(p), load_external_data=False)
                     .metadata_props}
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1  # ego graphs are small: one thread is fastest
            opts.inter_op_num_threads = 1
            self.session = ort.InferenceSession(str(p), sess_options=opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"cannot load model {p}: {str(exc).splitlines()[0]}") from exc
        meta = ModelMetadata.from_props(props, str(p))
        check_compatible(meta, str(p), expect_kind="dpp")
        spec = _ego_spec(props, p)
        self.hops = int(spec["hops"])
        self.beta_per_edge = float(spec["beta_per_edge"])
        self.mode = meta.extra.get("mode", "ambiguity")
        self.path = p

    def logits(self, ego: EgoGraph) -> np.ndarray:
        out = self.session.run(["logits"], {"x": ego.x, "edge_index": ego.edge_index,
                                            "cand_weight": ego.cand_weight})
        return np.asarray(out[0])


def _ego_spec(props: dict[str, str], p: Path) -> dict[str, Any]:
    try:
        spec = json.loads(props["obs_spec"])
        if int(spec["node_features"]) != NODE_FEATURES:
            raise ModelError(f"{p}: model expects {spec['node_features']} node features, this "
                             f"nav_policy computes {NODE_FEATURES}")
        return spec
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelError(f"{p}: malformed dpp obs_spec: {exc}") from exc


class TorchPolicy:
    """A DeceptionGNN in memory (training, evaluation, parity tests)."""

    def __init__(self, net: Any, hops: int, beta_per_edge: float = 1.0,
                 mode: str = "ambiguity") -> None:
        self.net = net.eval()
        self.hops, self.beta_per_edge, self.mode = hops, beta_per_edge, mode

    def logits(self, ego: EgoGraph) -> np.ndarray:
        import torch

        from nav_policy.deception.gnn import SingleGraphPolicy

        with torch.no_grad():
            out, _ = SingleGraphPolicy(self.net)(torch.from_numpy(ego.x),
                                                 torch.from_numpy(ego.edge_index),
                                                 torch.from_numpy(ego.cand_weight))
        return out.numpy()


class RulePolicy:
    """Hand-written reference rule on the same features, run under the same guard: move to an
    unvisited deceptive (ambiguity) or exaggerated (exaggeration) neighbour, the one nearest
    the goal; if there is none, the neighbour nearest the goal. Used to judge what the
    learned policy adds over a simple rule."""

    def __init__(self, mode: str = "ambiguity", hops: int = 3, beta_per_edge: float = 1.0
                 ) -> None:
        self.mode, self.hops, self.beta_per_edge = mode, hops, beta_per_edge

    def logits(self, ego: EgoGraph) -> np.ndarray:
        x = ego.x[1:1 + ego.num_actions]
        flag = x[:, 6] if self.mode == "ambiguity" else x[:, 7]
        wanted = (flag > 0.5) & (x[:, 1] < 0.5)
        return np.where(wanted, 10.0, 0.0) - x[:, 3]


@dataclass
class Rollout:
    path: list[int]
    guard_interventions: int = 0
    masked_choices: int = 0
    truncated: bool = False
    decisions: int = 0
    decision_seconds: list[float] = field(default_factory=list)


def choose(policy: LogitPolicy, ego: EgoGraph) -> tuple[int, bool]:
    """Best guard-allowed candidate; (index, whether the guard overrode the raw argmax)."""
    logits = policy.logits(ego)
    masked = np.where(ego.cand_mask, logits, -np.inf)
    return int(np.argmax(masked)), bool(np.argmax(logits) != np.argmax(masked))


def run_policy(problem: Problem, policy: LogitPolicy, mode: Mode | None = None,
               on_step: Callable[[Episode], None] | None = None) -> Rollout:
    """Greedy walk of `policy` from start to goal within the budget.

    `on_step(episode)` runs before every decision (used to move decoys mid-route). A walk that
    hits the step cap is completed along a shortest path (still within budget).
    """
    ep = Episode(problem, mode or policy.mode, hops=policy.hops,  # type: ignore[arg-type]
                 beta_per_edge=policy.beta_per_edge)
    out = Rollout(path=ep.path)
    while not ep.done:
        if on_step is not None:
            on_step(ep)
        t0 = time.perf_counter()
        action, overridden = choose(policy, ep.observe())
        out.decision_seconds.append(time.perf_counter() - t0)
        out.masked_choices += int(overridden)
        ep.step(action)
    if ep.current != problem.goal:
        out.truncated = True
        ep.finish_shortest()
    out.path = ep.path
    out.decisions = len(out.decision_seconds)
    out.guard_interventions = ep.guard_interventions
    return out


def default_model(mode: str) -> Path:
    from nav_policy.paths import model_path

    return model_path(f"dpp_{mode}.onnx")


__all__ = ["LogitPolicy", "OnnxPolicy", "Rollout", "RulePolicy", "TorchPolicy", "choose",
           "default_model", "run_policy"]
