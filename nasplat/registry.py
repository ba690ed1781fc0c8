"""One small generic registry type and one instance per kind of plugin.

Register with a decorator; a duplicate name is an error; an unknown name is an error that
lists the known ones. Variants are keyword arguments, not new names. A name of the form
``package.module:attr`` that is not registered is imported on first use (so ``--space
mypackage.models:MySpace`` works without an entry point) and registered under that name.

A plugin package can *declare* names that a module registers (:meth:`Registry.declare`)
without importing that module: the module is imported when the entry is first needed, so
registering the built-ins does not import torch; such a package may declare the entries'
options too (:meth:`Registry.declare_options`), so listing them imports nothing either. ``get``
imports it then (a class is returned
as it is), except in a registry of callables (ops, datasets, proxies), whose ``get`` returns a
:class:`Deferred` stand-in that imports the module on its first call: a space can check its
operator names, and a table search run, without importing torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from nasplat.errors import ConfigError, NasplatError, UnknownNameError
from nasplat.options import (
    DATA_SETTINGS,
    Option,
    check_options,
    declared_options,
    signature_options,
)

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object mapping with metadata (family, description, ...) per entry.

    Not thread safe for registration; registration happens at import time.
    """

    def __init__(
        self,
        kind: str,
        adapt: Callable[[Any, str], Any] | None = None,
        *,
        callables: bool = False,
        context: tuple[str, ...] = (),
    ) -> None:
        self.kind = kind
        self.context = context  # keywords the framework passes besides an entry's options
        self._items: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._options: dict[str, tuple[Option, ...]] = {}
        self._adapt = adapt
        self._callables = callables  # ``get`` of a declared entry: a Deferred, no import

    def declare(self, module: str, *names: str) -> None:
        """``names`` are registered by importing ``module``; import it only when one of them is
        first used (see the module docstring). A test checks that the module registers exactly
        what it declares."""
        for name in names:
            if name not in self._items:
                self._items[name] = Deferred(self.kind, name, module, self)  # type: ignore[assignment]

    def declare_options(self, name: str, options: tuple[Option, ...]) -> None:
        """The options of a declared entry, known without importing its module (the entry's
        class declares the same tuple as its ``OPTIONS``; a test checks it)."""
        self._options[name] = options

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator that registers its target under ``name`` with optional metadata."""

        def decorator(obj: T) -> T:
            self.add(name, obj, **meta)
            return obj

        return decorator

    def add(self, name: str, obj: T, *, replace: bool = False, **meta: Any) -> None:
        """Register ``obj``. Registering the same object again (a module imported twice) is a
        no-op; a new definition of the same thing (same module and qualified name: a re-run
        notebook cell, a reloaded module) replaces the old one; another object under a taken
        name is an error unless ``replace`` (the Python API's objects from a script)."""
        old = self._items.get(name)
        if isinstance(obj, Deferred) and old is not None and not isinstance(old, Deferred):
            if (_origin(old) or ("",))[0] == obj.module:
                return  # a declaration shipped to a process that has imported the module
        if isinstance(old, Deferred) and not isinstance(obj, Deferred):
            if (_origin(obj) or ("",))[0] != old.module and not replace:
                raise ValueError(f"duplicate {self.kind} name {name!r} (declared by {old.module})")
            replace = True
        if name in self._items and not replace:
            if self._items[name] is obj:
                return
            if _origin(self._items[name]) != _origin(obj) or _origin(obj) is None:
                raise ValueError(f"duplicate {self.kind} name {name!r}")
        self._items[name] = obj
        doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
        meta.setdefault("description", doc[0] if doc else "")
        self._meta[name] = meta

    def get(self, name: str) -> T:
        if name not in self._items and isinstance(name, str) and ":" in name:
            self._import(name)
        if name not in self._items and load_entry_points():  # a plugin may register it
            return self.get(name)
        try:
            obj = self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {known}") from None
        if isinstance(obj, Deferred) and not self._callables:
            return self.resolve(name)
        return obj

    def resolve(self, name: str) -> T:
        """The registered object itself, importing the module that declared it if need be."""
        obj = self.get(name) if name not in self._items else self._items[name]
        if not isinstance(obj, Deferred):
            return obj
        import importlib

        importlib.import_module(obj.module)
        real = self._items[name]
        if isinstance(real, Deferred):
            raise NasplatError(f"module {obj.module} did not register the {self.kind} {name!r}")
        return real

    def _import(self, spec: str) -> None:
        """Register the object a ``package.module:attr`` name points to (adapted for this kind)."""
        import importlib

        module_name, _, attr = spec.partition(":")
        if module_name == "__main__":
            raise UnknownNameError(
                f"{self.kind} {spec!r} was defined in a script or notebook that this process "
                "did not run: pass the object itself again (e.g. load_study(..., space=...)) or "
                "move it into an importable module"
            )
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError, ValueError) as exc:
            raise UnknownNameError(f"cannot import {self.kind} {spec!r}: {exc}") from None
        if self._adapt is not None:
            obj = self._adapt(obj, spec)
        self.add(spec, obj)

    def create(self, name: str, *args: Any, **options: Any) -> Any:
        """Build the entry ``name`` with ``options`` (and the framework's ``context`` keywords).
        An option the entry does not declare, or a bad value, is one ConfigError line that
        names the entry and the options it knows."""
        factory: Any = self.get(name)
        declared = self._options.get(name, declared_options(factory))
        if declared is not None:
            check_options(self.kind, name, declared, options, self.context)
        try:
            return factory(*args, **options)
        except NasplatError:
            raise
        except (TypeError, ValueError) as exc:
            accepted = [option.name for option in self.options(name)]
            hint = f"; options: {', '.join(accepted)}" if accepted else ""
            raise ConfigError(f"{self.kind} {name!r}: {exc}{hint}") from None

    def options(self, name: str) -> tuple[Option, ...]:
        """The options of entry ``name``: as declared (with :meth:`declare_options`: no import),
        else from its constructor's signature (less the ``context`` keywords)."""
        if name in self._options:
            return self._options[name]
        factory = self.resolve(name)
        declared = declared_options(factory)
        return declared if declared is not None else signature_options(factory, self.context)

    def meta(self, name: str) -> dict[str, Any]:
        self.resolve(name)
        return dict(self._meta[name])

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


class Deferred:
    """A declared entry whose module is not imported yet: calling it imports the module (which
    registers the real object in its place) and calls that. Pickles by kind and name."""

    def __init__(
        self, kind: str, name: str, module: str, registry: Registry[Any] | None = None
    ) -> None:
        self.kind, self.name, self.module = kind, name, module
        self._registry = registry  # None: the built-in registry of this kind
        self._target: Any = None

    def target(self) -> Any:
        if self._target is None:
            registry = self._registry or REGISTRIES[self.kind]
            self._target = registry.resolve(self.name)
        return self._target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.target()(*args, **kwargs)

    @property
    def __signature__(self) -> Any:  # what ``inspect.signature`` reports: the target's
        import inspect

        return inspect.signature(self.target())

    def __reduce__(self) -> tuple[Any, ...]:
        return (Deferred, (self.kind, self.name, self.module))

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name!r} from {self.module} (not imported yet)>"


def _origin(obj: Any) -> tuple[str, str] | None:
    """Where an object was defined: ``(module, qualified name)``, None when unknown."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return (module, qualname) if module and qualname else None


class PresetSpace:
    """A ``SPACES`` entry that builds a space class with preset arguments and otherwise reads
    like that class (its class-level hooks such as ``notation_format``)."""

    def __init__(self, cls: type, *args: Any, **preset: Any) -> None:
        self.cls, self.args, self.preset = cls, args, preset
        self.__doc__ = cls.__doc__

    def __call__(self, **options: Any) -> Any:
        return self.cls(*self.args, **{**self.preset, **options})

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr in ("cls", "args", "preset"):
            raise AttributeError(attr)
        return getattr(self.cls, attr)


def space_factory(obj: Any, name: str) -> Any:
    """What ``SPACES`` registers for an imported or user-given object: a SearchSpace subclass as
    it is, an ``nn.Module`` subclass as a :class:`nasplat.nn.ModelSpace` named ``name``."""
    from nasplat.space import SearchSpace

    if isinstance(obj, type) and issubclass(obj, SearchSpace):
        if not obj.name:
            raise ConfigError(f"space class {name!r} must set its `name`")
        if obj.name not in SPACES:  # genotypes carry the class's own name: find it by that too
            SPACES.add(obj.name, obj)
        return obj
    if isinstance(obj, type):
        from torch import nn

        if issubclass(obj, nn.Module):
            from nasplat.nn import ModelSpace

            return PresetSpace(ModelSpace, obj, name=name)
    raise ConfigError(
        f"space {name!r} is neither a nasplat SearchSpace subclass nor a torch nn.Module subclass"
    )


OPS: Registry[Callable[..., Any]] = Registry("op", callables=True)
SPACES: Registry[Any] = Registry("space", adapt=space_factory)
STRATEGIES: Registry[type] = Registry(
    "strategy", context=("seed", "direction", "budget", "objectives")
)
"""A strategy gets the seed and the first objective's direction; ``budget`` when it
``takes_budget``, every objective when it is ``multi_objective``."""
EVALUATORS: Registry[type] = Registry("evaluator", context=(*DATA_SETTINGS, "epochs", "objectives"))
"""Every evaluator gets the data settings and the search's ``--epochs`` (ignored by those that
train nothing); one that ``takes_objectives`` the objectives' names."""
DATASETS: Registry[Callable[..., Any]] = Registry("dataset", callables=True)
EXECUTORS: Registry[type] = Registry("executor")
PROXIES: Registry[Callable[..., Any]] = Registry("proxy", callables=True)
OBJECTIVES: Registry[Callable[..., Any]] = Registry("objective")
"""User training functions ``objective(model, ctx) -> float | dict`` (the ``objective``
evaluator calls them by name)."""
REGISTRIES = {
    r.kind: r
    for r in (OPS, SPACES, STRATEGIES, EVALUATORS, DATASETS, EXECUTORS, PROXIES, OBJECTIVES)
}

_BUILTIN_MODULES = (  # imported by name: the core never imports a plugin package statically
    "nasplat.ml",
    "nasplat.run.local",
    "nasplat.run.ray",
    "search_spaces",
    "strategies",
    "evaluators",
)
_imported: set[str] = set()
_entry_points_loaded = False


def load_builtins(
    modules: tuple[str, ...] = _BUILTIN_MODULES, *, entry_points: bool = True
) -> None:
    """Import the built-in plugins (or only those ``modules`` of them) and, unless
    ``entry_points`` is False, any ``nasplat.plugins`` entry points (idempotent). Without them,
    a registry loads the entry points when a name it is asked for is missing."""
    import importlib

    for module in modules:
        if module not in _imported:
            _imported.add(module)
            importlib.import_module(module)
    if entry_points:
        load_entry_points()


def load_entry_points() -> bool:
    """Import every ``nasplat.plugins`` entry point, once per process (reading the installed
    packages' metadata takes tens of milliseconds). Returns whether this call loaded them."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return False
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="nasplat.plugins"):
        ep.load()
    return True


def load_spaces() -> None:
    """Only what names a search space: the built-in spaces, and the entry points if a space
    is not among them (a command that prints a stored genotype's notation needs no strategy,
    evaluator or executor)."""
    load_builtins(("search_spaces",), entry_points=False)
