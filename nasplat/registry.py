"""One small generic registry type and one instance per kind of plugin.

Register with a decorator; a duplicate name is an error; an unknown name is an error that
lists the known ones. Variants are keyword arguments, not new names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from nasplat.errors import ConfigError, NasplatError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object mapping with metadata (family, description, ...) per entry.

    Not thread safe for registration; registration happens at import time.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator that registers its target under ``name`` with optional metadata."""

        def decorator(obj: T) -> T:
            self.add(name, obj, **meta)
            return obj

        return decorator

    def add(self, name: str, obj: T, **meta: Any) -> None:
        """Register ``obj``; registering the same object again (a re-run notebook cell, a module
        imported twice) is a no-op, another object under a taken name is an error."""
        if name in self._items:
            if self._items[name] is obj:
                return
            raise ValueError(f"duplicate {self.kind} name {name!r}")
        self._items[name] = obj
        doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
        meta.setdefault("description", doc[0] if doc else "")
        self._meta[name] = meta

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def create(self, name: str, *args: Any, **options: Any) -> Any:
        """Build the entry ``name`` with ``options``; a bad option is one ConfigError line that
        names the entry and, where its signature shows them, the options it accepts."""
        factory: Any = self.get(name)
        try:
            return factory(*args, **options)
        except NasplatError:
            raise
        except (TypeError, ValueError) as exc:
            accepted = option_names(factory)
            hint = f"; options: {', '.join(accepted)}" if accepted else ""
            raise ConfigError(f"{self.kind} {name!r}: {exc}{hint}") from None

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return dict(self._meta[name])

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


def option_names(factory: Any) -> list[str]:
    """The keyword options a plugin's constructor declares (without the positional ones)."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in parameters
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is not p.empty
    ]


OPS: Registry[Callable[..., Any]] = Registry("op")
SPACES: Registry[type] = Registry("space")
STRATEGIES: Registry[type] = Registry("strategy")
EVALUATORS: Registry[type] = Registry("evaluator")
DATASETS: Registry[Callable[..., Any]] = Registry("dataset")
EXECUTORS: Registry[type] = Registry("executor")
PROXIES: Registry[Callable[..., Any]] = Registry("proxy")

_BUILTIN_MODULES = (  # imported by name: the core never imports a plugin package statically
    "nasplat.ml.data",
    "nasplat.run.local",
    "nasplat.run.ray",
    "search_spaces",
    "strategies",
    "evaluators",
)
_loaded = False


def load_builtins() -> None:
    """Import the built-in plugins and any ``nasplat.plugins`` entry points (idempotent)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib
    from importlib.metadata import entry_points

    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    for ep in entry_points(group="nasplat.plugins"):
        ep.load()
