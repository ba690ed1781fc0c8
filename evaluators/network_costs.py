"""What a genotype's network costs, known before training: parameters, FLOPs and latency.

Measured by building the network (torch's flop counter for FLOPs, a batch-1 forward for the
latency), so a constraint can be checked before a trial exists and the tabular evaluator can
report the parameters of a table's architectures. Parameters and FLOPs are cached per process
for each (space, network shape, canonical architecture); a latency is measured once per
architecture and device too (one measurement decides, so a precheck and its trial agree).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from nasplat.genotype import Genotype
from nasplat.shape import NetShape
from nasplat.space import SearchSpace

BUILT_COSTS = ("params", "flops", "latency_ms")
"""The metrics this module measures on a built network."""


class NetworkCosts:
    """Costs of the networks ``space.build(genotype, shape, **net_options)``.

    ``measure(genotype, names)`` returns the requested :data:`BUILT_COSTS`; the network is built
    at most once per call, on the CPU unless a latency is asked for (then on ``device``), with
    the global torch RNG left as it was.
    """

    _cache: dict[tuple[str, str], dict[str, float]] = {}

    def __init__(
        self, space: SearchSpace, shape: NetShape, device: str = "cpu", **net_options: Any
    ) -> None:
        self.space = space
        self.shape = shape
        self.device = device
        self.net_options = net_options
        self._key = json.dumps(
            [space.name, space.options, shape.to_dict(), net_options, device],
            sort_keys=True,
            default=str,
        )

    def measure(self, genotype: Genotype, names: Iterable[str]) -> dict[str, float]:
        """The costs ``names`` (a subset of :data:`BUILT_COSTS`) of ``genotype``'s network."""
        wanted = [n for n in dict.fromkeys(names) if n in BUILT_COSTS]
        if not wanted:
            return {}
        key = (self._key, self.space.canonicalize(genotype).sha)
        known = self._cache.setdefault(key, {})
        missing = [n for n in wanted if n not in known]
        if missing:
            known.update(self._build_and_measure(genotype, missing))
        return {n: known[n] for n in wanted}

    def _build_and_measure(self, genotype: Genotype, names: list[str]) -> dict[str, float]:
        import torch

        from nasplat.ml.profiling import count_params, profile

        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model = self.space.build(genotype, self.shape, **self.net_options)
        input_shape = self.shape.example_input_shape()
        out: dict[str, float] = {"params": float(count_params(model))}
        if "flops" in names:
            out.update(profile(model, input_shape))
        if "latency_ms" in names:
            from nasplat.ml.training import resolve_device

            device = resolve_device(self.device)
            out["latency_ms"] = measure_latency(model.to(device), input_shape, device)
        return out


def measure_latency(model: Any, shape: tuple[int, ...], device: Any, repeats: int = 10) -> float:
    """Median batch-1 forward time in milliseconds, in eval mode."""
    import statistics

    import torch

    was_training = model.training
    model.eval()
    x = torch.zeros(shape, device=device)
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1000)
    model.train(was_training)
    return statistics.median(times)
