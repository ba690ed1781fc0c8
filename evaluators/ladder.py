"""The ``ladder`` evaluator: a fidelity ladder with successive-halving promotion.

Rungs run from cheapest to dearest (default: zero-cost proxy -> low-fidelity training -> full
training). This module declares the rungs (:meth:`LadderEvaluator.ladder`); the run layer's
ladder driver (:mod:`nasplat.run.ladder`) runs them on the trial loop and promotes the top
``1/eta`` of each rung to the next.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nasplat.budget import Budget, EvalResult
from nasplat.direction import Direction
from nasplat.errors import ConfigError
from nasplat.evaluator import (
    Evaluator,
    FidelityLadder,
    Pruner,
    Reporter,
    Rung,
    pop_common_options,
    reject_unknown_options,
)
from nasplat.genotype import Genotype
from nasplat.options import Option
from nasplat.registry import EVALUATORS
from nasplat.space import SearchSpace

LADDER_PROXY = "params"
"""The first rung's default proxy: the best-ranking zero-cost proxy of the fidelity benchmark on
both spaces (docs/benchmarks.md, "Fidelity"), free to compute."""
DEFAULT_RUNGS: tuple[dict[str, Any], ...] = (
    {"evaluator": "proxy"},  # LADDER_PROXY unless --proxy names another
    {"evaluator": "low-fidelity", "epochs": 1, "data_fraction": 0.5},
    {"evaluator": "train"},
)


def parse_rungs(value: Any) -> list[dict[str, Any]]:
    """Rungs from a list of names or ``{"evaluator": name, **options}`` dicts, or a comma list."""
    if value is None:
        return [dict(r) for r in DEFAULT_RUNGS]
    items: Iterable[Any] = value.split(",") if isinstance(value, str) else value
    rungs = []
    for item in items:
        spec = {"evaluator": item.strip()} if isinstance(item, str) else dict(item)
        if not isinstance(spec.get("evaluator"), str):
            raise ConfigError(f"each rung needs an evaluator name, got {item!r}")
        if spec["evaluator"] == "ladder":
            raise ConfigError("a ladder rung cannot be a ladder")
        rungs.append(spec)
    if len(rungs) < 2:
        raise ConfigError(f"a ladder needs at least 2 rungs, got {len(rungs)}")
    return rungs


@EVALUATORS.register(
    "ladder", description="fidelity ladder: proxy -> low fidelity -> full, SH promotion"
)
class LadderEvaluator(Evaluator):
    """Successive halving across evaluators. Options: ``rungs`` (see :func:`parse_rungs`),
    ``eta`` (3), ``proxy`` (the proxy of proxy rungs that name none), ``epochs`` (the last
    rung's, if it names none), ``constraints`` (given to every rung). Budget flags
    (``--data-fraction`` ...) apply to the last rung; lower rungs take their own options.
    ``--budget`` is the number of architectures entering rung 0. Used as a plain evaluator
    (``evaluate``), it is its last rung.
    """

    name = "ladder"
    OPTIONS = (
        Option(
            "rungs",
            "list",
            None,
            "evaluator names or {evaluator, options} (default: "
            + ", ".join(r["evaluator"] for r in DEFAULT_RUNGS)
            + ")",
        ),
        Option("eta", "int", 3, "the best 1/eta of a rung climb to the next"),
        Option("proxy", "str", None, f"proxy of the proxy rungs that name none [{LADDER_PROXY}]"),
        Option("epochs", "int", None, "epochs of the last rung, if it names none"),
        Option("constraints", "list[str]", None, "given to every rung"),
    )

    def __init__(
        self,
        space: SearchSpace,
        *,
        rungs: Any = None,
        eta: int = 3,
        proxy: str | None = None,
        epochs: int | None = None,
        constraints: Any = None,
        **options: Any,
    ) -> None:
        common = pop_common_options(options)
        reject_unknown_options(self, options)
        if int(eta) < 2:
            raise ConfigError(f"eta must be >= 2, got {eta}")
        specs = parse_rungs(rungs)
        super().__init__(space, **common, rungs=specs, eta=int(eta))
        self.eta = int(eta)
        self.common = common
        self.specs = []
        for i, spec in enumerate(specs):
            spec = dict(spec)
            if spec["evaluator"] == "proxy":
                spec.setdefault("proxy", proxy or LADDER_PROXY)
            if i == len(specs) - 1 and epochs is not None:
                spec.setdefault("epochs", epochs)
            if constraints:
                spec.setdefault("constraints", constraints)
            self.specs.append(spec)
        self.instances = [self._build(spec) for spec in self.specs]

    def _build(self, spec: dict[str, Any]) -> Evaluator:
        options = {k: v for k, v in spec.items() if k != "evaluator"}
        return EVALUATORS.get(spec["evaluator"])(self.space, **self.common, **options)

    # --- as a plain evaluator: the last rung ---------------------------------------------------
    @property
    def last(self) -> Evaluator:
        return self.instances[-1]

    def resolve_budget(self, budget: Budget | None) -> Budget:
        return self.last.resolve_budget(budget)

    def evaluate(self, genotype: Genotype, budget: Budget, reporter: Reporter) -> EvalResult:
        return self.last.evaluate(genotype, budget, reporter)

    def pruner(self) -> Pruner | None:
        return self.last.pruner()

    def metric_names(self) -> list[str]:
        return self.last.metric_names()

    def default_objective(self) -> tuple[str, Direction]:
        return self.last.default_objective()

    # --- the ladder ----------------------------------------------------------------------------
    def ladder(self, objective: str, direction: Direction, base: Budget) -> FidelityLadder:
        """The rungs with their budgets and the objective each one ranks by."""
        return FidelityLadder(tuple(self.rungs(objective, direction, base)), self.eta)

    def rungs(self, objective: str, direction: Direction, base: Budget) -> list[Rung]:
        """The rungs with their budgets and the objective each one ranks by."""
        out = []
        for i, (spec, instance) in enumerate(zip(self.specs, self.instances, strict=True)):
            names = instance.metric_names()
            if objective in names or not names:
                metric, way = objective, direction
            else:
                metric, way = instance.default_objective()
            budget = instance.resolve_budget(base if i == len(self.specs) - 1 else Budget())
            options = {**self.common, **{k: v for k, v in spec.items() if k != "evaluator"}}
            out.append(Rung(i, spec["evaluator"], options, instance, budget, metric, way))
        return out
