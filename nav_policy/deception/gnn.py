"""GraphSAGE-like policy/value network in plain torch (no torch_geometric).

    h0 = ReLU(W_in x)
    h_{l+1} = h_l + ReLU(W_self h_l + W_nb · mean_{j ∈ N(i)} h_l[j])      (l = 0..layers-1)
    logit(cur → j) = MLP([h[cur], h[j], w(cur, j)/ℓ])                   one per neighbour edge
    value = MLP(h[cur])

Mean aggregation uses scatter_add (exported to ONNX ScatterElements with add reduction), so
one module serves batched PPO updates (many ego graphs in one block-diagonal batch) and the
exported single-graph model with dynamic node, edge and candidate counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nav_policy.deception.ego import NODE_FEATURES, EgoGraph


@dataclass
class GraphBatch:
    """Ego graphs stacked block-diagonally; candidates padded to the batch's largest A."""

    x: torch.Tensor  # (sum N, F)
    edge_index: torch.Tensor  # (2, sum E)
    center: torch.Tensor  # (B,)
    cand_index: torch.Tensor  # (B, A)
    cand_weight: torch.Tensor  # (B, A)
    cand_mask: torch.Tensor  # (B, A) bool


def collate(egos: list[EgoGraph]) -> GraphBatch:
    """Stack ego graphs; padded candidate slots point at the centre and are masked out."""
    sizes = np.array([len(e.nodes) for e in egos])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    a_max = max(max(e.num_actions for e in egos), 1)
    b = len(egos)
    cand_index = np.repeat(offsets[:, None], a_max, axis=1)
    cand_weight = np.zeros((b, a_max), dtype=np.float32)
    cand_mask = np.zeros((b, a_max), dtype=bool)
    for i, e in enumerate(egos):
        a = e.num_actions
        cand_index[i, :a] = offsets[i] + 1 + np.arange(a)
        cand_weight[i, :a] = e.cand_weight
        cand_mask[i, :a] = e.cand_mask
    edges = np.concatenate([e.edge_index + o for e, o in zip(egos, offsets)], axis=1)
    return GraphBatch(
        x=torch.from_numpy(np.concatenate([e.x for e in egos])),
        edge_index=torch.from_numpy(edges.astype(np.int64)),
        center=torch.from_numpy(offsets.astype(np.int64)),
        cand_index=torch.from_numpy(cand_index.astype(np.int64)),
        cand_weight=torch.from_numpy(cand_weight),
        cand_mask=torch.from_numpy(cand_mask),
    )


def mean_aggregate(h: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """mean over in-neighbours j → i of h[j] (0 for isolated nodes)."""
    src, dst = edge_index[0], edge_index[1]
    idx = dst.unsqueeze(1).expand(-1, h.shape[1])
    total = torch.zeros_like(h).scatter_add(0, idx, h[src])
    ones = torch.ones(dst.shape[0], 1, dtype=h.dtype)
    deg = torch.zeros(h.shape[0], 1, dtype=h.dtype).scatter_add(0, dst.unsqueeze(1), ones)
    return total / deg.clamp(min=1.0)


class SageLayer(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.self_lin = nn.Linear(dim, dim)
        self.nb_lin = nn.Linear(dim, dim, bias=False)

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return h + torch.relu(self.self_lin(h) + self.nb_lin(mean_aggregate(h, edge_index)))


class DeceptionGNN(nn.Module):
    """Logits per neighbour edge of the agent's node, and a state value."""

    def __init__(self, in_dim: int = NODE_FEATURES, hidden: int = 64, layers: int = 2) -> None:
        super().__init__()
        self.in_dim, self.hidden, self.layers = in_dim, hidden, layers
        self.encode = nn.Linear(in_dim, hidden)
        self.convs = nn.ModuleList([SageLayer(hidden) for _ in range(layers)])
        self.logit_head = nn.Sequential(nn.Linear(2 * hidden + 1, hidden), nn.ReLU(),
                                        nn.Linear(hidden, 1))
        self.value_head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.encode(x))
        for conv in self.convs:
            h = conv(h, edge_index)
        return h

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, center: torch.Tensor,
                cand_index: torch.Tensor, cand_weight: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, A), value (B,)) — padding and the guard mask are applied by callers."""
        h = self.embed(x, edge_index)
        hc = h[center]  # (B, H)
        hj = h[cand_index]  # (B, A, H)
        pair = torch.cat([hc.unsqueeze(1).expand_as(hj), hj, cand_weight.unsqueeze(-1)], dim=-1)
        logits = self.logit_head(pair).squeeze(-1)
        value = self.value_head(hc).squeeze(-1)
        return logits, value

    def forward_batch(self, batch: GraphBatch) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward(batch.x, batch.edge_index, batch.center, batch.cand_index,
                            batch.cand_weight)


class SingleGraphPolicy(nn.Module):
    """Export wrapper: one ego graph in the EgoGraph layout (agent = node 0, candidates =
    nodes 1..A). Inputs x (N, F), edge_index (2, E) int64, cand_weight (A,); outputs
    logits (A,) and value (1,). Masking by the budget guard happens outside the graph."""

    def __init__(self, net: DeceptionGNN) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, cand_weight: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        a = cand_weight.shape[0]
        cand_index = (torch.arange(a, dtype=torch.int64) + 1).unsqueeze(0)
        center = torch.zeros(1, dtype=torch.int64)
        logits, value = self.net(x, edge_index, center, cand_index, cand_weight.unsqueeze(0))
        return logits[0], value


def masked_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Guard-masked logits: disallowed candidates get a large negative value."""
    return torch.where(mask, logits, torch.full_like(logits, -1e9))


__all__ = ["DeceptionGNN", "GraphBatch", "SingleGraphPolicy", "collate", "masked_logits",
           "mean_aggregate"]
