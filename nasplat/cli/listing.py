"""``nasplat list``: what the registries hold, and one plugin's options."""

from __future__ import annotations

import json
from typing import Any

from nasplat.errors import UnknownNameError

PLUGIN_KINDS = ("SPACES", "STRATEGIES", "EVALUATORS", "EXECUTORS")
"""The registries ``list options NAME`` looks NAME up in, in this order."""
OPTION_FLAGS = {"space": "--space-opt", "strategy": "--strategy-opt"}
"""The search flag that passes each kind's options (else ``--<kind>-opt``)."""


def registry_rows(kind: str) -> list[dict[str, Any]]:
    """One row per entry of a registry: name, family (ops), description."""
    from nasplat import registry

    registry.load_builtins()
    reg = getattr(registry, kind.upper())
    rows = []
    for name in reg.names():
        meta = reg.meta(name)
        row = {"name": name}
        if "family" in meta:
            row["family"] = meta["family"]
        row["description"] = meta.get("description", "")
        rows.append(row)
    return rows


def option_rows(name: str, *, table: bool) -> tuple[list[dict[str, Any]], str]:
    """The options of the space, strategy, evaluator or executor ``name`` (the first kind that
    has it), and a caption: how to pass them, and what the search passes itself. In a table,
    defaults read as they are typed (JSON)."""
    from nasplat import registry

    registry.load_builtins()
    for attr in PLUGIN_KINDS:
        reg = getattr(registry, attr)
        if name in reg:
            break
    else:
        raise UnknownNameError(f"no space, strategy, evaluator or executor {name!r}")
    rows = [option.row() for option in reg.options(name)]
    if table:
        rows = [{**row, "default": _typed(row["default"])} for row in rows]
    flag = OPTION_FLAGS.get(reg.kind, f"--{reg.kind}-opt")
    caption = f"{reg.kind} {name}: {flag} KEY=VALUE (a JSON value, or text)"
    if reg.context:
        caption += "; set by the search: " + ", ".join(
            "--" + key.replace("_", "-") for key in reg.context
        )
    return rows, caption


def _typed(value: Any) -> str:
    """A default as one types it: a string as it is, anything else as JSON (none: empty)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)
