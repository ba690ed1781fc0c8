"""The operator library: importing this package registers every op in ``nasplat.registry.OPS``.

See docs/ops.md for the table of ops, their stride-2 behaviour and keywords.
"""

from search_spaces.ops import attention, basic, conv, graph, mixer, pooling, residual  # noqa: F401
from search_spaces.ops.common import ACTIVATIONS, NORMS, make_act, make_norm, out_size

__all__ = ["ACTIVATIONS", "NORMS", "make_act", "make_norm", "out_size"]
