"""Search strategies; importing the package registers them all.

The ones that import torch, Optuna or NumPy (rl, darts, enas, tpe, nsga2, local-search,
bayesopt) are declared (:meth:`nasplat.registry.Registry.declare`) and imported when first
looked up; their options are declared in :mod:`strategies.declared`.
"""

from nasplat.registry import STRATEGIES
from strategies import declared, evolution, nni_adapter, random_search  # noqa: F401

DECLARED: dict[str, tuple[str, ...]] = {
    "strategies.rl": ("rl",),
    "strategies.darts": ("darts",),
    "strategies.enas": ("enas",),
    "strategies.tpe": ("tpe",),
    "strategies.nsga2": ("nsga2",),
    "strategies.local_search": ("local-search",),
    "strategies.bayesopt": ("bayesopt",),
}
"""Which module registers which strategy (a test checks it against what the modules register)."""

for _module, _names in DECLARED.items():
    STRATEGIES.declare(_module, *_names)
for _name, _options in declared.OPTIONS.items():
    STRATEGIES.declare_options(_name, _options)
