"""Data-parallel one-shot search on Ray Train (``--strategy darts|enas --executor ray``).

:func:`run_data_parallel` runs a per-rank function under Ray Train's ``TorchTrainer`` (gloo on
CPU, NCCL on GPU) and returns what every rank returned. Inside, :class:`DataParallel` holds
the collective operations a supernet search needs: broadcast the initial module from rank 0,
average gradients (network weights *and* architecture parameters) before each optimiser step,
shard the training data, and average logged values. With identical initial parameters,
identical averaged gradients and deterministic optimisers, the architecture parameters stay
identical on every rank, so every rank derives the same genotype.

:func:`search_data_parallel` applies this to an unchanged one-shot strategy: every rank
rebuilds the study's :class:`~nasplat.search.Search` from the store, trains on its shard of the
training split, and averages the gradients of every optimiser the strategy created (an
optimiser step pre-hook); rank 0 alone writes progress to the store. Ray is imported lazily.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasplat.errors import ConfigError, NasplatError
from nasplat.oneshot import OneShotContext

RESULTS_FILE = "ranks.json"

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset

    from nasplat.genotype import Genotype
    from nasplat.search import Search


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

    def average_values(self, values: Mapping[str, float]) -> dict[str, float]:
        """The mean of each value over the ranks (every rank passes the same keys)."""
        import torch

        keys = sorted(values)
        tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
        self.dist.all_reduce(tensor)
        return {k: v / self.world_size for k, v in zip(keys, tensor.tolist(), strict=True)}

    def shard(self, dataset: TensorDataset) -> TensorDataset:
        """This rank's equal share of a dataset (every ``world_size``-th sample from ``rank``;
        the remainder is dropped so every rank takes the same number of steps)."""
        from torch.utils.data import TensorDataset

        size = len(dataset) // self.world_size
        return TensorDataset(
            *(t[self.rank : size * self.world_size : self.world_size] for t in dataset.tensors)
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
        ray.init(address=address, include_dashboard=False, **(extra if address == "local" else {}))
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
class FollowerContext(OneShotContext):
    """The one-shot context of ranks > 0: reads the store like rank 0, writes nothing."""

    def report(self, epoch: int, key: str, value: float) -> None:
        pass

    def log(self, message: str) -> None:
        pass

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        pass

    def end_epoch(self, epoch: int, genotype: Any, values: Any, state: Any) -> None:
        self.epochs_done.append(epoch)


def _search_rank(dp: DataParallel, config: dict[str, Any]) -> dict[str, Any]:
    """One rank of :func:`search_data_parallel`."""
    import torch

    from nasplat.config import SearchConfig
    from nasplat.data import load_dataset
    from nasplat.search import Search
    from nasplat.store import Store

    store = Store(config["storage_url"])
    search = Search(SearchConfig.from_dict(config["search_config"]), store, resume=True)
    search_config = search.config
    splits = load_dataset(
        search_config.dataset, data_dir=search_config.data_dir, seed=search_config.seed
    )
    splits = dataclasses.replace(splits, train=dp.shard(splits.train))
    device = (
        torch.device("cuda", torch.cuda.current_device())
        if config["use_gpu"]
        else torch.device("cpu")
    )
    trial = store.get_trial(config["trial_id"])
    context_cls = OneShotContext if dp.is_main else FollowerContext
    context = context_cls(search, splits, device, trial)
    strategy = search.strategy
    setup = strategy.setup

    def synced_setup(ctx: Any) -> None:
        setup(ctx)
        dp.broadcast_module(strategy.supernet)
        dp.sync_optimizers(strategy)

    strategy.setup = synced_setup
    genotype = strategy.search(context)
    store.close()
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


def search_data_parallel(search: Search, context: OneShotContext) -> Genotype:
    """Run ``search.strategy.search`` data-parallel on Ray Train with the ``workers``,
    ``gpus_per_trial`` and ``ray_address`` of the study's ray executor options; returns the
    genotype all ranks derived. An error when the ranks disagree on the genotype or on any
    parameter of the strategy's optimisers (supernet weights, architecture parameters, an
    ENAS controller)."""
    from nasplat.genotype import Genotype
    from nasplat.ray_executor import check_shared_storage

    options = search.config.executor_options
    check_shared_storage(search.store.url)
    use_gpu = float(options.get("gpus_per_trial", 0) or 0) > 0
    results = run_data_parallel(
        _search_rank,
        {
            "storage_url": search.store.url,
            "search_config": search.config.to_dict(),
            "trial_id": context.trial.id,
            "use_gpu": use_gpu,
        },
        workers=int(options.get("workers", 2)),
        use_gpu=use_gpu,
        cpus_per_worker=float(options.get("cpus_per_trial", 1)),
        ray_address=options.get("ray_address"),
    )
    genotypes = [Genotype.from_dict(r["genotype"]) for r in results]
    if any(g != genotypes[0] for g in genotypes):
        raise NasplatError(
            f"the ranks derived different genotypes: {[g.to_json() for g in genotypes]}"
        )
    if not results[0]["parameters"]:
        raise NasplatError(f"strategy {search.config.strategy!r} has no optimiser to synchronise")
    if any(r["parameters"] != results[0]["parameters"] for r in results):
        raise NasplatError("the ranks ended with different parameters (gradients not averaged?)")
    return genotypes[0]
