"""Constraints reject architectures before training."""

from __future__ import annotations

import random
from typing import Any

import pytest

from evaluators.constraints import Constraint, ConstraintViolation, parse_constraints
from evaluators.train import TrainEvaluator
from nasplat.budget import Budget
from nasplat.errors import ConfigError
from nasplat.evaluator import Reporter
from nasplat.executor import TrialTask
from nasplat.run.trial import run_trial


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("params<=1e6", Constraint("params", "<=", 1e6)),
        (" flops > 10 ", Constraint("flops", ">", 10.0)),
    ],
)
def test_parse(text: str, expected: Constraint) -> None:
    assert Constraint.parse(text) == expected


@pytest.mark.parametrize("text", ["params", "params<=", "params=<5", "<=5", "params<=lots"])
def test_bad_constraint_strings(text: str) -> None:
    with pytest.raises(ConfigError, match="bad constraint"):
        Constraint.parse(text)


def test_unknown_metric() -> None:
    with pytest.raises(ConfigError, match="unknown metric 'accuracy'.*params"):
        parse_constraints(["accuracy>=0.9"], ["params", "flops"])


def test_rejected_before_training(tiny: Any) -> None:
    genotype = tiny.sample(random.Random(0))
    evaluator = TrainEvaluator(tiny, epochs=3, constraints=["params<=10"])
    reporter = Reporter()
    outcome = run_trial(TrialTask(1, 0, genotype, Budget()), evaluator, reporter, "val_acc")
    assert outcome.state == "FAILED" and "params<=10 violated: params=" in outcome.error
    assert reporter.history == []  # not a single epoch ran
    ok = TrainEvaluator(tiny, epochs=1, constraints="params<=1e9")
    assert ok.evaluate(genotype, Budget(), Reporter()).epochs_run == 1
    with pytest.raises(ConstraintViolation):
        TrainEvaluator(tiny, epochs=1, constraints="latency_ms<=0").evaluate(
            genotype, Budget(), Reporter()
        )


def test_precheck_measures_the_network_before_any_trial(tiny: Any) -> None:
    genotype = tiny.sample(random.Random(0))
    assert TrainEvaluator(tiny, epochs=1).precheck(genotype, Budget()) is None  # no constraint
    tight = TrainEvaluator(tiny, epochs=1, constraints=["params<=10"])
    reason = tight.precheck(genotype, Budget())
    assert reason is not None and reason.startswith("constraint params<=10 violated: params=")
    loose = TrainEvaluator(tiny, epochs=1, constraints=["params<=1e9", "flops>=0"])
    assert loose.precheck(genotype, Budget()) is None
    slow = TrainEvaluator(tiny, epochs=1, constraints=["latency_ms<=0"])
    assert "latency_ms<=0 violated" in slow.precheck(genotype, Budget())
    narrow = tight.precheck(genotype, Budget(width_mult=0.5))  # measured at the budget's width
    assert float(narrow.rsplit("=", 1)[1]) < float(reason.rsplit("=", 1)[1])
