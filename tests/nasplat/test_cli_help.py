"""CLI help that teaches (issue #17): every flag has help text, every search flag shows the
default that applies when it is not given, and a plugin flag's default is the plugin's own."""

from __future__ import annotations

import click
import pytest

from nasplat.cli.main import cli, load_commands
from nasplat.cli.search_flags import PLUGIN_FLAGS
from nasplat.config import SearchConfig
from nasplat.registry import EVALUATORS, EXECUTORS, SPACES, STRATEGIES, load_builtins

load_commands()
SEARCH = cli.commands["search"]
CONTEXT = click.Context(SEARCH, info_name="search")
OPTIONS = [p for p in SEARCH.params if isinstance(p, click.Option) and p.name != "help"]


def shown_default(option: click.Option) -> str | None:
    record = option.get_help_record(CONTEXT)
    assert record is not None
    text = " ".join(record[1].split())
    return (
        text.split("[default: ", 1)[1].split("; ")[0].rsplit("]", 1)[0]
        if "[default: " in text
        else None
    )


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.opts[0])
def test_every_search_flag_has_help_and_shows_its_default(option: click.Option) -> None:
    assert option.help and len(option.help) > 10, option.opts
    assert shown_default(option), option.opts
    assert option.get_default(CONTEXT) in (None, False, ()), option.opts  # a file's value stands


def test_config_flags_show_the_configs_defaults() -> None:
    by_name = {option.name: shown_default(option) for option in OPTIONS}
    for name in ("space", "strategy", "evaluator", "executor", "dataset", "seed", "device"):
        assert by_name[name] == str(getattr(SearchConfig(), name))


@pytest.mark.parametrize("name", sorted(PLUGIN_FLAGS))
def test_a_plugin_flag_shows_the_plugins_declared_default(name: str) -> None:
    load_builtins()
    _, owner, option_name = PLUGIN_FLAGS[name]
    registry = next(r for r in (SPACES, STRATEGIES, EVALUATORS, EXECUTORS) if owner in r)
    declared = {o.name: o for o in registry.options(owner)}[option_name]
    option = next(o for o in OPTIONS if o.name == name)
    assert option.help.startswith(f"{owner}: ")
    shown = shown_default(option)
    if isinstance(declared.default, bool):
        assert shown == (name if declared.default else f"no-{name}")
    elif declared.default is not None:
        assert shown == str(declared.default)
    else:  # computed or required: the flag says how
        assert shown and shown != "None"


def test_every_flag_of_every_command_has_help() -> None:
    missing = [
        f"{name} {param.opts[0]}"
        for name, command in cli.commands.items()
        for param in command.params
        if isinstance(param, click.Option) and not param.help
    ]
    assert not missing


def test_search_help_prints_the_defaults(tmp_path) -> None:
    from tests.conftest import run_main

    code, out, _ = run_main("search", "--help", cwd=tmp_path)
    text = " ".join(out.split())
    assert (
        code == 0
        and "--epochs INTEGER Training epochs per trial. [default: the evaluator's" in text
    )
    assert "--cpus-per-trial FLOAT ray: CPUs per trial (fractions allowed). [default: 1.0]" in text
