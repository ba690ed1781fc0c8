"""Reading a genotype given on the command line: JSON, a file, or a space's notation."""

from __future__ import annotations

import json
import os
from typing import Any

from nasplat.errors import InvalidGenotypeError, NasplatError
from nasplat.genotype import Genotype
from nasplat.registry import SPACES, load_builtins
from nasplat.shape import NetShape


def read_genotype_text(text: str) -> str:
    """The text itself, or a file's contents when ``text`` names an existing file."""
    if os.path.isfile(text):
        try:
            with open(text, encoding="utf-8") as handle:
                return handle.read().strip()
        except UnicodeDecodeError as exc:
            raise InvalidGenotypeError(
                f"genotype file {text} is not UTF-8 text ({exc.reason})"
            ) from None
        except OSError as exc:
            raise NasplatError(f"cannot read genotype file {text}: {exc.strerror or exc}") from None
    if text.endswith((".json", ".txt")):
        raise NasplatError(f"genotype file not found: {text}")
    return text.strip()


def load_exported(text: str) -> tuple[Genotype, dict[str, Any], NetShape | None]:
    """A genotype, the space options and the network shape (None when absent) stored beside it
    in ``nasplat export``'s ``genotype.json``."""
    text = read_genotype_text(text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidGenotypeError(f"malformed genotype JSON: {exc}") from None
    options = data.get("space_options", {}) if isinstance(data, dict) else {}
    if not isinstance(options, dict):
        raise InvalidGenotypeError('"space_options" must be a JSON object')
    shape = data.get("shape") if isinstance(data, dict) else None
    if shape is not None and not isinstance(shape, dict):
        raise InvalidGenotypeError('"shape" must be a JSON object')
    return Genotype.from_dict(data), options, None if shape is None else NetShape.from_dict(shape)


def notation_space(text: str) -> str:
    """The one registered space whose class recognizes ``text`` as its notation."""
    load_builtins()
    found = [name for name in SPACES.names() if SPACES.get(name).recognizes_notation(text)]
    if not found:
        raise NasplatError("cannot tell the space of this genotype; pass --space")
    if len(found) > 1:
        raise NasplatError(
            f"spaces {', '.join(found)} all read this notation; pass --space to pick one"
        )
    return found[0]


def parse_genotype(
    text: str, space: str | None = None, space_options: dict[str, Any] | None = None
) -> tuple[Genotype, Any]:
    """Parse genotype JSON or notation; returns the genotype (validated) and its space."""
    load_builtins()
    text = read_genotype_text(text)
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidGenotypeError(f"malformed genotype JSON: {exc}") from None
        if isinstance(data, dict) and "decisions" in data:
            genotype, stored_options, _ = load_exported(text)
            space = space or genotype.space
            instance = SPACES.get(space)(**(space_options or stored_options))
        else:
            if space is None:
                raise NasplatError("a JSON object of decisions needs --space")
            instance = SPACES.get(space)(**(space_options or {}))
            genotype = instance.from_notation(text)
    else:
        if space is None:
            space = notation_space(text)
        instance = SPACES.get(space)(**(space_options or {}))
        genotype = instance.from_notation(text)
    instance.validate(genotype)
    return genotype, instance
