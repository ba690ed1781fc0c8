"""A plugin's options, declared once: name, type, default and what it does.

A space, strategy, evaluator or executor class declares ``OPTIONS``, a tuple of
:class:`Option`. ``nasplat list options NAME`` prints them, and
:meth:`nasplat.registry.Registry.create` refuses any other option in one ConfigError line that
names the known ones: the listing and the validation read the same declaration, so they cannot
drift (a test checks each declaration against its constructor). A plugin that declares none
(``OPTIONS = None``, as a third party's may) is listed from, and validated by, its
constructor's signature.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nasplat.errors import ConfigError

DATA_SETTINGS = ("dataset", "data_dir", "seed", "device")
"""What every evaluator takes besides its options (the search's --dataset, --data-dir, --seed
and --device)."""


@dataclass(frozen=True)
class Option:
    """One keyword option: ``type`` as a user writes it (``int``, ``list[str]``, ...), the
    constructor's ``default`` (None where it is computed or required: ``help`` says how)."""

    name: str
    type: str
    default: Any
    help: str

    def row(self) -> dict[str, Any]:
        """The option as ``nasplat list options`` prints it."""
        default = list(self.default) if isinstance(self.default, tuple) else self.default
        return {
            "option": self.name,
            "type": self.type,
            "default": default,
            "description": self.help,
        }


def merged(*groups: Iterable[Option]) -> tuple[Option, ...]:
    """Options of several groups in order; a later option replaces an earlier one of its name
    (a subclass's ``epochs`` with its own default), keeping the earlier one's place."""
    out: dict[str, Option] = {}
    for group in groups:
        for option in group:
            out[option.name] = option
    return tuple(out.values())


def without(options: Iterable[Option], *names: str) -> tuple[Option, ...]:
    """``options`` less the ones named."""
    return tuple(option for option in options if option.name not in names)


def from_defaults(defaults: Mapping[str, Any], helps: Mapping[str, str]) -> tuple[Option, ...]:
    """Options whose defaults live in a mapping (a space's ``NET_DEFAULTS``): type and default
    from the mapping, one help per name."""
    return tuple(
        Option(name, type(value).__name__, value, helps[name]) for name, value in defaults.items()
    )


def declared_options(factory: Any) -> tuple[Option, ...] | None:
    """A plugin's ``OPTIONS`` where they describe its constructor: those of the nearest class
    that declares them, unless the plugin runs another ``__init__`` (a subclass that adds
    parameters without declaring them); None otherwise (not declared)."""
    if not isinstance(factory, type):
        return getattr(factory, "OPTIONS", None)  # a stand-in for a class (PresetSpace)
    for klass in factory.__mro__:
        if "OPTIONS" in vars(klass):
            return klass.OPTIONS if factory.__init__ is klass.__init__ else None
    return None


def signature_options(factory: Any, skip: Iterable[str] = ()) -> tuple[Option, ...]:
    """The keyword options a constructor's signature shows (for a plugin that declares none):
    every parameter with a default, less ``skip``."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return ()
    return tuple(
        Option(p.name, _annotation(p.annotation), p.default, "")
        for p in parameters
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        and p.default is not p.empty
        and p.name not in skip
    )


def _annotation(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")


def check_options(
    kind: str, name: str, declared: Iterable[Option], given: Iterable[str], allowed: Iterable[str]
) -> None:
    """One ConfigError naming the options of ``given`` that are neither declared nor
    ``allowed`` (what the framework passes, such as a strategy's seed), and the known ones."""
    known = [option.name for option in declared]
    unknown = sorted(set(given) - set(known) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown option(s) for {kind} {name!r}: {', '.join(unknown)}; "
            f"known: {', '.join(known) or '(none)'}"
        )
