"""The weight-sharing network of a :class:`~nasplat.nn.ModelSpace`.

It follows the protocol the one-shot strategies use on the built-in spaces' supernets:
``forward(x, genotype=None)``, ``arch_parameters``, ``alpha_parameters``, ``weight_parameters``,
``arch_weights``, ``derive_genotype``, ``extract_weights``/``load_path_into`` and ``active``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nasplat.genotype import Genotype, Value
from nasplat.nn import frame as frames
from nasplat.nn.choices import LayerChoice
from nasplat.nn.layers import MutableLayer

if TYPE_CHECKING:
    from nasplat.nn.space import ModelSpace

SUPERNET_MODES = ("continuous", "single_path")


class ModelSupernet(nn.Module):
    """The user's module built with every candidate, plus one alpha vector per searched label.

    ``searched`` maps the labels weight sharing searches to their choices; ``fixed`` maps the
    value choices ordinary code consumed to the one value they take here. ``forward(x)`` in
    ``continuous`` mode mixes every searched label by ``softmax(alpha)``; with a genotype (or
    ``active``) only its path runs, as it must in ``single_path`` mode.
    """

    def __init__(
        self,
        space: ModelSpace,
        net: nn.Module,
        searched: Mapping[str, tuple[Value, ...]],
        fixed: Mapping[str, Value],
        mode: str,
    ) -> None:
        super().__init__()
        self.space, self.net, self.mode = space, net, mode
        self.searched = dict(searched)
        self.fixed = dict(fixed)
        self.labels = tuple(self.searched)
        self.alphas = nn.ParameterList(
            [nn.Parameter(1e-3 * torch.randn(len(self.searched[k]))) for k in self.labels]
        )
        self.active: Genotype | None = None

    def forward(self, x: Any, genotype: Genotype | None = None) -> Any:
        with frames.routing(self.route(genotype)):
            return self.net(x)

    def route(self, genotype: Genotype | None = None) -> frames.Route:
        """The genotype's (or ``active``'s) single path, else the continuous mixture."""
        genotype = genotype if genotype is not None else self.active
        if genotype is not None:
            self.space.validate(genotype)
            return frames.Route(self.path_values(genotype), {})
        if self.mode == "single_path":
            raise ValueError("a single_path supernet needs forward(x, genotype=...) or .active")
        weights = {
            k: torch.softmax(a, dim=0) for k, a in zip(self.labels, self.alphas, strict=True)
        }
        return frames.Route(self.fixed, weights)

    def path_values(self, genotype: Genotype) -> dict[str, Value]:
        """The values the supernet runs for a genotype (fixed value choices keep theirs)."""
        return {**{k: genotype[k] for k in self.labels}, **self.fixed}

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas)

    def alpha_parameters(self) -> list[nn.Parameter]:
        """The choice logits (here all of ``arch_parameters``)."""
        return list(self.alphas)

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.net.parameters())

    def arch_weights(self) -> dict[str, dict[str, float]]:
        """Softmax weight per searched label and choice (choices as strings)."""
        with torch.no_grad():
            return {
                key: {
                    str(c): w
                    for c, w in zip(self.searched[key], alpha.softmax(0).tolist(), strict=True)
                }
                for key, alpha in zip(self.labels, self.alphas, strict=True)
            }

    def derive_genotype(self) -> Genotype:
        """Argmax of every searched label; fixed labels their value, the rest their first."""
        chosen: dict[str, Value] = {
            key: self.searched[key][int(alpha.argmax())]
            for key, alpha in zip(self.labels, self.alphas, strict=True)
        }
        return self.space.canonicalize(
            self.space.genotype(
                {
                    d.name: chosen.get(d.name, self.fixed.get(d.name, d.choices[0]))
                    for d in self.space.decisions()
                }
            )
        )

    def extract_weights(self, genotype: Genotype) -> dict[str, torch.Tensor]:
        """The shared weights of a genotype's path, keyed as in ``space.build(genotype)``."""
        self.space.validate(genotype)
        state: dict[str, torch.Tensor] = {}
        _collect(self.net, "", self.path_values(genotype), state)
        return state

    def load_path_into(self, net: nn.Module, genotype: Genotype) -> None:
        """Copy the shared weights of ``genotype`` into its standalone network (strict)."""
        net.load_state_dict(self.extract_weights(genotype), strict=True)


def _collect(
    module: nn.Module, prefix: str, values: Mapping[str, Value], out: dict[str, torch.Tensor]
) -> None:
    """The standalone state of ``module``: chosen candidates in place of layer choices, sliced
    weights of value-choice layers."""
    if isinstance(module, LayerChoice):
        _collect(module.candidates[str(values[module.label])], prefix, values, out)
        return
    if isinstance(module, MutableLayer):
        out.update(
            {prefix + k: v.detach().clone() for k, v in module.standalone_state(values).items()}
        )
        return
    for name, param in module._parameters.items():
        if param is not None:
            out[prefix + name] = param.detach().clone()
    for name, buffer in module._buffers.items():
        if buffer is not None and name not in module._non_persistent_buffers_set:
            out[prefix + name] = buffer.detach().clone()
    for name, child in module._modules.items():
        if child is not None:
            _collect(child, f"{prefix}{name}.", values, out)
