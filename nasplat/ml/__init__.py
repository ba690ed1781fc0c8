"""Machine learning support: datasets, the training loop, profiling (torch imported here).

Importing the package only declares the built-in datasets
(:meth:`nasplat.registry.Registry.declare`): ``nasplat.ml.data``, which imports torch, is
imported on a dataset's first load.
"""

from nasplat.registry import DATASETS

DECLARED: dict[str, tuple[str, ...]] = {
    "nasplat.ml.data": ("digits", "fashion-mnist", "cifar10", "synthetic"),
}
"""Which module registers which dataset (a test checks it against what the module registers)."""

for _module, _names in DECLARED.items():
    DATASETS.declare(_module, *_names)
