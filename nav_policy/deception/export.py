"""Export a dpp run (or a DeceptionGNN) to ONNX with dynamic node, edge and candidate axes.

Graph inputs (one ego graph in the EgoGraph layout: agent = node 0, candidates = 1..A):
    x float32 (nodes, 15), edge_index int64 (2, edges), cand_weight float32 (cands,)
Outputs: logits float32 (cands,), value float32 (1,). The caller masks the logits with the
budget guard and takes the best allowed candidate (nav_policy/deception/policy.py).

metadata_props (docs/DESIGN.md "Model files"): nav_policy.kind = dpp, obs_spec (JSON: ego-graph
layout, feature names, hops, beta_per_edge), action_spec (JSON: neighbour index + guard),
codec_version, trained_steps, source_commit, plus mode/hidden/layers/seed.

Parity: ORT vs torch logits on ego graphs of held-out tasks of varied sizes (8x8 grid to
5,000-node geometric graphs); max abs difference above 1e-4 fails the export.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nav_policy.deception.ego import (
    FEATURE_NAMES,
    NODE_FEATURES,
    EgoGraph,
    hops_for_layers,
)
from nav_policy.deception.episode import Episode
from nav_policy.deception.gnn import DeceptionGNN, SingleGraphPolicy
from nav_policy.deception.tasks import (
    GraphFamily,
    TaskConfig,
    make_graph,
    sample_problem,
)
from nav_policy.errors import ModelError

PARITY_TOL = 1e-4
INPUTS = ("x", "edge_index", "cand_weight")


def obs_spec(hops: int, beta_per_edge: float) -> dict[str, Any]:
    return {"kind": "ego_graph", "hops": hops, "beta_per_edge": beta_per_edge,
            "node_features": NODE_FEATURES, "feature_names": list(FEATURE_NAMES),
            "layout": "node 0 = agent, nodes 1..A = neighbours in action order",
            "inputs": {"x": "float32 [nodes, 15]", "edge_index": "int64 [2, edges]",
                       "cand_weight": "float32 [cands] edge weight / median edge weight"}}


def action_spec() -> dict[str, Any]:
    return {"kind": "neighbour_index", "outputs": {"logits": "float32 [cands]",
                                                   "value": "float32 [1]"},
            "guard": "mask candidates j with w(cur,j) + optc(j,g_r) > remaining budget"}


def export_model(net: DeceptionGNN, out: str | Path, *, mode: str, beta_per_edge: float,
                 trained_steps: int, source_commit: str, extra: dict[str, str] | None = None,
                 parity_graphs: int = 12, seed: int = 0) -> dict[str, Any]:
    """Write `out` (atomically, after a passing parity check); returns a small report."""
    import onnx

    from nav_policy.codecs import CODEC_VERSION

    net = net.eval()
    hops = hops_for_layers(net.layers)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.onnx")
    _torch_export(net, tmp)
    model = onnx.load(str(tmp))
    props = {"nav_policy.kind": "dpp", "obs_spec": json.dumps(obs_spec(hops, beta_per_edge)),
             "action_spec": json.dumps(action_spec()), "codec_version": CODEC_VERSION,
             "trained_steps": str(int(trained_steps)), "source_commit": source_commit,
             "mode": mode, "hidden": str(net.hidden), "layers": str(net.layers),
             **(extra or {})}
    for k, v in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp))
    egos = parity_egos(hops, beta_per_edge, parity_graphs, seed)
    diff = parity(net, tmp, egos)
    if not diff <= PARITY_TOL:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"parity check failed: max abs diff {diff:.2e} > {PARITY_TOL:.0e}")
    tmp.replace(out)
    sizes = [len(e.nodes) for e in egos]
    return {"out": str(out), "parity_max_abs_diff": diff, "parity_graphs": len(egos),
            "parity_samples": len(egos),
            "ego_nodes_min": int(min(sizes)), "ego_nodes_max": int(max(sizes))}


def _torch_export(net: DeceptionGNN, path: Path) -> None:
    wrapper = SingleGraphPolicy(net).eval()
    x = torch.zeros(4, NODE_FEATURES)
    edge_index = torch.tensor([[0, 1, 0, 2, 1, 3], [1, 0, 2, 0, 3, 1]], dtype=torch.int64)
    cand = torch.ones(2)
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated but exact here
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (x, edge_index, cand), str(path), input_names=list(INPUTS),
                          output_names=["logits", "value"],
                          dynamic_axes={"x": {0: "nodes"}, "edge_index": {1: "edges"},
                                        "cand_weight": {0: "cands"}, "logits": {0: "cands"}},
                          opset_version=17, dynamo=False)


def parity_egos(hops: int, beta_per_edge: float, n_graphs: int, seed: int) -> list[EgoGraph]:
    """Ego graphs along random walks on tasks of varied graph kind and size."""
    rng = np.random.default_rng(seed)
    fams = [GraphFamily("grid", (8,)), GraphFamily("grid", (32,)), GraphFamily("rgg", (100,)),
            GraphFamily("rgg", (5000,))]
    egos: list[EgoGraph] = []
    for k in range(n_graphs):
        problem = sample_problem(make_graph(fams[k % len(fams)], rng), TaskConfig(), rng, 1.5)
        if problem is None:
            continue
        ep = Episode(problem, hops=hops, beta_per_edge=beta_per_edge)
        for _ in range(5):
            if ep.done:
                break
            egos.append(ep.observe())
            ep.step(int(rng.integers(ep.observe().num_actions)))
    return egos


def parity(net: DeceptionGNN, onnx_path: Path, egos: list[EgoGraph]) -> float:
    """Max abs difference of logits and values, ORT vs torch, over `egos`."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    wrapper = SingleGraphPolicy(net).eval()
    worst = 0.0
    for e in egos:
        got = sess.run(["logits", "value"], {"x": e.x, "edge_index": e.edge_index,
                                             "cand_weight": e.cand_weight})
        with torch.no_grad():
            ref = wrapper(torch.from_numpy(e.x), torch.from_numpy(e.edge_index),
                          torch.from_numpy(e.cand_weight))
        for g, r in zip(got, ref):
            worst = max(worst, float(np.max(np.abs(g - r.numpy()))))
    return worst


def load_checkpoint(path: Path) -> tuple[DeceptionGNN, dict[str, Any]]:
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        cfg = ck["config"]
        net = DeceptionGNN(hidden=int(cfg["hidden"]), layers=int(cfg["layers"]))
        net.load_state_dict(ck["model"])
    except (OSError, KeyError, RuntimeError) as exc:
        raise ModelError(f"cannot load checkpoint {path}: {exc}") from exc
    return net.eval(), ck


def export_run(run_dir: str | Path, out: str | Path, checkpoint: str = "best",
               parity_graphs: int = 12) -> dict[str, Any]:
    """Export checkpoints/best.pt (or last.pt) of a dpp run directory."""
    from nav_policy.training.rundir import read_meta

    run = Path(run_dir)
    meta = read_meta(run)
    ck_path = run / "checkpoints" / f"{checkpoint}.pt"
    if not ck_path.exists() and (run / "checkpoints" / "last.pt").exists():
        import sys

        print(f"note: {run} has no {checkpoint} checkpoint; exporting the last one (last.pt)",
              file=sys.stderr)
        ck_path = run / "checkpoints" / "last.pt"
    if not ck_path.exists():
        raise ModelError(f"{run} has no checkpoint to export")
    net, ck = load_checkpoint(ck_path)
    cfg = ck["config"]
    report = export_model(net, out, mode=cfg["mode"], beta_per_edge=float(cfg["beta_per_edge"]),
                          trained_steps=int(ck["step"]), source_commit=str(meta.get("git_commit")),
                          extra={"seed": str(cfg["seed"]), "checkpoint": ck_path.name},
                          parity_graphs=parity_graphs)
    report["trained_steps"] = int(ck["step"])
    return report


__all__ = ["PARITY_TOL", "action_spec", "export_model", "export_run", "load_checkpoint",
           "obs_spec", "parity", "parity_egos"]
