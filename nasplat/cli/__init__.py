"""The application layer: the ``nasplat`` command line, config files, export, ``bench``.

It sits above the core and the plugins and may import both; nothing below imports it.
"""

from nasplat.cli.main import (
    cli,
    format_option,
    main,
    open_store,
    print_best,
    run,
    storage_option,
)
from nasplat.cli.output import emit

__all__ = [
    "cli",
    "emit",
    "format_option",
    "main",
    "open_store",
    "print_best",
    "run",
    "storage_option",
]
