"""The ``nni-<tuner>`` strategies (optional extra ``nasplat[nni]``)."""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from toy import (
    ToySpace,
    check_beats_random,
    check_deterministic,
    check_exact_resume,
    check_failures_and_order,
    check_minimize,
    objective,
    observe,
    run,
)

from nasplat.errors import NasplatError
from nasplat.genotype import Decision, Genotype
from nasplat.registry import STRATEGIES
from nasplat.space import SearchSpace
from strategies.nni_adapter import NNI_TUNERS, NNIStrategy

HAVE_NNI = importlib.util.find_spec("nni") is not None
HAVE_HYPEROPT = importlib.util.find_spec("hyperopt") is not None
needs_nni = pytest.mark.skipif(
    not HAVE_NNI, reason="NNI not installed (pip install 'nasplat[nni]')"
)


def tuners(*names: str) -> list[Any]:
    """``names`` as parameters, anneal skipped without hyperopt (NNI does not require it)."""
    no_hyperopt = pytest.mark.skipif(not HAVE_HYPEROPT, reason="nni-anneal needs hyperopt")
    return [pytest.param(n, marks=[no_hyperopt] if n == "anneal" else []) for n in names]


def factory(tuner: str) -> Any:
    return STRATEGIES.get(f"nni-{tuner}")


def test_every_tuner_is_registered_as_a_variant_of_one_adapter() -> None:
    for tuner in NNI_TUNERS:
        cls = STRATEGIES.get(f"nni-{tuner}")
        assert issubclass(cls, NNIStrategy) and cls.default_tuner == tuner
        assert cls.name == f"nni-{tuner}"
        assert "nasplat[nni]" in STRATEGIES.meta(f"nni-{tuner}")["description"]


def test_module_imports_without_importing_nni() -> None:
    code = "import sys, strategies.nni_adapter; print('nni' in sys.modules)"
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_missing_nni_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nni", None)  # makes `import nni` raise ImportError
    with pytest.raises(NasplatError, match=r"pip install 'nasplat\[nni\]'"):
        factory("tpe")(ToySpace())


@needs_nni
def test_missing_hyperopt_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hyperopt", None)
    with pytest.raises(NasplatError, match="pip install hyperopt"):
        factory("anneal")(ToySpace())


@needs_nni
@pytest.mark.parametrize("tuner", tuners("tpe", "anneal", "evolution"))
def test_model_based_tuners_beat_random_search(tuner: str) -> None:
    check_beats_random(factory(tuner), n=80, seeds=range(3), margin=0.5)


@needs_nni
@pytest.mark.parametrize("tuner", tuners("tpe", "anneal"))
def test_minimize(tuner: str) -> None:
    check_minimize(factory(tuner), n=80, seeds=range(3), margin=0.5)


@needs_nni
@pytest.mark.parametrize("tuner", tuners(*NNI_TUNERS))
def test_deterministic_and_exact_resume(tuner: str) -> None:
    check_deterministic(factory(tuner), seeded=tuner != "gridsearch")
    check_exact_resume(factory(tuner))


@needs_nni
@pytest.mark.parametrize("tuner", tuners(*NNI_TUNERS))
def test_failed_and_out_of_order_results(tuner: str) -> None:
    check_failures_and_order(factory(tuner))


@needs_nni
def test_tuner_args_reach_the_tuner_and_busy_evolution_falls_back() -> None:
    strategy = factory("evolution")(ToySpace(), tuner_args={"population_size": 2})
    assert strategy.tuner.population_size == 2
    asked = [strategy.ask() for _ in range(3)]  # the third exceeds the population: fallback
    for genotype in asked:
        ToySpace().validate(genotype)
        strategy.tell(observe(genotype, objective(genotype)))
    assert len(run(strategy, 10)) == 10


class Tiny(SearchSpace):
    name = "tiny"

    def decisions(self) -> list[Decision]:
        return [Decision("a", ("x", None)), Decision("b", (True, False))]

    def build(self, genotype: Genotype, shape: Any = None, **net_options: Any) -> Any:
        raise NotImplementedError


@needs_nni
def test_gridsearch_covers_the_grid_then_samples() -> None:
    strategy = factory("gridsearch")(Tiny())
    grid = [strategy.ask() for _ in range(4)]
    assert len(set(grid)) == 4
    extra = strategy.ask()  # grid exhausted: drawn with the strategy's rng
    assert extra in grid
    for genotype in [*grid, extra]:
        strategy.tell(observe(genotype, 1.0))


@needs_nni
def test_nni_logs_stay_off_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    strategy = factory("tpe")(ToySpace())
    run(strategy, 12)
    logging.getLogger("nni.test").warning("a warning from nni")
    assert capsys.readouterr().out == ""
