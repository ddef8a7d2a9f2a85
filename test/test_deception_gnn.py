"""DeceptionGNN: batching equals single-graph inference; ONNX export parity, dynamic sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nav_policy.deception.ego import NODE_FEATURES
from nav_policy.deception.export import export_model, parity, parity_egos
from nav_policy.deception.gnn import DeceptionGNN, SingleGraphPolicy, collate
from nav_policy.deception.policy import OnnxPolicy, TorchPolicy
from nav_policy.errors import ModelError


@pytest.fixture(scope="module")
def net() -> DeceptionGNN:
    torch.manual_seed(0)
    return DeceptionGNN(hidden=32, layers=2).eval()


@pytest.fixture(scope="module")
def onnx_file(net: DeceptionGNN, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dpp") / "dpp_test.onnx"
    report = export_model(net, out, mode="ambiguity", beta_per_edge=1.0, trained_steps=0,
                          source_commit="test", parity_graphs=3)
    assert report["parity_max_abs_diff"] <= 1e-4
    return out


def test_batch_matches_single(net: DeceptionGNN) -> None:
    egos = parity_egos(3, 1.0, 3, seed=1)[:6]
    batch = collate(egos)
    with torch.no_grad():
        logits, values = net.forward_batch(batch)
        for i, e in enumerate(egos):
            ref, v = SingleGraphPolicy(net)(torch.from_numpy(e.x), torch.from_numpy(e.edge_index),
                                            torch.from_numpy(e.cand_weight))
            torch.testing.assert_close(logits[i, :e.num_actions], ref, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(values[i:i + 1], v, atol=1e-5, rtol=1e-5)


def test_onnx_parity_dynamic_sizes(net: DeceptionGNN, onnx_file: Path) -> None:
    egos = parity_egos(3, 1.0, 3, seed=5)
    rng = np.random.default_rng(0)
    for n, e_count, a in ((3, 4, 1), (40, 150, 7), (300, 2000, 20)):  # random graphs too
        from nav_policy.deception.ego import EgoGraph

        edge_index = rng.integers(0, n, size=(2, e_count)).astype(np.int64)
        egos.append(EgoGraph(nodes=np.arange(n), x=rng.normal(size=(n, NODE_FEATURES))
                             .astype(np.float32), edge_index=edge_index,
                             cand_weight=rng.uniform(0.5, 2, a).astype(np.float32),
                             cand_mask=np.ones(a, bool), cand_cost=np.ones(a)))
    assert len({len(e.nodes) for e in egos}) > 3
    assert parity(net, onnx_file, egos) <= 1e-4


def test_onnx_metadata_and_runtime(net: DeceptionGNN, onnx_file: Path) -> None:
    import onnx

    props = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    assert props["nav_policy.kind"] == "dpp"
    assert json.loads(props["obs_spec"])["hops"] == 3
    for key in ("action_spec", "codec_version", "trained_steps", "source_commit"):
        assert key in props
    policy = OnnxPolicy(onnx_file)
    ego = parity_egos(3, 1.0, 1, seed=2)[0]
    np.testing.assert_allclose(policy.logits(ego), TorchPolicy(net, 3).logits(ego), atol=1e-4)


def test_onnx_policy_refuses_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        OnnxPolicy(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        OnnxPolicy(bad)
