"""Weighted undirected graphs for deceptive path planning: file format, generators, Dijkstra.

File format (docs/DESIGN.md, "Graph file"): networkx node-link JSON,

    {"directed": false, "nodes": [{"id": int, "pos": [x, y]}],
     "links": [{"source": int, "target": int, "weight": float}]}

("edges" is accepted in place of "links", as newer networkx writes it). Node ids are arbitrary
distinct integers; inside a :class:`Graph` nodes are numbered 0..n-1 (``index``) and ``ids``
maps back. Weights must be finite and > 0 (a zero-cost edge would let a walk spend no budget).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from nav_policy.errors import NavPolicyError


class GraphError(NavPolicyError):
    """A graph file or a query on a graph is invalid (unknown node, disconnected goal, ...)."""


@dataclass
class Graph:
    """Undirected weighted graph in CSR form with node positions.

    ``indptr``/``indices``/``weights`` hold both directions of every edge, neighbours of node
    i are ``indices[indptr[i]:indptr[i+1]]``.
    """

    ids: np.ndarray  # (n,) int64 external node ids
    pos: np.ndarray  # (n, 2) float64
    indptr: np.ndarray  # (n+1,) int64
    indices: np.ndarray  # (2m,) int64
    weights: np.ndarray  # (2m,) float64
    name: str = "graph"
    _id_index: dict[int, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._id_index = {int(v): i for i, v in enumerate(self.ids)}

    # ---- size and lookup ----------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        return len(self.ids)

    @property
    def num_edges(self) -> int:
        return int(len(self.indices) // 2)

    def index(self, node_id: int) -> int:
        """Internal index of an external node id; GraphError if unknown."""
        try:
            return self._id_index[int(node_id)]
        except (KeyError, TypeError, ValueError):
            raise GraphError(f"unknown node id {node_id!r} (graph {self.name} has "
                             f"{self.num_nodes} nodes)") from None

    def neighbours(self, i: int) -> np.ndarray:
        return self.indices[self.indptr[i]:self.indptr[i + 1]]

    def neighbour_weights(self, i: int) -> np.ndarray:
        return self.weights[self.indptr[i]:self.indptr[i + 1]]

    def edge_weight(self, i: int, j: int) -> float:
        """Weight of edge (i, j) in internal indices; inf if not adjacent."""
        nb = self.neighbours(i)
        hit = np.nonzero(nb == j)[0]
        return float(self.neighbour_weights(i)[hit].min()) if len(hit) else math.inf

    def median_edge(self) -> float:
        """Median edge weight: the local length scale used to normalise features and beta."""
        return float(np.median(self.weights)) if len(self.weights) else 1.0

    # ---- shortest paths -----------------------------------------------------------------
    def csr(self) -> csr_matrix:
        n = self.num_nodes
        return csr_matrix((self.weights, self.indices, self.indptr), shape=(n, n))

    def distances(self, sources: int | list[int] | np.ndarray) -> np.ndarray:
        """Exact shortest-path costs (Dijkstra) from each source: (n,) or (k, n)."""
        return dijkstra(self.csr(), directed=True, indices=sources)  # CSR holds both directions

    def shortest_path_tree(self, source: int) -> tuple[np.ndarray, np.ndarray]:
        """(dist, predecessors) of a Dijkstra from `source` (internal index)."""
        dist, pred = dijkstra(self.csr(), directed=True, indices=source,
                              return_predecessors=True)
        return dist, pred

    # ---- conversion ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Node-link dict of docs/DESIGN.md (each undirected edge once)."""
        nodes = [{"id": int(self.ids[i]), "pos": [float(self.pos[i, 0]), float(self.pos[i, 1])]}
                 for i in range(self.num_nodes)]
        links = []
        for i in range(self.num_nodes):
            for j, w in zip(self.neighbours(i), self.neighbour_weights(i)):
                if i < j:
                    links.append({"source": int(self.ids[i]), "target": int(self.ids[j]),
                                  "weight": float(w)})
        return {"directed": False, "multigraph": False, "graph": {"name": self.name},
                "nodes": nodes, "links": links}


# ---- construction ---------------------------------------------------------------------------
def build_graph(ids: np.ndarray, pos: np.ndarray, edges: np.ndarray, weights: np.ndarray,
                name: str = "graph") -> Graph:
    """Graph from edge list (m, 2) of internal indices; duplicate edges keep the lightest."""
    n = len(ids)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    keep = edges[:, 0] != edges[:, 1]  # self-loops are useless for a walk
    edges, weights = edges[keep], weights[keep]
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    wts = np.concatenate([weights, weights])
    if len(rows):  # keep the minimum weight of parallel edges
        order = np.lexsort((wts, cols, rows))
        rows, cols, wts = rows[order], cols[order], wts[order]
        first = np.ones(len(rows), dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        rows, cols, wts = rows[first], cols[first], wts[first]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    indptr = np.cumsum(indptr)
    return Graph(ids=np.asarray(ids, dtype=np.int64), pos=np.asarray(pos, dtype=np.float64),
                 indptr=indptr, indices=cols.astype(np.int64), weights=wts, name=name)


def largest_component(graph: Graph) -> Graph:
    """The largest connected component, external ids and positions kept."""
    n_comp, labels = connected_components(graph.csr(), directed=False)
    if n_comp <= 1:
        return graph
    big = int(np.bincount(labels).argmax())
    return subgraph(graph, np.nonzero(labels == big)[0])


def subgraph(graph: Graph, nodes: np.ndarray) -> Graph:
    """Induced subgraph on internal indices `nodes` (ids kept)."""
    nodes = np.asarray(nodes, dtype=np.int64)
    remap = np.full(graph.num_nodes, -1, dtype=np.int64)
    remap[nodes] = np.arange(len(nodes))
    src = np.repeat(np.arange(graph.num_nodes), np.diff(graph.indptr))
    a, b = remap[src], remap[graph.indices]
    keep = (a >= 0) & (b >= 0) & (a < b)
    edges = np.stack([a[keep], b[keep]], axis=1)
    return build_graph(graph.ids[nodes], graph.pos[nodes], edges, graph.weights[keep],
                       name=graph.name)


# ---- file format ----------------------------------------------------------------------------
def _node_entry(entry: Any, k: int, source: str) -> tuple[int, tuple[float, float]]:
    if not isinstance(entry, dict) or "id" not in entry:
        raise GraphError(f"{source}: nodes[{k}] must be an object with an 'id'")
    node_id = entry["id"]
    if isinstance(node_id, bool) or not isinstance(node_id, int):
        raise GraphError(f"{source}: nodes[{k}].id must be an integer, got {node_id!r}")
    if not -(2**63) <= node_id < 2**63:
        raise GraphError(f"{source}: nodes[{k}].id {node_id} is out of the 64-bit range")
    pos = entry.get("pos", [0.0, 0.0])
    if (not isinstance(pos, (list, tuple)) or len(pos) != 2
            or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in pos)):
        raise GraphError(f"{source}: nodes[{k}].pos must be [x, y] finite numbers")
    return node_id, (float(pos[0]), float(pos[1]))


def _link_entry(entry: Any, k: int, source: str, id_index: dict[int, int],
                pos: np.ndarray) -> tuple[int, int, float]:
    if not isinstance(entry, dict) or "source" not in entry or "target" not in entry:
        raise GraphError(f"{source}: links[{k}] must be an object with 'source' and 'target'")
    ends = []
    for key in ("source", "target"):
        end = entry[key]
        if isinstance(end, bool) or not isinstance(end, int) or end not in id_index:
            raise GraphError(f"{source}: links[{k}].{key} = {entry[key]!r} is not a node id")
        ends.append(id_index[entry[key]])
    w = entry.get("weight")
    if w is None:  # networkx default: Euclidean length when positions exist
        w = float(np.hypot(*(pos[ends[0]] - pos[ends[1]])))
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
        raise GraphError(f"{source}: links[{k}].weight must be a finite number > 0, got {w!r}")
    return ends[0], ends[1], float(w)


def graph_from_dict(data: Any, source: str = "graph") -> Graph:
    """Validate a node-link dict and build a Graph. GraphError names the first problem."""
    if not isinstance(data, dict):
        raise GraphError(f"{source}: expected a JSON object with 'nodes' and 'links'")
    if data.get("directed", False):
        raise GraphError(f"{source}: directed graphs are not supported (set \"directed\": false)")
    nodes = data.get("nodes")
    links = data.get("links", data.get("edges"))
    if not isinstance(nodes, list) or not nodes:
        raise GraphError(f"{source}: 'nodes' must be a non-empty list")
    if not isinstance(links, list):
        raise GraphError(f"{source}: 'links' must be a list")
    parsed = [_node_entry(e, k, source) for k, e in enumerate(nodes)]
    ids = np.array([p[0] for p in parsed], dtype=np.int64)
    if len(set(ids.tolist())) != len(ids):
        raise GraphError(f"{source}: duplicate node ids")
    pos = np.array([p[1] for p in parsed], dtype=np.float64)
    id_index = {int(v): i for i, v in enumerate(ids)}
    triples = [_link_entry(e, k, source, id_index, pos) for k, e in enumerate(links)]
    edges = np.array([(a, b) for a, b, _ in triples], dtype=np.int64).reshape(-1, 2)
    weights = np.array([w for _, _, w in triples], dtype=np.float64)
    name = data.get("graph", {}).get("name", Path(source).stem) if isinstance(
        data.get("graph"), dict) else Path(source).stem
    return build_graph(ids, pos, edges, weights, name=str(name))


def load_graph(path: str | Path) -> Graph:
    """Read a graph file; GraphError (exit 2 in the CLI) on any problem."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise GraphError(f"cannot read graph file {p}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise GraphError(f"graph file {p} is not valid JSON: {exc}") from exc
    return graph_from_dict(data, str(p))


def save_graph(graph: Graph, path: str | Path) -> None:
    Path(path).write_text(json.dumps(graph.to_dict()) + "\n")


# ---- generators -----------------------------------------------------------------------------
def grid_graph(width: int, height: int, obstacle_density: float = 0.0, connectivity: int = 4,
               rng: np.random.Generator | None = None, keep_largest: bool = True) -> Graph:
    """Grid of unit cells; a random `obstacle_density` fraction of cells is removed.

    4-connected edges weigh 1; 8-connected adds diagonals of weight sqrt(2) that do not cut
    an obstacle corner. Node id = row * width + col, pos = (col, row).
    """
    if connectivity not in (4, 8):
        raise GraphError(f"grid connectivity must be 4 or 8, got {connectivity}")
    rng = rng or np.random.default_rng(0)
    free = rng.random((height, width)) >= obstacle_density
    idx = np.arange(height * width).reshape(height, width)
    steps = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if connectivity == 8 else [])
    edges, weights = [], []
    for di, dj in steps:
        i0, i1 = 0, height - di
        j0, j1 = max(0, -dj), width - max(0, dj)
        ok = free[i0:i1, j0:j1] & free[i0 + di:i1 + di, j0 + dj:j1 + dj]
        if di and dj:
            ok &= free[i0 + di:i1 + di, j0:j1] & free[i0:i1, j0 + dj:j1 + dj]
        a = idx[i0:i1, j0:j1][ok]
        b = idx[i0 + di:i1 + di, j0 + dj:j1 + dj][ok]
        edges.append(np.stack([a, b], axis=1))
        weights.append(np.full(len(a), math.hypot(di, dj)))
    cells = idx.reshape(-1)
    pos = np.stack([cells % width, cells // width], axis=1).astype(float)
    graph = build_graph(cells, pos, np.concatenate(edges), np.concatenate(weights),
                        name=f"grid{width}x{height}_c{connectivity}")
    graph = subgraph(graph, np.nonzero(free.reshape(-1))[0])
    return largest_component(graph) if keep_largest else graph


def random_geometric_graph(n: int, radius: float | None = None, mean_degree: float = 8.0,
                           rng: np.random.Generator | None = None,
                           keep_largest: bool = True) -> Graph:
    """n points uniform in the unit square, edges between points closer than `radius`.

    Without a radius, one giving about `mean_degree` neighbours is used. Weight = Euclidean
    distance. The largest connected component is kept (ids are 0..n-1 of the drawn points).
    """
    from scipy.spatial import cKDTree

    rng = rng or np.random.default_rng(0)
    if radius is None:
        radius = math.sqrt(mean_degree / (math.pi * max(n, 1)))
    pts = rng.random((n, 2))
    pairs = cKDTree(pts).query_pairs(radius, output_type="ndarray")
    w = np.hypot(*(pts[pairs[:, 0]] - pts[pairs[:, 1]]).T) if len(pairs) else np.zeros(0)
    w = np.maximum(w, 1e-9)
    graph = build_graph(np.arange(n), pts, pairs, w, name=f"rgg{n}")
    return largest_component(graph) if keep_largest else graph


def world_roadmap(world: Any, robot_radius: float, resolution: float = 0.25,
                  margin: float = 0.0) -> Graph:
    """Free-space grid roadmap of a nav_policy.sim World: 8-connected cells whose clearance
    exceeds `robot_radius + margin`, diagonal moves only without corner cutting, weights in
    metres, pos = cell centre in world coordinates. The largest component is kept."""
    from nav_policy.sim.grid import GridMap

    grid = GridMap.from_world(world, resolution)
    free = grid.clearance > robot_radius + margin
    ox, oy = grid.origin
    return _free_grid_roadmap(free, resolution,
                              lambda cols, rows: np.stack([ox + cols * resolution,
                                                           oy + rows * resolution], axis=1),
                              f"roadmap_{getattr(world, 'name', 'world')}",
                              "the world has no free cell wider than the robot")


def occupancy_clearance(occupancy: np.ndarray, map_resolution: float,
                        occupied_threshold: int = 50, unknown_is_obstacle: bool = True
                        ) -> np.ndarray:
    """Clearance (m) of every cell of an occupancy grid (nav_msgs/OccupancyGrid values: 0-100
    occupancy probability, -1 unknown; row i, column j), the counterpart of
    nav_policy.sim.grid.GridMap.clearance for a map instead of a world model.

    Obstacles are the cells with a value >= `occupied_threshold`, and unknown cells (any
    negative value, or above 100) unless `unknown_is_obstacle` is false; outside the map counts
    as unknown. A free cell's clearance is the distance from its centre to the nearest obstacle
    cell's centre minus half a cell (the obstacle's near edge), 0 on obstacles.
    """
    from scipy.ndimage import distance_transform_edt

    occ = np.asarray(occupancy)
    if occ.ndim != 2 or occ.size == 0:
        raise GraphError(f"occupancy grid must be a non-empty 2-D array, got shape {occ.shape}")
    if not (math.isfinite(map_resolution) and map_resolution > 0):
        raise GraphError(f"occupancy grid resolution must be > 0, got {map_resolution}")
    unknown = (occ < 0) | (occ > 100)
    obstacle = (occ >= occupied_threshold) & ~unknown
    if unknown_is_obstacle:
        obstacle |= unknown
    padded = np.pad(obstacle, 1, constant_values=unknown_is_obstacle)
    if not padded.any():  # nothing anywhere: clearance is unbounded
        return np.full(occ.shape, np.inf)
    dist = distance_transform_edt(~padded)[1:-1, 1:-1] * map_resolution
    return np.where(obstacle, 0.0, np.maximum(dist - map_resolution / 2, 0.0))


def occupancy_roadmap(occupancy: np.ndarray, map_resolution: float,
                      origin: tuple[float, float, float], robot_radius: float,
                      resolution: float = 0.25, margin: float = 0.0,
                      occupied_threshold: int = 50, unknown_is_obstacle: bool = True,
                      name: str = "roadmap_map") -> Graph:
    """Free-space grid roadmap of an occupancy grid map, built as world_roadmap builds one of
    a simulator world: nodes every `resolution` m whose clearance (occupancy_clearance, read
    at the map cell under the node) exceeds `robot_radius + margin`, 8-connected without
    corner cutting, weights in metres, the largest component kept.

    `occupancy` is (height, width), row 0 at the map origin; `origin` is the map's
    (x, y, yaw) (nav_msgs/MapMetaData.origin): node positions are in the map's frame.
    """
    clearance = occupancy_clearance(occupancy, map_resolution, occupied_threshold,
                                    unknown_is_obstacle)
    if not (math.isfinite(resolution) and resolution > 0):
        raise GraphError(f"roadmap resolution must be > 0, got {resolution}")
    h, w = clearance.shape
    extent_x, extent_y = w * map_resolution, h * map_resolution
    nx, ny = max(int(extent_x // resolution), 1), max(int(extent_y // resolution), 1)
    # node centres, centred on the map; local coordinates from the map origin's corner
    us = (extent_x - (nx - 1) * resolution) / 2 + resolution * np.arange(nx)
    vs = (extent_y - (ny - 1) * resolution) / 2 + resolution * np.arange(ny)
    jj = np.clip((us / map_resolution).astype(np.int64), 0, w - 1)
    ii = np.clip((vs / map_resolution).astype(np.int64), 0, h - 1)
    free = clearance[np.ix_(ii, jj)] > robot_radius + margin
    ox, oy, yaw = (float(v) for v in origin)
    c, s = math.cos(yaw), math.sin(yaw)

    def to_map(cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
        u, v = us[cols], vs[rows]
        return np.stack([ox + c * u - s * v, oy + s * u + c * v], axis=1)

    return _free_grid_roadmap(free, resolution, to_map, name,
                              "the map has no free cell wider than the robot")


def _free_grid_roadmap(free: np.ndarray, resolution: float, to_world: Any, name: str,
                       empty_reason: str) -> Graph:
    """8-connected roadmap of the True cells of `free` (no corner cutting), weights in metres;
    to_world(cols, rows) gives node positions. The largest component is kept."""
    h, w = free.shape
    idx = np.arange(h * w).reshape(h, w)
    edges, weights = [], []
    for di, dj in ((0, 1), (1, 0), (1, 1), (1, -1)):
        i1 = h - di
        j0, j1 = max(0, -dj), w - max(0, dj)
        ok = free[0:i1, j0:j1] & free[di:i1 + di, j0 + dj:j1 + dj]
        if di and dj:
            ok &= free[di:i1 + di, j0:j1] & free[0:i1, j0 + dj:j1 + dj]
        edges.append(np.stack([idx[0:i1, j0:j1][ok], idx[di:i1 + di, j0 + dj:j1 + dj][ok]], 1))
        weights.append(np.full(int(ok.sum()), resolution * math.hypot(di, dj)))
    cells = idx.reshape(-1)
    pos = to_world(cells % w, cells // w)
    graph = build_graph(cells, pos, np.concatenate(edges), np.concatenate(weights), name=name)
    graph = subgraph(graph, np.nonzero(free.reshape(-1))[0])
    if graph.num_nodes == 0:
        raise GraphError(empty_reason)
    return largest_component(graph)


def nearest_node(graph: Graph, x: float, y: float) -> int:
    """Internal index of the node closest to (x, y) (Euclidean on pos)."""
    return int(np.argmin(np.hypot(graph.pos[:, 0] - x, graph.pos[:, 1] - y)))


__all__ = [
    "Graph", "GraphError", "build_graph", "graph_from_dict", "grid_graph", "largest_component",
    "load_graph", "nearest_node", "occupancy_clearance", "occupancy_roadmap",
    "random_geometric_graph", "save_graph", "subgraph", "world_roadmap",
]
