"""Layers whose sizes may be value choices: ``Conv2d``, ``Linear``, ``BatchNorm1d/2d``.

Outside a supernet (or given plain sizes) each *is* the plain torch layer. In a supernet a layer
given value choices holds the weights of its largest size and is searched by weight sharing:

- single path: the route's size is a slice of the weights (the first ``c`` output and input
  channels; the centre ``k x k`` of the kernel), so it computes exactly what the standalone
  layer with those weights computes (:meth:`MutableLayer.standalone_state`);
- continuous (DARTS): the layer runs at its largest size; a channel choice multiplies the output
  by the soft mask ``m[c] = sum_v w_v [c < v]`` (FBNetV2's channel masking), a kernel choice sums
  the kernel-sliced convolutions weighted by ``w_k``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from nasplat.errors import ConfigError
from nasplat.nn import frame as frames
from nasplat.nn.choices import ValueChoice, plain


@dataclass(frozen=True)
class Dim:
    """A size that is an int (``label`` None) or a value choice among ``values``."""

    label: str | None
    values: tuple[int, ...]

    @classmethod
    def of(cls, size: Any, what: str) -> Dim:
        if not isinstance(size, ValueChoice):
            return cls(None, (int(size),))
        if not all(type(v) is int and v > 0 for v in size.values):
            raise ConfigError(f"{what} choice {size.label!r} must have positive int values")
        return cls(size.label, tuple(size.values))

    @property
    def max(self) -> int:
        return max(self.values)

    def resolve(self, route: frames.Route) -> tuple[int, torch.Tensor | None]:
        """``(size, None)`` on a single path; ``(largest size, softmax weights)`` when mixed."""
        if self.label is None:
            return self.values[0], None
        weights = route.weights.get(self.label)
        if weights is None:
            return int(route.values[self.label]), None  # type: ignore[arg-type]
        return self.max, weights

    def mask(self, weights: torch.Tensor, ndim: int) -> torch.Tensor:
        """The soft channel mask, shaped to broadcast over an ``ndim``-d activation (dim 1)."""
        steps = torch.arange(self.max, device=weights.device)
        hard = torch.stack([(steps < v).to(weights.dtype) for v in self.values])
        soft = weights @ hard
        return soft.view(1, -1, *([1] * (ndim - 2))) if ndim > 1 else soft


class MutableLayer(nn.Module):
    """Base of the value-choice layers: the constructor returns the plain torch layer unless it
    is in a supernet with a value choice among the ``searched`` arguments."""

    searched: ClassVar[tuple[str, ...]] = ()
    torch_class: ClassVar[type[nn.Module]]
    """The plain torch layer this layer becomes outside a supernet."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:  # copy.deepcopy / pickle
            return super().__new__(cls)
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(list(bound.arguments.items())[1:])
        if any(isinstance(arguments[name], ValueChoice) for name in cls.searched):
            return super().__new__(cls)
        return cls.plain_layer(**{k: plain(v) for k, v in arguments.items()})

    @classmethod
    def plain_layer(cls, **arguments: Any) -> nn.Module:
        """The torch layer for plain arguments."""
        return cls.torch_class(**arguments)

    def standalone_state(self, values: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """This layer's weights sliced for the single path ``values`` (label -> value), keyed
        as in the standalone torch layer."""
        raise NotImplementedError


def _same_padding(kernel: int, dilation: int) -> int:
    if kernel % 2 == 0:
        raise ConfigError(f'padding="same" needs an odd kernel size, got {kernel}')
    return dilation * (kernel - 1) // 2


def _crop(weight: torch.Tensor, kernel: int) -> torch.Tensor:
    start = (weight.shape[-1] - kernel) // 2
    return weight[..., start : start + kernel, start : start + kernel]


class Conv2d(MutableLayer):
    """``torch.nn.Conv2d`` whose ``in_channels``, ``out_channels`` and (square, odd)
    ``kernel_size`` may be value choices. ``padding="same"`` means ``dilation * (k - 1) // 2``
    for the chosen ``k`` (any stride). ``groups`` is 1, or the same value choice as both channel
    counts (depthwise); other group counts need plain channel counts."""

    searched = ("in_channels", "out_channels", "kernel_size")
    torch_class = nn.Conv2d

    def __init__(
        self,
        in_channels: Any,
        out_channels: Any,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: Any = 1,
        bias: Any = True,
    ) -> None:
        super().__init__()
        self.in_dim = Dim.of(in_channels, "in_channels")
        self.out_dim = Dim.of(out_channels, "out_channels")
        self.kernel_dim = Dim.of(kernel_size, "kernel_size")
        self.stride, self.dilation = plain(stride), plain(dilation)
        self.padding = plain(padding)
        self.depthwise = isinstance(groups, ValueChoice)
        if self.depthwise and not (
            groups.label == self.in_dim.label == self.out_dim.label  # type: ignore[union-attr]
        ):
            raise ConfigError("Conv2d: a groups choice must be the choice of both channel counts")
        self.groups = self.in_dim.max if self.depthwise else int(groups)
        if self.groups != 1 and not self.depthwise and (self.in_dim.label or self.out_dim.label):
            raise ConfigError("Conv2d: channel choices need groups=1 or depthwise groups")
        ref = nn.Conv2d(
            self.in_dim.max,
            self.out_dim.max,
            self.kernel_dim.max,
            groups=self.groups,
            bias=bool(plain(bias)),
        )
        self.weight, self.bias = ref.weight, ref.bias

    @classmethod
    def plain_layer(cls, **arguments: Any) -> nn.Module:
        if arguments["padding"] == "same":
            arguments["padding"] = _same_padding(arguments["kernel_size"], arguments["dilation"])
        return super().plain_layer(**arguments)

    def _pad(self, kernel: int) -> Any:
        return _same_padding(kernel, self.dilation) if self.padding == "same" else self.padding

    def _sliced(self, route: frames.Route) -> tuple[torch.Tensor, Any, int, torch.Tensor | None]:
        """``(weight, bias, groups, output mask weights)`` at the route's channel counts."""
        cin, _ = self.in_dim.resolve(route)
        cout, out_weights = self.out_dim.resolve(route)
        if self.depthwise:
            weight, groups = self.weight[:cout], cout
        else:
            weight, groups = self.weight[:cout, : cin // self.groups], self.groups
        bias = self.bias[:cout] if self.bias is not None else None
        return weight, bias, groups, out_weights

    def _conv(self, x: torch.Tensor, weight: Any, bias: Any, groups: int, k: int) -> Any:
        weight = _crop(weight, k)
        return F.conv2d(x, weight, bias, self.stride, self._pad(k), self.dilation, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        active = frames.route()
        weight, bias, groups, out_weights = self._sliced(active)
        k, k_weights = self.kernel_dim.resolve(active)
        if k_weights is None:
            y = self._conv(x, weight, bias, groups, k)
        else:
            terms = [
                w * self._conv(x, weight, bias, groups, kv)
                for w, kv in zip(k_weights, self.kernel_dim.values, strict=True)
            ]
            y = torch.stack(terms).sum(dim=0)
        return y if out_weights is None else y * self.out_dim.mask(out_weights, y.dim())

    def standalone_state(self, values: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        route = frames.Route(values, {})
        weight, bias, _, _ = self._sliced(route)
        state = {"weight": _crop(weight, self.kernel_dim.resolve(route)[0])}
        return state if bias is None else {**state, "bias": bias}


class Linear(MutableLayer):
    """``torch.nn.Linear`` whose ``in_features`` and ``out_features`` may be value choices."""

    searched = ("in_features", "out_features")
    torch_class = nn.Linear

    def __init__(self, in_features: Any, out_features: Any, bias: Any = True) -> None:
        super().__init__()
        self.in_dim = Dim.of(in_features, "in_features")
        self.out_dim = Dim.of(out_features, "out_features")
        ref = nn.Linear(self.in_dim.max, self.out_dim.max, bias=bool(plain(bias)))
        self.weight, self.bias = ref.weight, ref.bias

    def standalone_state(self, values: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        route = frames.Route(values, {})
        cin, cout = self.in_dim.resolve(route)[0], self.out_dim.resolve(route)[0]
        state = {"weight": self.weight[:cout, :cin]}
        return state if self.bias is None else {**state, "bias": self.bias[:cout]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        active = frames.route()
        cin, _ = self.in_dim.resolve(active)
        cout, out_weights = self.out_dim.resolve(active)
        bias = self.bias[:cout] if self.bias is not None else None
        y = F.linear(x, self.weight[:cout, :cin], bias)
        return y if out_weights is None else y * self.out_dim.mask(out_weights, 1)


class _BatchNorm(MutableLayer):
    """Batch normalisation whose ``num_features`` may be a value choice (running statistics
    tracked; the sliced statistics are updated in place)."""

    searched = ("num_features",)

    def __init__(
        self,
        num_features: Any,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        if not track_running_stats:
            raise ConfigError("a BatchNorm with a num_features choice must track running stats")
        self.dim = Dim.of(num_features, "num_features")
        ref = self.torch_class(self.dim.max, eps, momentum, affine)
        self.eps, self.momentum, self.affine = eps, momentum, affine
        self.weight, self.bias = ref.weight, ref.bias
        self.register_buffer("running_mean", ref.running_mean)
        self.register_buffer("running_var", ref.running_var)
        self.register_buffer("num_batches_tracked", ref.num_batches_tracked)

    def standalone_state(self, values: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        c, _ = self.dim.resolve(frames.Route(values, {}))
        state = {
            "running_mean": self.running_mean[:c],
            "running_var": self.running_var[:c],
            "num_batches_tracked": self.num_batches_tracked,
        }
        return {**state, "weight": self.weight[:c], "bias": self.bias[:c]} if self.affine else state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, mixed = self.dim.resolve(frames.route())
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        weight = self.weight[:c] if self.affine else None
        bias = self.bias[:c] if self.affine else None
        y = F.batch_norm(
            x,
            self.running_mean[:c],
            self.running_var[:c],
            weight,
            bias,
            self.training,
            factor,
            self.eps,
        )
        return y if mixed is None else y * self.dim.mask(mixed, y.dim())


class BatchNorm2d(_BatchNorm):
    __doc__ = _BatchNorm.__doc__
    torch_class = nn.BatchNorm2d


class BatchNorm1d(_BatchNorm):
    __doc__ = _BatchNorm.__doc__
    torch_class = nn.BatchNorm1d
