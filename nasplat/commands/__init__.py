"""Extra sub-commands: each module here defines one with ``@cli.command()``
(``from nasplat.cli import cli``); ``nasplat.cli.main`` imports them all."""
