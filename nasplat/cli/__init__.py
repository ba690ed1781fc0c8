"""The application layer: the ``nasplat`` command line, config files, export, ``bench``.

It sits above the core and the plugins and may import both; nothing below imports it.
"""

from nasplat.cli.main import cli, emit, format_option, main, open_store, print_best, storage_option

__all__ = ["cli", "emit", "format_option", "main", "open_store", "print_best", "storage_option"]
