"""The operator library: importing this package declares every op in ``nasplat.registry.OPS``.

The op modules import torch, so the package only *declares* which module registers which op
(:meth:`nasplat.registry.Registry.declare`); a module is imported on the first call of one of
its ops. See docs/ops.md for the table of ops, their stride-2 behaviour and keywords.
"""

from __future__ import annotations

from typing import Any

from nasplat.registry import OPS

DECLARED: dict[str, tuple[str, ...]] = {
    "search_spaces.ops.basic": ("skip_connect", "none"),
    "search_spaces.ops.conv": (
        "conv_1x1", "conv_3x3", "conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "sep_conv_3x3",
        "sep_conv_5x5", "sep_conv_7x7", "dw_conv_3x3", "group_conv_3x3", "conv_7x1_1x7",
        "trans_conv_3x3",
    ),
    "search_spaces.ops.pooling": (
        "max_pool_3x3", "avg_pool_3x3", "l2_pool_3x3", "stochastic_pool_3x3",
    ),
    "search_spaces.ops.attention": (
        "self_attention", "se_attention", "spatial_attention", "cbam", "pixel_attention",
    ),
    "search_spaces.ops.graph": ("gcn", "graph_sage", "gat"),
    "search_spaces.ops.mixer": ("mixer_block",),
    "search_spaces.ops.residual": ("res_basic", "res_bottleneck"),
}  # fmt: skip
"""Which module registers which op (a test checks it against what the modules register)."""

for _module, _names in DECLARED.items():
    OPS.declare(_module, *_names)

__all__ = ["ACTIVATIONS", "DECLARED", "NORMS", "make_act", "make_norm", "out_size"]


def __getattr__(name: str) -> Any:  # the shared helpers, imported (with torch) on first use
    if name in ("ACTIVATIONS", "NORMS", "make_act", "make_norm", "out_size"):
        from search_spaces.ops import common

        return getattr(common, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
