"""Graph layers over feature-map tokens: every position is a node.

Graphs are neighbour lists (``Neighbors``: index and validity mask of shape (B or 1, V, K)),
so propagation is a vectorised gather of (B, V, K, C) values: memory O(B * V * K * C), never the
O(V^2) of a dense adjacency. The default graph is the 8-neighbour grid (K = 8, out-of-map
neighbours masked); ``graph="knn"`` links each node to its ``k`` nearest other nodes in feature
space, found with a (B, V, V) distance matrix (no gradient), which is the one O(V^2) cost.
Propagation functions accept a dense 0/1 adjacency too, for small hand-made graphs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from nasplat.registry import OPS
from search_spaces.ops.common import (
    Resample,
    from_tokens,
    group_count,
    make_act,
    make_norm,
    to_tokens,
)

GRAPHS: tuple[str, ...] = ("grid", "knn")
AGGREGATORS: tuple[str, ...] = ("mean", "max")


@dataclass(frozen=True)
class Neighbors:
    """Per-node neighbour lists: ``index`` (long) and ``mask`` (bool), both (B or 1, V, K)."""

    index: torch.Tensor
    mask: torch.Tensor

    def gather(self, values: torch.Tensor) -> torch.Tensor:
        """(B, V, *F) node values -> (B, V, K, *F) neighbour values (padding slots are zero)."""
        b, v = values.shape[:2]
        idx = self.index.expand(b, -1, -1)
        k = idx.shape[-1]
        flat = values.reshape(b, v, -1)
        picked = flat.gather(1, idx.reshape(b, v * k, 1).expand(-1, -1, flat.shape[-1]))
        mask = self.mask.expand(b, -1, -1).reshape(b, v * k, 1)
        return (picked * mask).view(b, v, k, *values.shape[2:])

    def degree(self) -> torch.Tensor:
        """Number of neighbours per node, (B or 1, V), without self loops."""
        return self.mask.sum(dim=-1)


@lru_cache(maxsize=32)
def _grid(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows, cols = torch.arange(h)[:, None], torch.arange(w)[None, :]
    index, mask = [], []
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == dc == 0:
                continue
            r, c = rows + dr, cols + dc
            mask.append(((r >= 0) & (r < h) & (c >= 0) & (c < w)).flatten())
            index.append((r.clamp(0, h - 1) * w + c.clamp(0, w - 1)).flatten())
    return torch.stack(index, dim=-1)[None], torch.stack(mask, dim=-1)[None]


def grid_neighbors(h: int, w: int, device: torch.device | None = None) -> Neighbors:
    """The 8-neighbour grid graph of an h x w map (row-major node order)."""
    # torch.export (ONNX) traces with fake tensors: they must not be cached for later real calls
    index, mask = _grid.__wrapped__(h, w) if torch.compiler.is_compiling() else _grid(h, w)
    return Neighbors(index.to(device), mask.to(device))


@torch.no_grad()
def knn_neighbors(tokens: torch.Tensor, k: int) -> Neighbors:
    """Each node's ``k`` nearest other nodes (Euclidean) in (B, V, C) features."""
    b, v, _ = tokens.shape
    dist = torch.cdist(tokens, tokens)
    dist.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    kk = min(k, v - 1)
    if kk < 1:
        return Neighbors(
            tokens.new_zeros(b, v, 1, dtype=torch.long), tokens.new_zeros(b, v, 1, dtype=torch.bool)
        )
    index = dist.topk(kk, dim=-1, largest=False).indices
    return Neighbors(index, torch.ones_like(index, dtype=torch.bool))


def adjacency_neighbors(adj: torch.Tensor) -> Neighbors:
    """Neighbour lists of a dense (V, V) or (B, V, V) adjacency; nonzero = edge, diagonal ignored."""
    if adj.dim() == 2:
        adj = adj[None]
    v = adj.shape[-1]
    edges = (adj != 0) & ~torch.eye(v, dtype=torch.bool, device=adj.device)
    flags, order = edges.to(torch.int8).sort(dim=-1, descending=True, stable=True)
    k = max(int(edges.sum(dim=-1).max()), 1)
    return Neighbors(order[..., :k], flags[..., :k].bool())


def as_neighbors(graph: torch.Tensor | Neighbors) -> Neighbors:
    return graph if isinstance(graph, Neighbors) else adjacency_neighbors(graph)


def gcn_propagate(
    x: torch.Tensor, graph: torch.Tensor | Neighbors, weight: torch.Tensor
) -> torch.Tensor:
    """GCN layer (Kipf & Welling): ``D^-1/2 (A + I) D^-1/2 X W`` for (B, V, C_in) ``x``.

    ``D`` counts each node's neighbours plus itself; the graph should be symmetric (for a kNN
    graph, which is not, this is the row-degree normalisation ``(A + I) / (k + 1)``).
    """
    nb = as_neighbors(graph)
    d_inv_sqrt = (nb.degree() + 1).to(x.dtype).rsqrt()[..., None]
    scaled = (x @ weight) * d_inv_sqrt
    return d_inv_sqrt * (scaled + nb.gather(scaled).sum(dim=2))


def sage_propagate(
    x: torch.Tensor, graph: torch.Tensor | Neighbors, weight: torch.Tensor, aggregator: str = "mean"
) -> torch.Tensor:
    """GraphSAGE layer: ``[x_i, agg_{j in N(i)} x_j] W`` with a (2 C_in, C_out) ``weight``.

    ``mean`` averages the neighbours, ``max`` takes their element-wise maximum; a node without
    neighbours aggregates to zero.
    """
    nb = as_neighbors(graph)
    neigh = nb.gather(x)
    mask = nb.mask.expand(x.shape[0], -1, -1)[..., None]
    if aggregator == "mean":
        agg = neigh.sum(dim=2) / mask.sum(dim=2).clamp(min=1)
    elif aggregator == "max":
        agg = neigh.masked_fill(~mask, float("-inf")).amax(dim=2)
        agg = torch.where(mask.any(dim=2), agg, torch.zeros_like(agg))
    else:
        raise ValueError(f"unknown aggregator {aggregator!r}; known: {', '.join(AGGREGATORS)}")
    return torch.cat([x, agg], dim=-1) @ weight


def _with_self(nb: Neighbors, v: int) -> Neighbors:
    """Prepend each node itself as slot 0 (the self loop)."""
    self_index = (
        torch.arange(v, device=nb.index.device).view(1, v, 1).expand(nb.index.shape[0], v, 1)
    )
    index = torch.cat([self_index, nb.index], dim=-1)
    mask = torch.cat([torch.ones_like(self_index, dtype=torch.bool), nb.mask], dim=-1)
    return Neighbors(index, mask)


def gat_attention(
    h: torch.Tensor,
    graph: torch.Tensor | Neighbors,
    a_src: torch.Tensor,
    a_dst: torch.Tensor,
    slope: float = 0.2,
) -> tuple[torch.Tensor, Neighbors]:
    """GAT attention of (B, V, heads, F) features: softmax over each node's neighbours and itself.

    ``e_ij = LeakyReLU(a_dst . h_i + a_src . h_j)``; returns ``alpha`` of shape (B, V, K + 1, heads)
    and the neighbour lists it refers to (slot 0 is the node itself; padding slots get 0).
    """
    nb = _with_self(as_neighbors(graph), h.shape[1])
    score_dst = (h * a_dst).sum(dim=-1)  # (B, V, heads)
    score_src = nb.gather((h * a_src).sum(dim=-1))  # (B, V, K + 1, heads)
    logits = F.leaky_relu(score_dst[:, :, None] + score_src, slope)
    mask = nb.mask.expand(h.shape[0], -1, -1)[..., None]
    return logits.masked_fill(~mask, float("-inf")).softmax(dim=2), nb


def gat_propagate(
    x: torch.Tensor,
    graph: torch.Tensor | Neighbors,
    weight: torch.Tensor,
    a_src: torch.Tensor,
    a_dst: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-head GAT layer: (B, V, C_in) -> (B, V, heads * F) with heads concatenated.

    ``weight`` is (C_in, heads * F); ``a_src``/``a_dst`` are (heads, F). Returns the output and
    the attention weights of ``gat_attention``.
    """
    heads, feat = a_src.shape
    h = (x @ weight).view(x.shape[0], x.shape[1], heads, feat)
    alpha, nb = gat_attention(h, graph, a_src, a_dst)
    out = (alpha[..., None] * nb.gather(h)).sum(dim=2)
    return out.flatten(2), alpha


def _glorot(*shape: int) -> nn.Parameter:
    weight = torch.empty(*shape)
    nn.init.xavier_uniform_(weight)
    return nn.Parameter(weight)


class GCNLayer(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.weight = _glorot(c_in, c_out)

    def forward(self, tokens: torch.Tensor, nb: Neighbors) -> torch.Tensor:
        return gcn_propagate(tokens, nb, self.weight)


class SAGELayer(nn.Module):
    def __init__(self, c_in: int, c_out: int, aggregator: str) -> None:
        super().__init__()
        if aggregator not in AGGREGATORS:
            raise ValueError(f"unknown aggregator {aggregator!r}; known: {', '.join(AGGREGATORS)}")
        self.aggregator = aggregator
        self.weight = _glorot(2 * c_in, c_out)

    def forward(self, tokens: torch.Tensor, nb: Neighbors) -> torch.Tensor:
        return sage_propagate(tokens, nb, self.weight, self.aggregator)


class GATLayer(nn.Module):
    def __init__(self, c_in: int, c_out: int, heads: int) -> None:
        super().__init__()
        heads = group_count(c_out, heads)
        self.weight = _glorot(c_in, c_out)
        self.a_src, self.a_dst = _glorot(heads, c_out // heads), _glorot(heads, c_out // heads)

    def forward(self, tokens: torch.Tensor, nb: Neighbors) -> torch.Tensor:
        return gat_propagate(tokens, nb, self.weight, self.a_src, self.a_dst)[0]


class GraphOp(nn.Module):
    """act -> (3x3 average pool at stride 2) -> graph ``layer`` over positions -> norm."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int,
        layer: nn.Module,
        graph: str,
        k: int,
        act: str,
        norm: str,
    ) -> None:
        super().__init__()
        if graph not in GRAPHS:
            raise ValueError(f"unknown graph {graph!r}; known: {', '.join(GRAPHS)}")
        if k < 1:
            raise ValueError(f"k must be positive, got {k!r}")
        self.graph, self.k, self.layer = graph, k, layer
        self.act = make_act(act, c_in)
        self.pool = Resample(c_in, c_in, stride)
        self.norm = make_norm(norm, c_out)

    def neighbors(self, tokens: torch.Tensor, h: int, w: int) -> Neighbors:
        if self.graph == "knn":
            return knn_neighbors(tokens, self.k)
        return grid_neighbors(h, w, tokens.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act(x))
        h, w = x.shape[-2:]
        tokens = to_tokens(x)
        out = self.layer(tokens, self.neighbors(tokens, h, w))
        return self.norm(from_tokens(out, h, w))


@OPS.register(
    "gcn", family="graph", description="graph convolution (Kipf & Welling) over positions"
)
def gcn(
    c_in: int,
    c_out: int,
    stride: int,
    *,
    graph: str = "grid",
    k: int = 8,
    act: str = "relu",
    norm: str = "batch",
) -> nn.Module:
    """act -> GCN layer on the grid (or kNN) graph of positions -> norm."""
    return GraphOp(c_in, c_out, stride, GCNLayer(c_in, c_out), graph, k, act, norm)


@OPS.register(
    "graph_sage", family="graph", description="GraphSAGE (mean/max aggregator) over positions"
)
def graph_sage(
    c_in: int,
    c_out: int,
    stride: int,
    *,
    aggregator: str = "mean",
    graph: str = "grid",
    k: int = 8,
    act: str = "relu",
    norm: str = "batch",
) -> nn.Module:
    """act -> GraphSAGE layer (self concatenated with aggregated neighbours, linear) -> norm."""
    return GraphOp(c_in, c_out, stride, SAGELayer(c_in, c_out, aggregator), graph, k, act, norm)


@OPS.register("gat", family="graph", description="multi-head graph attention over positions")
def gat(
    c_in: int,
    c_out: int,
    stride: int,
    *,
    heads: int = 4,
    graph: str = "grid",
    k: int = 8,
    act: str = "relu",
    norm: str = "batch",
) -> nn.Module:
    """act -> GAT layer (heads concatenated; gcd(heads, c_out) heads) -> norm."""
    return GraphOp(c_in, c_out, stride, GATLayer(c_in, c_out, heads), graph, k, act, norm)
