"""Every built-in plugin declares its options once (issue #17): the declaration agrees with the
constructor, validation refuses anything else, and ``nasplat list options`` prints it."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
from pathlib import Path
from typing import Any

import pytest

import strategies
from nasplat.errors import ConfigError
from nasplat.registry import EVALUATORS, EXECUTORS, SPACES, STRATEGIES, Registry, load_builtins
from tests.conftest import run_main

load_builtins()
importlib.import_module("evaluators.proxy_check")  # registered by the proxy-check command
KINDS = {"space": SPACES, "strategy": STRATEGIES, "evaluator": EVALUATORS, "executor": EXECUTORS}
BUILT_IN = ("nasplat", "search_spaces", "strategies", "evaluators")


def built_in(registry: Registry, name: str) -> bool:
    """Registered by nasplat's own packages (not by a test's or a user's module)."""
    return registry.resolve(name).__module__.split(".")[0] in BUILT_IN


ENTRIES = [(k, name) for k, reg in KINDS.items() for name in reg.names() if built_in(reg, name)]
REQUIRED: dict[str, dict[str, Any]] = {  # what an entry cannot be built without
    "tabular": {"table": "nb201", "metric": "cifar10_valid_acc"},
    "objective": {"function": "math:sqrt"},
}


def constructor_parameters(factory: Any, registry: Registry) -> tuple[dict[str, Any], bool]:
    """Keyword parameters with their defaults (less the framework's), and whether it takes
    ``**options``."""
    parameters = inspect.signature(factory).parameters.values()
    explicit = {
        p.name: p.default
        for p in parameters
        if p.kind is p.KEYWORD_ONLY and p.name not in registry.context
    }
    return explicit, any(p.kind is p.VAR_KEYWORD for p in parameters)


@pytest.mark.parametrize(("kind", "name"), ENTRIES)
def test_the_declaration_agrees_with_the_constructor(kind: str, name: str) -> None:
    registry = KINDS[kind]
    factory = registry.resolve(name)
    declared = {option.name: option for option in factory.OPTIONS}
    assert registry.options(name) == factory.OPTIONS
    explicit, more = constructor_parameters(factory, registry)
    assert set(explicit) <= set(declared), set(explicit) - set(declared)
    if not more:  # every declared option is a parameter
        assert set(declared) == set(explicit)
    for option in declared.values():
        assert option.help and option.type, option
        default = explicit.get(option.name)
        if default not in (None, inspect.Parameter.empty):  # None: computed, the help says
            assert option.default == default, option


@pytest.mark.parametrize(("kind", "name"), ENTRIES)
def test_every_declared_default_is_accepted(kind: str, name: str) -> None:
    options = {o.name: o.default for o in KINDS[kind].options(name) if o.default is not None}
    options.update(REQUIRED.get(name, {}))
    args = []
    if kind in ("strategy", "evaluator"):
        args = [SPACES.create("nb201")]
    KINDS[kind].create(name, *args, **options)


def test_deferred_strategies_are_listed_without_their_module() -> None:
    for module, names in strategies.DECLARED.items():
        for name in names:
            assert STRATEGIES.options(name) is STRATEGIES.resolve(name).OPTIONS, module


def test_the_training_options_carry_the_training_loops_defaults() -> None:
    from evaluators.train import TRAINING
    from nasplat.ml.training import TrainConfig

    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    assert {o.name: o.default for o in TRAINING} == {o.name: defaults[o.name] for o in TRAINING}


@pytest.mark.parametrize(
    ("kind", "name", "args"),
    [("space", "chain", ()), ("executor", "local", ()), ("executor", "ray", ())],
)
def test_an_undeclared_option_is_one_line_naming_the_known_ones(
    kind: str, name: str, args: tuple
) -> None:
    known = ", ".join(o.name for o in KINDS[kind].options(name)) or "(none)"
    with pytest.raises(ConfigError) as error:
        KINDS[kind].create(name, *args, colour=1)
    assert str(error.value) == f"unknown option(s) for {kind} {name!r}: colour; known: {known}"


def test_strategies_and_evaluators_refuse_undeclared_options() -> None:
    space = SPACES.create("nb201")
    with pytest.raises(ConfigError, match="for strategy 'evolution': colour; known: population"):
        STRATEGIES.create("evolution", space, seed=1, direction="maximize", colour=1)
    with pytest.raises(ConfigError, match="for evaluator 'train': colour; known: epochs"):
        EVALUATORS.create("train", space, dataset="digits", colour=1)


def list_options(name: str, tmp_path: Path, *more: str) -> tuple[int, str, str]:
    return run_main("list", "options", name, *more, cwd=tmp_path)


def test_list_options_of_the_chain_space(tmp_path: Path) -> None:
    code, out, err = list_options("chain", tmp_path, "--format", "json")
    assert code == 0, err
    rows = {row["option"]: row for row in json.loads(out)}
    assert rows["layers"] == {
        "option": "layers", "type": "int", "default": 4, "description": "number of layers"
    }  # fmt: skip
    assert rows["widths"]["default"] == [16, 32, 64] and rows["widths"]["type"] == "list[int]"
    assert rows["skip"]["default"] is True and rows["skip"]["description"]
    code, out, _ = list_options("chain", tmp_path)  # the table names each and its default
    assert all(word in out for word in ("layers", "widths", "skip", "16, 32, 64"))


@pytest.mark.parametrize(("name", "caption"), [("tabular", "--dataset"), ("tpe", "--seed")])
def test_list_options_says_what_the_search_passes(tmp_path: Path, name: str, caption: str) -> None:
    code, out, err = list_options(name, tmp_path, "--format", "json")
    assert code == 0 and json.loads(out)[0]["option"] in ("table", "n_startup_trials")
    code, out, err = list_options(name, tmp_path)
    assert code == 0 and caption in out


def test_list_options_of_unknown_or_missing_names_is_exit_2(tmp_path: Path) -> None:
    code, _, err = list_options("nope", tmp_path)
    assert code == 2 and "no space, strategy, evaluator or executor 'nope'" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run_main("list", "options", cwd=tmp_path)
    assert code == 2 and "list options NAME" in err
    code, _, err = run_main("list", "spaces", "chain", cwd=tmp_path)
    assert code == 2 and "only `list options` takes a NAME" in err


def test_a_subclass_with_new_parameters_is_validated_by_its_signature() -> None:
    from search_spaces.chain import ChainSpace

    class Deeper(ChainSpace):  # adds a parameter, declares nothing: its signature stands
        def __init__(self, *, depth: int = 2, **options: Any) -> None:
            super().__init__(layers=depth, **options)

    registry: Registry[Any] = Registry("space")
    registry.add("deeper", Deeper)
    assert registry.create("deeper", depth=3, skip=False).options["layers"] == 3
    assert [o.name for o in registry.options("deeper")] == ["depth"]
