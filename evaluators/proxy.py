"""The ``proxy`` evaluator: a zero-cost proxy of an untrained network instead of training."""

from __future__ import annotations

from typing import Any

from evaluators.constraints import ConstraintViolation
from evaluators.train import CONSTRAINTS, TrainEvaluator
from nasplat.budget import Budget, EvalResult
from nasplat.direction import Direction
from nasplat.errors import ConfigError
from nasplat.evaluator import Evaluator, Reporter, pop_common_options, reject_unknown_options
from nasplat.genotype import Genotype
from nasplat.options import Option
from nasplat.registry import EVALUATORS, PROXIES
from nasplat.shape import NetShape
from nasplat.space import SearchSpace

DEFAULT_PROXY = "synflow"


def proxy_batch(splits: Any, batch_size: int, seed: int) -> tuple[Any, Any]:
    """A fixed random mini-batch of the training split (the same for every architecture)."""
    import torch

    from nasplat.ml.data import tensors_of

    x, y = tensors_of(splits.train)
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(y), generator=generator)[: min(batch_size, len(y))]
    return x[index], y[index]


@EVALUATORS.register(
    "proxy", description="zero-cost proxy at initialisation (synflow, naswot, ...)"
)
class ProxyEvaluator(Evaluator):
    """Scores a freshly initialised network on one mini-batch with a zero-cost proxy.

    Options: ``proxy`` (``synflow``; see ``nasplat list`` / :mod:`evaluators.zero_cost`),
    ``batch_size`` (64), ``constraints`` (params, flops, latency_ms). The network is built at
    the budget's width and resolution. Metrics: the score under the proxy's name (a study
    without ``--objective`` maximises it: every proxy is higher-is-better), ``params``,
    ``flops`` and ``seconds`` (time to compute the proxy). The budget records
    ``epochs=0`` and the proxy in ``extra``.
    """

    name = "proxy"
    OPTIONS = (
        Option("proxy", "str", DEFAULT_PROXY, "zero-cost proxy (evaluators/zero_cost.py)"),
        Option("batch_size", "int", 64, "samples of the one scored mini-batch"),
        CONSTRAINTS,
    )

    def __init__(
        self,
        space: SearchSpace,
        *,
        proxy: str = DEFAULT_PROXY,
        batch_size: int = 64,
        constraints: Any = None,
        **options: Any,
    ) -> None:
        common = pop_common_options(options)
        options.pop("epochs", None)  # the search passes --epochs to every evaluator; unused here
        reject_unknown_options(self, options)
        PROXIES.get(proxy)
        if int(batch_size) < 2:
            raise ConfigError(f"batch_size must be >= 2, got {batch_size}")
        super().__init__(space, **common, proxy=proxy, batch_size=int(batch_size))
        self.proxy = proxy
        self.batch_size = int(batch_size)
        self.networks = TrainEvaluator(
            space, epochs=0, keep_weights=False, constraints=constraints, **common
        )

    def metric_names(self) -> list[str]:
        return list(dict.fromkeys([self.proxy, "params", "flops", "seconds"]))

    def default_objective(self) -> tuple[str, Direction]:
        return self.proxy, Direction.MAXIMIZE

    def data_shape(self) -> NetShape:
        return self.networks.data_shape()

    def resolve_budget(self, budget: Budget | None) -> Budget:
        budget = (budget or Budget()).replace(epochs=0)
        return budget.replace(
            extra={**budget.extra, "proxy": self.proxy, "batch_size": self.batch_size}
        )

    def precheck(self, genotype: Genotype, budget: Budget) -> str | None:
        return self.networks.precheck(genotype, self.resolve_budget(budget))

    def evaluate(self, genotype: Genotype, budget: Budget, reporter: Reporter) -> EvalResult:
        from evaluators.zero_cost import score
        from nasplat.ml.profiling import profile
        from nasplat.ml.training import resolve_device, seed_everything

        budget = self.resolve_budget(budget)
        reason = self.precheck(genotype, budget)
        if reason is not None:
            raise ConstraintViolation(reason)
        splits = self.networks.load_splits(budget)
        seed_everything(self.seed)
        model = self.networks.build_network(genotype, budget, splits)
        shape = self.networks.net_shape(budget, splits).example_input_shape()
        cost = profile(model, shape)
        device = resolve_device(self.device)
        x, y = proxy_batch(splits, self.batch_size, self.seed)
        value, seconds = score(self.proxy, model.to(device), x.to(device), y.to(device))
        metrics = {**cost, self.proxy: value, "seconds": seconds}
        return EvalResult(metrics, epochs_run=0)
