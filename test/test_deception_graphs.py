"""Graph file loading (clear errors), saving and the generators."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nav_policy.deception.examples import tiny_graph
from nav_policy.deception.graphs import (
    GraphError,
    grid_graph,
    load_graph,
    random_geometric_graph,
    save_graph,
    world_roadmap,
)
from nav_policy.deception.problem import Problem
from nav_policy.errors import NavPolicyError


def _write(tmp_path: Path, data: object) -> Path:
    p = tmp_path / "g.json"
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def test_round_trip(tmp_path: Path) -> None:
    g = tiny_graph()
    save_graph(g, tmp_path / "g.json")
    back = load_graph(tmp_path / "g.json")
    assert back.num_nodes == 6 and back.num_edges == 6
    np.testing.assert_allclose(back.distances(3), g.distances(3))
    np.testing.assert_allclose(back.pos, g.pos)


def test_networkx_edges_key_and_default_weight(tmp_path: Path) -> None:
    data = {"directed": False, "nodes": [{"id": 10, "pos": [0, 0]}, {"id": 20, "pos": [3, 4]}],
            "edges": [{"source": 10, "target": 20}]}
    g = load_graph(_write(tmp_path, data))
    assert g.edge_weight(g.index(10), g.index(20)) == pytest.approx(5.0)


@pytest.mark.parametrize(("data", "match"), [
    ("{not json", "not valid JSON"),
    ([1, 2], "JSON object"),
    ({"nodes": [], "links": []}, "non-empty"),
    ({"nodes": [{"id": 1}], "links": {}}, "'links' must be a list"),
    ({"nodes": [{"pos": [0, 0]}], "links": []}, "'id'"),
    ({"nodes": [{"id": "a"}], "links": []}, "integer"),
    ({"nodes": [{"id": 1}, {"id": 1}], "links": []}, "duplicate"),
    ({"nodes": [{"id": 1, "pos": [0]}], "links": []}, "pos"),
    ({"nodes": [{"id": 1}], "links": [{"source": 1, "target": 9, "weight": 1}]}, "not a node"),
    ({"nodes": [{"id": 1}, {"id": 2}], "links": [{"source": 1, "target": 2, "weight": -1}]},
     "weight"),
    ({"nodes": [{"id": 1}, {"id": 2}], "links": [{"source": 1, "target": 2, "weight": "x"}]},
     "weight"),
    ({"directed": True, "nodes": [{"id": 1}], "links": []}, "directed"),
])
def test_malformed_files(tmp_path: Path, data: object, match: str) -> None:
    with pytest.raises(GraphError, match=match):
        load_graph(_write(tmp_path, data))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NavPolicyError, match="cannot read"):
        load_graph(tmp_path / "nope.json")


def test_unknown_node_and_disconnected_goal(tmp_path: Path) -> None:
    g = tiny_graph()
    with pytest.raises(GraphError, match="unknown node id 99"):
        Problem.from_ids(g, 0, 99, [4])
    data = g.to_dict()
    data["nodes"].append({"id": 7, "pos": [9, 9]})  # isolated node
    g2 = load_graph(_write(tmp_path, data))
    with pytest.raises(GraphError, match="disconnected"):
        Problem.from_ids(g2, 0, 7, [4])
    with pytest.raises(GraphError, match="not connected"):
        Problem.from_ids(g2, 0, 3, [7])
    with pytest.raises(GraphError, match="budget ratio"):
        Problem.from_ids(g, 0, 3, [4], 0.9)
    with pytest.raises(GraphError, match="decoy is the true goal"):
        Problem.from_ids(g, 0, 3, [3])


@pytest.mark.parametrize(("connectivity", "edges", "diag"),
                         [(4, 2 * 3 * 4, 0), (8, 2 * 3 * 4 + 2 * 9, 1)])
def test_grid_graph(connectivity: int, edges: int, diag: int) -> None:
    g = grid_graph(4, 4, 0.0, connectivity)
    assert g.num_nodes == 16 and g.num_edges == edges
    assert g.distances(0)[15] == pytest.approx(6.0 if connectivity == 4 else 3 * np.sqrt(2))
    assert (np.isclose(g.weights, np.sqrt(2)).sum() > 0) == bool(diag)


def test_grid_obstacles_keep_largest_component() -> None:
    g = grid_graph(16, 16, 0.3, 4, np.random.default_rng(1))
    assert g.num_nodes < 256
    assert np.isfinite(g.distances(0)).all()


def test_random_geometric_graph() -> None:
    g = random_geometric_graph(300, rng=np.random.default_rng(0))
    assert 200 < g.num_nodes <= 300
    assert np.isfinite(g.distances(0)).all()
    assert 4 < 2 * g.num_edges / g.num_nodes < 14


def test_world_roadmap(tiny_world: object) -> None:
    g = world_roadmap(tiny_world, robot_radius=0.2, resolution=0.25)
    assert g.num_nodes > 100
    assert np.isfinite(g.distances(0)).all()
    assert (np.abs(g.pos[:, 0]) < 3.0).all() and (np.abs(g.pos[:, 1]) < 2.0).all()
    clear = tiny_world.clearance(g.pos[:, 0], g.pos[:, 1])  # type: ignore[attr-defined]
    assert (clear > 0.2).all()
