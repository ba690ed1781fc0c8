"""nasplat: a neural architecture search platform.

``import nasplat`` is light: torch and the plugins are imported only when used.
"""

from __future__ import annotations

from typing import Any

from nasplat.budget import Budget, EvalResult
from nasplat.errors import InvalidGenotypeError, NasplatError
from nasplat.genotype import Decision, Genotype
from nasplat.registry import Registry

__version__ = "0.1.0"

__all__ = [
    "Budget",
    "Decision",
    "EvalResult",
    "Genotype",
    "InvalidGenotypeError",
    "NasplatError",
    "Registry",
    "Study",
    "TrialContext",
    "build",
    "create_study",
    "get_space",
    "load_study",
    "profile",
]

_LAZY = {
    "create_study": "nasplat.api",
    "load_study": "nasplat.api",
    "Study": "nasplat.api",
    "TrialContext": "nasplat.objective",
}


def __getattr__(name: str) -> Any:
    """The Python API, imported on first use (``import nasplat`` stays light)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nasplat' has no attribute {name!r}")


def get_space(name: str, **options: Any) -> Any:
    """A search space instance by registry name."""
    from nasplat.registry import SPACES, load_builtins

    load_builtins()
    return SPACES.get(name)(**options)


def build(
    genotype: Genotype | str,
    shape: Any = None,
    *,
    space_options: dict[str, Any] | None = None,
    **net_options: Any,
) -> Any:
    """Build the ``nn.Module`` of a genotype with its space's builder.

    ``genotype`` is a Genotype, its JSON, or the path of a JSON file written by
    ``nasplat export``, whose ``space_options`` and ``shape`` (the trial's network shape) are used
    unless given here. ``shape`` is a :class:`nasplat.shape.NetShape` (or its dict; default
    ``NetShape()``); ``net_options`` are the space's own network options.
    """
    from nasplat.shape import NetShape

    stored_shape = None
    if isinstance(genotype, str):
        from nasplat.genotype_io import load_exported

        genotype, stored_options, stored_shape = load_exported(genotype)
        space_options = stored_options if space_options is None else space_options
    if isinstance(shape, dict):
        shape = NetShape.from_dict(shape)
    space = get_space(genotype.space, **(space_options or {}))
    space.validate(genotype)
    return space.build(genotype, shape or stored_shape, **net_options)


def profile(module: Any, input_shape: tuple[int, ...]) -> dict[str, float]:
    """Parameter count and FLOPs of a module for one input shape (torch's flop counter)."""
    from nasplat.ml.profiling import profile as _profile

    return _profile(module, input_shape)
