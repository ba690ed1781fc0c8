"""Weight-sharing machinery and the network pieces of the cell-based spaces.

A space describes its networks as *edges*, each named by a key such as ``"normal.n2.e0"`` or
``"edge.2.1"`` and holding candidate op names (the protocol of
:class:`search_spaces.common.WeightSharingSpace`). The standalone network of a genotype is
``space.network(space.edge_ops(g))``; the supernet is ``space.network(space.edge_candidates())``
plus architecture parameters. Both use the same module names, so a standalone network's state
dict is a subset of the supernet's and copying a path's weights is a key lookup
(:meth:`Supernet.extract_weights`, :func:`load_path_into`).

An :class:`Edge` is the mixed op: in a continuous route it returns the softmax-weighted sum of its
candidates (DARTS); in a single-path route only the genotype's ops run (ENAS / one-shot).

Two PC-DARTS (Xu et al., ICLR 2020) options of :func:`build_supernet`: ``partial_channels=K``
builds every edge that knows its width with ops ``1/K`` as wide; such an edge runs its ops on
the first ``C/K`` channels of its input, passes the other channels by (2x2 max-pooled on a
reduction edge), concatenates both and shuffles the channels (:func:`channel_shuffle`).
``edge_normalization=True`` adds a logit ``beta`` per edge of a cell node: the node sums its
input edges weighted by the softmax of its betas, and the derived genotype reads the product of
the edge's op weights and its edge weight.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from nasplat.errors import ConfigError
from nasplat.genotype import Genotype
from nasplat.registry import OPS

if TYPE_CHECKING:
    from nasplat.shape import NetShape
    from search_spaces.common import WeightSharingSpace

MODES = ("continuous", "single_path")
_CANDIDATE = re.compile(r"\.ops\.[^.]+")

Candidates = Mapping[str, Sequence[str]]
"""Edge key -> op names (candidates of a supernet, or the ops a genotype runs)."""

_PARTIAL_CHANNELS: ContextVar[int] = ContextVar("partial_channels", default=1)
"""The ``K`` of the supernet under construction (:func:`build_supernet`); 1 elsewhere."""


@contextmanager
def partial_channel_scope(k: int) -> Iterator[None]:
    """Edges built inside (that know their width) run their ops on ``1/k`` of the channels."""
    token = _PARTIAL_CHANNELS.set(int(k))
    try:
        yield
    finally:
        _PARTIAL_CHANNELS.reset(token)


@dataclass(frozen=True)
class Route:
    """How the edges of one forward pass run.

    Single path: ``ops[key]`` lists the ops an edge runs (a missing key: the edge is inactive).
    Continuous: ``weights[key]`` is the softmax weight vector over the key's candidates, and
    ``edge_weights[key]`` (when given) scales the edge's whole output.
    ``drop_prob`` is the drop-path probability applied to non-identity ops in training.
    """

    ops: Mapping[str, Sequence[str]] | None = None
    weights: Mapping[str, torch.Tensor] | None = None
    drop_prob: float = 0.0
    edge_weights: Mapping[str, torch.Tensor] | None = None
    """Continuous routes with edge normalisation: the weight (a scalar) of each edge's output."""


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob`` and rescale the rest (DARTS)."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` equal blocks of channels (ShuffleNet): with channels
    ``[a0 a1 | b0 b1]`` and 2 groups, ``[a0 b0 a1 b1]``."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def partial_channel_mix(
    x: torch.Tensor, k: int, ops: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """PC-DARTS's partial-channel connection: ``ops`` on the first ``C/k`` channels of ``x``;
    the other channels bypass them (2x2 max-pooled, ceil mode, when ``ops`` halves the spatial
    size), are appended, and the result is channel-shuffled in ``k`` groups. With ``k=1`` it
    is ``ops(x)`` (nothing bypasses, one group)."""
    c = x.shape[1] // k
    y = ops(x[:, :c])
    rest = x[:, c:]
    if y.shape[2:] != rest.shape[2:]:
        rest = (
            F.max_pool2d(rest, 2, 2, ceil_mode=True)
            if rest.shape[1]
            else rest.new_zeros((rest.shape[0], 0, *y.shape[2:]))  # k=1: nothing bypasses
        )
    return channel_shuffle(torch.cat([y, rest], dim=1), k)


class Edge(nn.Module):
    """One edge of a cell: its candidate ops, run as a :class:`Route` says.

    With a single candidate it is simply that op (the standalone network). ``channels``: the
    edge's input and output width, given by a space whose ``make(name, channels)`` can build
    a candidate at another width; inside :func:`partial_channel_scope` (a PC-DARTS supernet)
    such an edge is built with ops ``channels / K`` wide and runs them through
    :func:`partial_channel_mix`. ``partial`` is that ``K`` (1: ordinary edge).
    """

    def __init__(
        self,
        key: str,
        candidates: Sequence[str],
        make: Callable[..., nn.Module],
        channels: int | None = None,
    ) -> None:
        super().__init__()
        self.key = key
        self.names = tuple(dict.fromkeys(candidates))
        k = _PARTIAL_CHANNELS.get()
        self.partial = k if channels is not None and k > 1 else 1
        if self.partial > 1:
            assert channels is not None
            if channels % k:
                raise ConfigError(
                    f"partial_channels={k} must divide every edge's width; edge {key!r} has "
                    f"{channels} channels"
                )
            self.ops = nn.ModuleDict({name: make(name, channels // k) for name in self.names})
        else:
            self.ops = nn.ModuleDict({name: make(name) for name in self.names})

    def forward(self, x: torch.Tensor, route: Route) -> torch.Tensor | None:
        """The edge's output, or ``None`` when the route does not use the edge."""
        if route.weights is not None:
            weights = route.weights[self.key]
            out = self._partial(x, lambda h: self._mixture(h, weights))
            if route.edge_weights is not None:
                out = out * route.edge_weights[self.key]
            return out
        names = route.ops.get(self.key, ()) if route.ops is not None else ()
        if not names:
            return None
        return self._partial(x, lambda h: self._path(h, names, route.drop_prob))

    def _partial(
        self, x: torch.Tensor, ops: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        return ops(x) if self.partial == 1 else partial_channel_mix(x, self.partial, ops)

    def _path(self, x: torch.Tensor, names: Sequence[str], drop_prob: float) -> torch.Tensor:
        """The sum of the named ops (a single path), with drop-path in training."""
        out: torch.Tensor | None = None
        for name in names:
            op = self.ops[name]
            y = op(x)
            if drop_prob > 0.0 and self.training and not isinstance(op, nn.Identity):
                y = drop_path(y, drop_prob)
            out = y if out is None else out + y
        assert out is not None
        return out

    def _mixture(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Softmax-weighted sum of every candidate; ``none`` adds zeros, so it is skipped."""
        terms = [
            w * op(x)
            for w, (name, op) in zip(weights, self.ops.items(), strict=True)
            if name != "none"
        ]
        if not terms:
            return self.ops["none"](x)
        return torch.stack(terms).sum(dim=0) if len(terms) > 1 else terms[0]


class ArchParams(nn.Module):
    """Architecture parameters (DARTS alphas): one logit vector per edge key."""

    def __init__(self, candidates: Candidates, init_scale: float = 1e-3) -> None:
        super().__init__()
        self.keys = tuple(candidates)
        self.candidates = {key: tuple(ops) for key, ops in candidates.items()}
        self.alphas = nn.ParameterList(
            [nn.Parameter(init_scale * torch.randn(len(self.candidates[k]))) for k in self.keys]
        )

    def weights(self) -> dict[str, torch.Tensor]:
        """Softmax weights per key (differentiable)."""
        return {
            key: torch.softmax(alpha, dim=0)
            for key, alpha in zip(self.keys, self.alphas, strict=True)
        }

    def as_dict(self) -> dict[str, dict[str, float]]:
        """Softmax weights per key and op, as plain floats."""
        with torch.no_grad():
            return {
                key: dict(zip(self.candidates[key], w.tolist(), strict=True))
                for key, w in self.weights().items()
            }


class EdgeNormalization(nn.Module):
    """PC-DARTS's edge normalisation: one logit ``beta`` per input edge of a cell node; a node's
    edges are weighted by the softmax of its betas. ``groups``: the edge keys entering each node
    (each key in one group)."""

    def __init__(self, groups: Sequence[Sequence[str]], init_scale: float = 1e-3) -> None:
        super().__init__()
        self.groups = tuple(tuple(g) for g in groups)
        keys = [key for group in self.groups for key in group]
        if len(keys) != len(set(keys)):
            raise ValueError("an edge key may enter one node only")
        self.betas = nn.ParameterList(
            [nn.Parameter(init_scale * torch.randn(len(g))) for g in self.groups]
        )

    def weights(self) -> dict[str, torch.Tensor]:
        """Edge key -> its weight, a softmax over its node's edges (differentiable)."""
        out: dict[str, torch.Tensor] = {}
        for group, beta in zip(self.groups, self.betas, strict=True):
            out.update(zip(group, torch.softmax(beta, dim=0), strict=True))
        return out


def node_groups(net: nn.Module) -> list[tuple[str, ...]]:
    """The edge keys entering each node of the network's :class:`DagCell` s (cells of one kind
    share keys, so each node's group appears once)."""
    groups: dict[tuple[str, ...], None] = {}
    for module in net.modules():
        if isinstance(module, DagCell):
            for incoming in module.incoming.values():
                group = tuple(module.edges[name].key for _, name in incoming)
                if group:
                    groups.setdefault(group)
    return list(groups)


class RoutedNetwork(nn.Module):
    """A network whose edges run as a :class:`Route` says.

    A standalone network carries its genotype's ``path`` and runs it when called as ``net(x)``;
    ``drop_path_prob`` may be changed between epochs.
    """

    def __init__(self, path: Candidates | None = None) -> None:
        super().__init__()
        self.path = {k: tuple(v) for k, v in path.items()} if path is not None else None
        self.drop_path_prob = 0.0

    def forward(self, x: torch.Tensor, route: Route | None = None) -> Any:
        if route is None:
            if self.path is None:
                raise ValueError(
                    "this network holds candidate ops; pass a route (use its Supernet)"
                )
            route = Route(ops=self.path)
        return self.forward_route(x, replace(route, drop_prob=float(self.drop_path_prob)))

    @abstractmethod
    def forward_route(self, x: torch.Tensor, route: Route) -> Any:
        """Logits (or ``(logits, aux_logits)``) for a batch under a route."""

    def standalone_key(self, key: str) -> str:
        """The standalone network's name for one of this network's state-dict keys."""
        return key


class Supernet(nn.Module):
    """Every candidate op on every edge plus architecture parameters (weight sharing).

    ``mode="continuous"``: ``forward(x)`` is the DARTS softmax mixture of all candidates.
    ``forward(x, genotype=g)`` (any mode) runs only the ops of ``g`` (ENAS / one-shot
    evaluation); in ``"single_path"`` mode a genotype is required (or ``active`` must be set).
    ``edge_normalization``: PC-DARTS's betas (:class:`EdgeNormalization`, over the nodes of the
    network's cells), part of ``arch_parameters()`` and of the derivation.
    """

    def __init__(
        self,
        space: WeightSharingSpace,
        net: RoutedNetwork,
        mode: str,
        edge_normalization: bool = False,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ConfigError(f"supernet mode must be one of {', '.join(MODES)}; got {mode!r}")
        self.space = space
        self.mode = mode
        self.net = net
        self.arch = ArchParams(space.edge_candidates())
        self.edge_norm: EdgeNormalization | None = None
        if edge_normalization:
            groups = node_groups(net)
            if not groups:
                raise ConfigError(
                    f"space {space.name!r}: edge normalisation needs cells of nodes; "
                    "this supernet has none"
                )
            self.edge_norm = EdgeNormalization(groups)
        self.partial_channels = max(
            (m.partial for m in net.modules() if isinstance(m, Edge)), default=1
        )
        self.active: Genotype | None = None

    def forward(self, x: torch.Tensor, genotype: Genotype | None = None) -> Any:
        return self.net(x, route=self.route(genotype))

    def route(self, genotype: Genotype | None = None) -> Route:
        """The route of a forward pass: the genotype's path, else the continuous mixture."""
        genotype = genotype if genotype is not None else self.active
        if genotype is not None:
            self.space.validate(genotype)
            return Route(ops=self.space.edge_ops(genotype))
        if self.mode == "single_path":
            raise ValueError("a single_path supernet needs forward(x, genotype=...) or .active")
        edge_weights = self.edge_norm.weights() if self.edge_norm is not None else None
        return Route(weights=self.arch.weights(), edge_weights=edge_weights)

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters: one logit vector per edge key (alphas), then the edge
        normalisation's betas, if any."""
        betas = list(self.edge_norm.parameters()) if self.edge_norm is not None else []
        return [*self.alpha_parameters(), *betas]

    def alpha_parameters(self) -> list[nn.Parameter]:
        """The op logits only (one vector per edge key)."""
        return list(self.arch.parameters())

    def edge_weights(self) -> dict[str, float]:
        """Edge normalisation weight per edge key (empty without edge normalisation)."""
        if self.edge_norm is None:
            return {}
        with torch.no_grad():
            return {key: float(w) for key, w in self.edge_norm.weights().items()}

    def weight_parameters(self) -> list[nn.Parameter]:
        """The network weights (everything but the architecture parameters)."""
        return list(self.net.parameters())

    def arch_weights(self) -> dict[str, dict[str, float]]:
        """Softmax weight per edge key and op."""
        return self.arch.as_dict()

    def derive_genotype(self) -> Genotype:
        """The genotype the architecture parameters point to (DARTS discretisation); with edge
        normalisation every op weight is multiplied by its edge's weight first (PC-DARTS)."""
        weights = self.arch_weights()
        edges = self.edge_weights()
        if edges:
            weights = {
                key: {op: w * edges.get(key, 1.0) for op, w in ops.items()}
                for key, ops in weights.items()
            }
        return self.space.derive(weights)

    def path_keys(self, genotype: Genotype) -> list[str]:
        """Keys of ``self.net.state_dict()`` that a genotype's path uses."""
        if self.partial_channels > 1:
            raise ConfigError(
                "a partial-channel supernet's ops are 1/K as wide as a standalone network's; "
                "its paths' weights cannot be copied into one"
            )
        path = self.space.edge_ops(genotype)
        dropped: set[str] = set()
        for prefix, module in self.net.named_modules():
            if isinstance(module, Edge):
                used = set(path.get(module.key, ()))
                dropped.update(f"{prefix}.ops.{name}" for name in module.names if name not in used)
        return [
            key for key in self.net.state_dict() if not any(p in dropped for p in _prefixes(key))
        ]

    def extract_weights(self, genotype: Genotype) -> dict[str, torch.Tensor]:
        """The shared weights of a genotype's path, keyed as in its standalone network."""
        state = self.net.state_dict()
        return {self.net.standalone_key(key): state[key] for key in self.path_keys(genotype)}

    def load_path_into(self, net: nn.Module, genotype: Genotype) -> None:
        """Copy the shared weights of ``genotype`` into its standalone network (strict)."""
        net.load_state_dict(self.extract_weights(genotype), strict=True)


def _prefixes(key: str) -> list[str]:
    parts = key.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts))]


def load_path_into(net: nn.Module, supernet: Supernet, genotype: Genotype) -> None:
    """Copy ``supernet``'s weights for ``genotype`` into ``net = space.build(genotype)``."""
    supernet.load_path_into(net, genotype)


def build_standalone(
    space: WeightSharingSpace, genotype: Genotype, shape: NetShape, **net_options: Any
) -> RoutedNetwork:
    """The standalone network of a genotype at ``shape``: only its path's edges and ops."""
    space.validate(genotype)
    path = space.edge_ops(genotype)
    net = space.network(path, shape, **net_options)
    net.path = dict(path)
    return net


def build_supernet(
    space: WeightSharingSpace,
    shape: NetShape,
    mode: str = "continuous",
    *,
    partial_channels: int = 1,
    edge_normalization: bool = False,
    **net_options: Any,
) -> Supernet:
    """The supernet of a space at ``shape``: every candidate on every edge; with
    ``partial_channels=K > 1`` its edges run their ops on ``1/K`` of the channels, with
    ``edge_normalization`` its cell nodes weight their input edges (PC-DARTS, module doc)."""
    if mode not in MODES:
        raise ConfigError(f"supernet mode must be one of {', '.join(MODES)}; got {mode!r}")
    k = partial_channels
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"partial_channels must be an integer >= 1, got {k!r}")
    with partial_channel_scope(k):
        net = space.network(space.edge_candidates(), shape, **net_options)
    supernet = Supernet(space, net, mode, edge_normalization=bool(edge_normalization))
    if k > 1 and supernet.partial_channels == 1:
        raise ConfigError(
            f"space {space.name!r}: its supernet's edges cannot run on partial channels "
            "(spaces that support it: cell, nb201)"
        )
    return supernet


# --- network pieces shared by the cell-based spaces ------------------------------------------
def scaled(channels: int, width_mult: float) -> int:
    """``channels * width_mult`` rounded, at least 1."""
    return max(1, int(round(channels * width_mult)))


def conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """The stem: 3x3 conv (no bias, ``stride``) + BN."""
    conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out))


class ClassifierHead(nn.Sequential):
    """[BN-ReLU], global average pooling, linear."""

    def __init__(self, channels: int, num_classes: int, pre_act: bool = False) -> None:
        pre: list[nn.Module] = [nn.BatchNorm2d(channels), nn.ReLU()] if pre_act else []
        super().__init__(
            *pre, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)
        )


class AuxiliaryHead(nn.Sequential):
    """DARTS's CIFAR auxiliary head, with adaptive pooling to 2x2 so any input size works."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__(
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(768, num_classes),
        )


class ResidualReduction(nn.Module):
    """NAS-Bench-201's stride-2 ResNet basic block.

    Branch: ReLU-conv3x3(stride 2)-BN, ReLU-conv3x3-BN; shortcut: 2x2 average pool (ceil, so odd
    sizes give ``(H+1)//2``) and a 1x1 conv.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        conv = OPS.get("conv_3x3")
        self.branch = nn.Sequential(conv(c_in, c_out, 2), conv(c_out, c_out, 1))
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, 2, ceil_mode=True), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch(x) + self.shortcut(x)


class DagCell(nn.Module):
    """A DAG of nodes: ``n_inputs`` input nodes, then nodes that sum their incoming edges.

    ``edges[(j, i)]`` maps node ``i``'s state to node ``j`` (``i < j``). Inputs first pass through
    ``preprocess`` (one module per input, or none). The output concatenates the nodes in
    ``concat`` along channels, or is the last node when ``concat`` is ``None``.
    """

    def __init__(
        self,
        n_inputs: int,
        n_nodes: int,
        edges: Mapping[tuple[int, int], Edge],
        preprocess: Sequence[nn.Module] = (),
        concat: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.n_inputs, self.n_nodes = n_inputs, n_nodes
        self.concat = tuple(concat) if concat is not None else None
        self.preprocess = nn.ModuleList(preprocess)
        self.edges = nn.ModuleDict({f"e{j}_{i}": edge for (j, i), edge in sorted(edges.items())})
        self.incoming = {
            j: tuple((i, f"e{j}_{i}") for i in range(j) if (j, i) in edges)
            for j in range(n_inputs, n_nodes)
        }

    def forward(self, inputs: Sequence[torch.Tensor], route: Route) -> torch.Tensor:
        states = list(inputs[-self.n_inputs :])
        if len(self.preprocess):
            states = [pre(x) for pre, x in zip(self.preprocess, states, strict=True)]
        for j in range(self.n_inputs, self.n_nodes):
            total: torch.Tensor | None = None
            for i, name in self.incoming[j]:
                y = self.edges[name](states[i], route)
                if y is not None:
                    total = y if total is None else total + y
            if total is None:
                raise ValueError(f"node {j} of a cell has no active incoming edge")
            states.append(total)
        if self.concat is None:
            return states[-1]
        return torch.cat([states[k] for k in self.concat], dim=1)


class CellNetwork(RoutedNetwork):
    """Stem, a stack of blocks, classifier head; optional auxiliary head.

    A :class:`DagCell` block receives the outputs of the two previous blocks (both are the stem's
    output at first); any other block maps the previous output. With ``aux=(index, head)`` the
    network returns ``(logits, aux_logits)`` in training mode, ``aux_logits`` computed from the
    output of block ``index``; in eval mode it returns logits only.
    """

    def __init__(
        self,
        stem: nn.Module,
        blocks: Sequence[nn.Module],
        head: nn.Module,
        aux: tuple[int, nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.head = head
        self.aux_index = aux[0] if aux is not None else -1
        self.aux_head = aux[1] if aux is not None else None

    def forward_route(self, x: torch.Tensor, route: Route) -> Any:
        prev = cur = self.stem(x)
        aux_logits = None
        for index, block in enumerate(self.blocks):
            out = block((prev, cur), route) if isinstance(block, DagCell) else block(cur)
            prev, cur = cur, out
            if index == self.aux_index and self.aux_head is not None and self.training:
                aux_logits = self.aux_head(cur)
        logits = self.head(cur)
        return (logits, aux_logits) if aux_logits is not None else logits


class CellOp(nn.Module):
    """A :class:`DagCell` with one input used as an op, running a fixed path (hierarchical motifs)."""

    def __init__(self, cell: DagCell, path: Candidates) -> None:
        super().__init__()
        self.cell = cell
        self.route = Route(ops={k: tuple(v) for k, v in path.items()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cell((x,), self.route)


class EdgeChain(RoutedNetwork):
    """Stem, one :class:`Edge` per layer, global average pooling and a head :class:`Edge`.

    The chain space's supernet; its standalone network (``ChainNet``) has the chosen candidate
    module directly at ``layers.{i}`` and ``head``, so ``standalone_key`` drops ``.ops.<name>``.
    """

    def __init__(self, stem: nn.Module, layers: Sequence[Edge], head: Edge) -> None:
        super().__init__()
        self.stem = stem
        self.layers = nn.ModuleList(layers)
        self.head = head

    def forward_route(self, x: torch.Tensor, route: Route) -> Any:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, route)
        return self.head(x.mean(dim=(2, 3)), route)

    def standalone_key(self, key: str) -> str:
        return _CANDIDATE.sub("", key, count=1)
