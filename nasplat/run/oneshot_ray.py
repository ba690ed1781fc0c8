"""Data-parallel one-shot search on Ray Train (``--strategy darts|enas --executor ray``).

:func:`run_data_parallel` runs a per-rank function under Ray Train's ``TorchTrainer`` (gloo on
CPU, NCCL on GPU) and returns what every rank returned. Inside, :class:`DataParallel` holds
the collective operations a supernet search needs: broadcast the initial module from rank 0,
average gradients (network weights *and* architecture parameters) before each optimiser step,
shard the training data, and average logged values. With identical initial parameters,
identical averaged gradients and deterministic optimisers, the architecture parameters stay
identical on every rank, so every rank derives the same genotype.

:func:`search_data_parallel` applies this to an unchanged one-shot strategy: every rank
builds its own strategy and context from a :class:`RankSpec` (plain data: the store's URL, the
study's name, the supernet trial), trains on its shard of the evaluator's data at the study's
budget, and averages the gradients of every optimiser the strategy created (an optimiser step
pre-hook, installed when the strategy calls ``context.prepared``); rank 0 alone writes progress
to the store. Ray is imported lazily.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasplat.errors import ConfigError, NasplatError
from nasplat.run.oneshot import OneShotContext
from nasplat.run.ray_init import init_keeping_signals

RESULTS_FILE = "ranks.json"

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import Dataset, TensorDataset

    from nasplat.genotype import Genotype
    from nasplat.strategy import OneShotStrategy


class DataParallel:
    """Collective operations of one rank in an initialised ``torch.distributed`` group."""

    def __init__(self) -> None:
        import torch.distributed as dist

        if not dist.is_initialized():
            raise RuntimeError("DataParallel needs an initialised torch.distributed process group")
        self.dist = dist
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank."""
        for tensor in [*module.parameters(), *module.buffers()]:
            self.dist.broadcast(tensor.data, src=0)

    def average_gradients(self, params: Iterable[torch.Tensor]) -> None:
        """Replace each parameter's ``.grad`` with its mean over the ranks (one all-reduce; a
        missing gradient counts as zero, and is set when another rank has one)."""
        import torch

        params = [p for p in params if p.requires_grad]
        if not params or self.world_size == 1:
            return
        flat = torch.cat(
            [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
        )
        self.dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n

    def shard(self, dataset: Dataset) -> TensorDataset:
        """This rank's equal share of a dataset (every ``world_size``-th sample from ``rank``;
        the remainder is dropped so every rank takes the same number of steps), in memory."""
        from torch.utils.data import TensorDataset

        from nasplat.ml.data import tensors_of

        size = len(dataset) // self.world_size
        return TensorDataset(
            *(t[self.rank : size * self.world_size : self.world_size] for t in tensors_of(dataset))
        )

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        out: list[Any] = [None] * self.world_size
        self.dist.all_gather_object(out, obj)
        return out

    def sync_optimizers(self, owner: Any) -> int:
        """Average the gradients of every optimiser attribute of ``owner`` before each of its
        steps (a step pre-hook); returns how many were hooked."""
        import torch

        hooked = 0
        for value in vars(owner).values():
            if isinstance(value, torch.optim.Optimizer):
                params = [p for group in value.param_groups for p in group["params"]]
                value.register_step_pre_hook(
                    lambda _opt, _args, _kwargs, params=params: self.average_gradients(params)
                )
                hooked += 1
        return hooked


def _rank_main(config: dict[str, Any]) -> None:
    """Ray Train's per-worker loop: run the user function; rank 0 reports every rank's result
    (as a checkpoint file, which Ray Train keeps for the driver)."""
    import ray.cloudpickle as cloudpickle
    from ray import train

    fn = cloudpickle.loads(bytes.fromhex(config["fn"]))
    dp = DataParallel()
    results = dp.gather(fn(dp, config["config"]))
    with tempfile.TemporaryDirectory(prefix="nasplat-rank-") as folder:
        checkpoint = None
        if dp.is_main:
            Path(folder, RESULTS_FILE).write_text(json.dumps(results))
            checkpoint = train.Checkpoint.from_directory(folder)
        train.report({"ranks": len(results)}, checkpoint=checkpoint)


def run_data_parallel(
    fn: Callable[[DataParallel, dict[str, Any]], Any],
    config: dict[str, Any] | None = None,
    *,
    workers: int = 2,
    use_gpu: bool = False,
    cpus_per_worker: float = 1.0,
    ray_address: str | None = None,
) -> list[Any]:
    """Run ``fn(dp, config)`` on ``workers`` ranks with Ray Train's TorchTrainer (gloo on CPU,
    NCCL on GPU); returns the JSON-able results of the ranks, in rank order.

    Starts a local Ray instance (or joins ``ray_address``) when Ray is not initialised yet,
    and shuts it down again afterwards.
    """
    try:
        import ray
        import ray.cloudpickle as cloudpickle
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer
    except ImportError:
        raise ConfigError("one-shot on Ray needs Ray Train: pip install 'nasplat[ray]'") from None
    owns_ray = not ray.is_initialized()
    if owns_ray:
        address = ray_address or "local"
        extra = {"num_cpus": max(1, round(workers * cpus_per_worker + 0.4999)) + 1}
        init_keeping_signals(
            ray, address=address, include_dashboard=False, **(extra if address == "local" else {})
        )
    try:
        with tempfile.TemporaryDirectory(prefix="nasplat-train-") as storage:
            trainer = TorchTrainer(
                _rank_main,
                train_loop_config={"fn": cloudpickle.dumps(fn).hex(), "config": config or {}},
                torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
                scaling_config=ScalingConfig(
                    num_workers=workers,
                    use_gpu=use_gpu,
                    resources_per_worker={
                        "CPU": cpus_per_worker,
                        **({"GPU": 1} if use_gpu else {}),
                    },
                ),
                run_config=RunConfig(storage_path=storage, name="nasplat-oneshot"),
            )
            result = trainer.fit()
            if result.error is not None or result.checkpoint is None:
                raise NasplatError(f"data-parallel training failed: {result.error}")
            with result.checkpoint.as_directory() as folder:
                return json.loads(Path(folder, RESULTS_FILE).read_text())
    finally:
        if owns_ray:
            ray.shutdown()


# --- one-shot strategies -------------------------------------------------------------------------
@dataclasses.dataclass
class RankContext(OneShotContext):
    """The one-shot context of one rank: synchronises the strategy's supernet and optimisers
    when it is prepared; ranks > 0 read the store like rank 0 but write nothing."""

    dp: Any = None

    @property
    def is_main(self) -> bool:
        return self.dp.is_main

    def prepared(self, strategy: OneShotStrategy) -> None:
        self.dp.broadcast_module(strategy.supernet)
        self.dp.sync_optimizers(strategy)

    def mean_across_workers(self, values: list[float]) -> list[float]:
        gathered = self.dp.gather(list(values))
        return [sum(column) / len(column) for column in zip(*gathered, strict=True)]

    def report(self, epoch: int, key: str, value: float) -> None:
        if self.is_main:
            super().report(epoch, key, value)

    def log(self, message: str) -> None:
        if self.is_main:
            super().log(message)

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        if self.is_main:
            super().save_checkpoint(state)

    def end_epoch(self, epoch: int, genotype: Any, values: Any, state: Any) -> None:
        if self.is_main:
            super().end_epoch(epoch, genotype, values, state)
        else:
            self.epochs_done.append(epoch)


@dataclasses.dataclass(frozen=True)
class RankSpec:
    """Plain data from which every rank builds its strategy and context."""

    storage_url: str
    study: str
    trial_id: int
    use_gpu: bool = False
    plugins: tuple[tuple[str, str, Any], ...] = ()
    """The study's plugins by object (see :attr:`nasplat.executor.ExecutionContext.plugins`)."""

    def build(self, dp: DataParallel) -> tuple[Any, RankContext]:
        """This rank's strategy (from the study's stored config) and context (its shard of the
        evaluator's data at the study's budget, on its device)."""
        import torch

        from nasplat.registry import REGISTRIES
        from nasplat.run.study import build_plugins, stored_config
        from nasplat.store import open_store

        for kind, name, obj in self.plugins:
            REGISTRIES[kind].add(name, obj, replace=True)
        store = open_store(self.storage_url)
        study = store.get_study(self.study)
        config = stored_config(study)
        space, strategy, evaluator = build_plugins(config)
        budget = strategy.search_budget(evaluator.resolve_budget(config.trial_budget()))
        splits = evaluator.load_splits(budget)
        splits = dataclasses.replace(splits, train=dp.shard(splits.train))
        device = (
            torch.device("cuda", torch.cuda.current_device())
            if self.use_gpu
            else torch.device("cpu")
        )
        trial = store.get_trial(self.trial_id)
        context = RankContext(store, study, space, config.seed, splits, device, trial, dp=dp)
        return strategy, context


def _search_rank(dp: DataParallel, config: dict[str, Any]) -> dict[str, Any]:
    """One rank of :func:`search_data_parallel`."""
    strategy, context = RankSpec(**config).build(dp)
    genotype = strategy.search(context)
    context.store.close()
    return {
        "rank": dp.rank,
        "genotype": genotype.to_dict(),
        "parameters": parameter_digests(strategy),
    }


def parameter_digests(owner: Any) -> dict[str, str]:
    """A SHA-256 of the parameters of each optimiser attribute of ``owner`` (equal digests:
    bit-identical parameters)."""
    import hashlib

    import torch

    digests = {}
    for name, value in sorted(vars(owner).items()):
        if isinstance(value, torch.optim.Optimizer):
            digest = hashlib.sha256()
            for group in value.param_groups:
                for p in group["params"]:
                    digest.update(p.detach().cpu().contiguous().numpy().tobytes())
            digests[name] = digest.hexdigest()
    return digests


def search_data_parallel(
    spec: RankSpec,
    *,
    workers: int = 2,
    cpus_per_worker: float = 1.0,
    ray_address: str | None = None,
) -> Genotype:
    """Run a study's one-shot search data-parallel on Ray Train; returns the genotype all ranks
    derived. An error when the ranks disagree on the genotype or on any parameter of the
    strategy's optimisers (supernet weights, architecture parameters, an ENAS controller)."""
    from nasplat.genotype import Genotype

    results = run_data_parallel(
        _search_rank,
        dataclasses.asdict(spec),
        workers=workers,
        use_gpu=spec.use_gpu,
        cpus_per_worker=cpus_per_worker,
        ray_address=ray_address,
    )
    genotypes = [Genotype.from_dict(r["genotype"]) for r in results]
    if any(g != genotypes[0] for g in genotypes):
        raise NasplatError(
            f"the ranks derived different genotypes: {[g.to_json() for g in genotypes]}"
        )
    if not results[0]["parameters"]:
        raise NasplatError("the one-shot strategy has no optimiser to synchronise")
    if any(r["parameters"] != results[0]["parameters"] for r in results):
        raise NasplatError("the ranks ended with different parameters (gradients not averaged?)")
    return genotypes[0]
