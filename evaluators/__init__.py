"""Evaluators; importing the package registers them all.

The zero-cost proxies import torch: they are declared
(:meth:`nasplat.registry.Registry.declare`) and imported on a proxy's first call.
"""

from evaluators import (  # noqa: F401
    early_stop,
    ladder,
    low_fidelity,
    objective,
    proxy,
    tabular,
    train,
)
from nasplat.registry import PROXIES

DECLARED: dict[str, tuple[str, ...]] = {
    "evaluators.zero_cost": ("synflow", "naswot", "jacov", "grad_norm", "snip", "params", "flops"),
}
"""Which module registers which proxy (a test checks it against what the module registers)."""

for _module, _names in DECLARED.items():
    PROXIES.declare(_module, *_names)
