"""The ``ray`` executor: trials on long-lived Ray actors, on this machine or a cluster.

``workers`` actors are created once; each rebuilds the evaluator from the
:class:`~nasplat.executor.ExecutionContext` and opens its own :class:`~nasplat.store.Store`
(for intermediate values and pruning) once, then runs one trial after another, so a small
trial pays a method call, not a process. Ray is imported in ``open`` only.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import make_url

from nasplat.errors import ConfigError
from nasplat.executor import ExecutionContext, Executor, TrialOutcome, TrialTask
from nasplat.genotype import Genotype
from nasplat.options import Option
from nasplat.registry import EVALUATORS, EXECUTORS, SPACES, load_builtins
from nasplat.run.ray_init import init_keeping_signals
from nasplat.run.trial import describe_error, run_trial, store_reporter, worker_name

log = logging.getLogger("nasplat")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)(: |$)")


class TrialWorker:
    """The body of one Ray actor: builds the evaluator and a store once, then runs tasks."""

    def __init__(self, context: ExecutionContext, setup_modules: tuple[str, ...]) -> None:
        for module in setup_modules:
            importlib.import_module(module)
        load_builtins()
        from nasplat.store import Store

        self.context = context
        self.evaluator = context.build_evaluator()
        self.pruner = self.evaluator.pruner()
        self.store = Store(context.storage_url)
        self.name = worker_name() + gpu_suffix()

    def ready(self) -> str:
        """This worker's name (``host:pid``, plus ``/gpu:IDS`` when Ray assigned GPUs)."""
        return self.name

    def run(self, task: TrialTask) -> TrialOutcome:
        reporter = store_reporter(self.store, self.context.study_id, task.trial_id, self.pruner)
        outcome = run_trial(task, self.evaluator, reporter, self.context.objective)
        return replace(outcome, worker=self.name)


def gpu_suffix() -> str:
    """``/gpu:0,1`` for the GPUs Ray assigned this process (its CUDA_VISIBLE_DEVICES), else ''."""
    import ray

    ids = [str(i) for i in ray.get_gpu_ids()]
    if not ids:
        return ""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    if visible and visible.split(",") != ids:
        return f"/gpu:{','.join(ids)}(cuda:{visible})"
    return f"/gpu:{','.join(ids)}"


@dataclass
class _Running:
    """A task on an actor: which actor slot, and how many times it was retried."""

    task: TrialTask
    slot: int
    retries: int = 0


@EXECUTORS.register("ray", description="long-lived Ray actors on this machine or a Ray cluster")
class RayExecutor(Executor):
    """Runs trials on ``workers`` long-lived Ray actors.

    ``ray_address``: ``None`` or ``"local"`` starts a private Ray instance with
    ``workers * cpus_per_trial`` CPUs (and the machine's GPUs); ``"auto"`` joins the cluster of
    this machine; ``"HOST:PORT"`` joins that cluster. When Ray is already initialised in this
    process, it is used as is. Each actor reserves ``cpus_per_trial`` CPUs and
    ``gpus_per_trial`` GPUs (fractions allowed); Ray sets its CUDA_VISIBLE_DEVICES. An actor
    whose process dies mid-trial is replaced and the trial retried up to ``max_retries``
    times, then reported FAILED. ``setup_modules`` are imported in every actor before the
    evaluator is built (the modules that registered the evaluator and space are added).
    """

    name = "ray"
    OPTIONS = (
        Option("workers", "int", 2, "trials in flight, one long-lived actor each"),
        Option("ray_address", "str", None, "local (a private Ray; default), auto or HOST:PORT"),
        Option("cpus_per_trial", "float", 1.0, "CPUs each actor reserves (fractions allowed)"),
        Option("gpus_per_trial", "float", 0.0, "GPUs each actor reserves (fractions allowed)"),
        Option("max_retries", "int", 2, "retries of a trial whose actor died"),
        Option("setup_modules", "list[str]", (), "modules every actor imports first"),
        Option("start_timeout", "float", 300.0, "seconds to wait for the actors to start"),
    )

    def __init__(
        self,
        *,
        workers: int = 2,
        ray_address: str | None = None,
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
        max_retries: int = 2,
        setup_modules: Iterable[str] | str = (),
        start_timeout: float = 300.0,
    ) -> None:
        if int(workers) < 1:
            raise ConfigError(f"executor ray: workers must be >= 1, got {workers}")
        finite = all(math.isfinite(float(v)) for v in (cpus_per_trial, gpus_per_trial))
        if (
            not finite
            or cpus_per_trial < 0
            or gpus_per_trial < 0
            or cpus_per_trial + gpus_per_trial == 0
        ):
            raise ConfigError(
                "executor ray: cpus_per_trial and gpus_per_trial must be >= 0, not both 0"
            )
        if int(max_retries) < 0:
            raise ConfigError(f"executor ray: max_retries must be >= 0, got {max_retries}")
        if isinstance(setup_modules, str):
            setup_modules = [m for m in setup_modules.split(",") if m.strip()]
        self.workers = int(workers)
        self.ray_address = ray_address
        self.cpus_per_trial = float(cpus_per_trial)
        self.gpus_per_trial = float(gpus_per_trial)
        self.max_retries = int(max_retries)
        self.setup_modules = tuple(m.strip() for m in setup_modules)
        self.start_timeout = float(start_timeout)
        self._ray: Any = None
        self._owns_ray = False
        self._context: ExecutionContext | None = None
        self._store: Any = None
        self._actor_cls: Any = None
        self._modules: tuple[str, ...] = ()
        self._actors: list[Any] = []
        self._idle: deque[int] = deque()
        self._queue: deque[_Running] = deque()
        self._running: dict[Any, _Running] = {}  # object ref -> task on an actor

    @property
    def capacity(self) -> int:
        return self.workers

    def check_store(self, url: str) -> None:
        check_shared_storage(url)

    def search_one_shot(self, strategy: Any, context: Any) -> Genotype:
        """The supernet search data-parallel on ``workers`` Ray Train ranks (one GPU each when
        ``gpus_per_trial`` > 0)."""
        from nasplat.run.oneshot_ray import RankSpec, search_data_parallel
        from nasplat.run.study import plugin_entries, stored_config

        check_shared_storage(context.store.url)
        spec = RankSpec(
            context.store.url,
            context.study.name,
            context.trial.id,
            self.gpus_per_trial > 0,
            plugin_entries(stored_config(context.study)),
        )
        return search_data_parallel(
            spec,
            workers=self.workers,
            cpus_per_worker=self.cpus_per_trial,
            ray_address=self.ray_address,
        )

    # --- set-up -----------------------------------------------------------------------------
    def open(self, context: ExecutionContext, store: Any) -> None:
        check_shared_storage(context.storage_url)
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "executor ray needs Ray: pip install 'nasplat[ray]' (ray[tune,train])"
            ) from None
        self._ray, self._context, self._store = ray, context, store
        if ray.is_initialized():
            log.info("ray: using the Ray instance this process already joined")
        else:
            self._init_ray()
        check_shippable(context)
        try:
            self._check_resources()
            self._modules = self.setup_modules + tuple(
                m for m in plugin_modules(context) if m not in self.setup_modules
            )
            self._actor_cls = ray.remote(
                num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial, max_restarts=0
            )(TrialWorker)
            self._actors = [self._new_actor() for _ in range(self.workers)]
            self._idle = deque(range(self.workers))
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _init_ray(self) -> None:
        address = self.ray_address or "local"
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
        if address == "local":
            kwargs["num_cpus"] = max(1, math.ceil(self.workers * self.cpus_per_trial))
        try:
            init_keeping_signals(self._ray, address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(
                f"executor ray: cannot connect to Ray at {address!r}: {reason}"
            ) from None
        self._owns_ray = True
        total = self._ray.cluster_resources()
        log.info(
            "ray: joined %s (%g CPUs, %g GPUs)", address, total.get("CPU", 0), total.get("GPU", 0)
        )

    def _check_resources(self) -> None:
        total = self._ray.cluster_resources()
        for key, need in (("CPU", self.cpus_per_trial), ("GPU", self.gpus_per_trial)):
            if need > total.get(key, 0.0):
                raise ConfigError(
                    f"executor ray: a trial needs {need:g} {key}(s) but the Ray cluster has "
                    f"{total.get(key, 0.0):g}"
                )
        fits = min(
            total.get(k, 0.0) / need
            for k, need in (("CPU", self.cpus_per_trial), ("GPU", self.gpus_per_trial))
            if need > 0
        )
        if fits < self.workers:
            log.warning(
                "ray: the cluster fits %d of %d workers at once; the others wait for resources",
                int(fits),
                self.workers,
            )

    def _new_actor(self) -> Any:
        return self._actor_cls.remote(self._context, self._modules)

    def _wait_ready(self) -> None:
        """Wait for the actors to start; an actor that cannot build its evaluator is an error."""
        ray = self._ray
        refs = [actor.ready.remote() for actor in self._actors]
        done, pending = ray.wait(refs, num_returns=len(refs), timeout=self.start_timeout)
        names = []
        for ref in done:
            try:
                names.append(ray.get(ref))
            except ray.exceptions.RayError as exc:
                raise ConfigError(
                    f"executor ray: a worker failed to start: {root_cause(exc)}"
                ) from None
        if pending:
            log.warning("ray: %d worker(s) not started after %gs", len(pending), self.start_timeout)
        log.info("ray: %d worker(s) ready: %s", len(names), ", ".join(sorted(names)))

    # --- running ----------------------------------------------------------------------------
    def submit(self, task: TrialTask) -> None:
        self._queue.append(_Running(task, slot=-1))
        self._dispatch()

    def _dispatch(self) -> None:
        while self._idle and self._queue:
            running = self._queue.popleft()
            running.slot = self._idle.popleft()
            ref = self._actors[running.slot].run.remote(running.task)
            self._running[ref] = running

    def wait(self) -> list[TrialOutcome]:
        ray = self._ray
        outcomes: list[TrialOutcome] = []
        while not outcomes and self._running:
            refs = list(self._running)
            ray.wait(refs, num_returns=1)  # block for the first, then take all that are done
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            for ref in ready:
                outcome = self._collect(ref)
                if outcome is not None:
                    outcomes.append(outcome)
            self._dispatch()
        return outcomes

    def _collect(self, ref: Any) -> TrialOutcome | None:
        """The outcome of a finished ref, or None when its trial was requeued for a retry."""
        ray = self._ray
        running = self._running.pop(ref)
        task = running.task
        try:
            outcome: TrialOutcome = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            return self._worker_died(running, root_cause(exc))
        except ray.exceptions.RayError as exc:  # e.g. the task could not be (de)serialised
            self._idle.append(running.slot)
            return TrialOutcome(task.trial_id, "FAILED", None, error=root_cause(exc))
        self._idle.append(running.slot)
        if outcome.trial_id != task.trial_id:  # joined on ids: a mismatch is a bug, not a result
            raise RuntimeError(
                f"ray worker answered trial {outcome.trial_id} for trial {task.trial_id}"
            )
        return outcome

    def _worker_died(self, running: _Running, reason: str) -> TrialOutcome | None:
        task = running.task
        self._ray.kill(self._actors[running.slot], no_restart=True)
        self._actors[running.slot] = self._new_actor()
        self._idle.append(running.slot)
        error = f"worker died: {reason}"
        if running.retries >= self.max_retries:
            log.warning("trial %d: %s; no retries left", task.number, error)
            return TrialOutcome(
                task.trial_id, "FAILED", None, error=f"{error} (after {running.retries} retries)"
            )
        running.retries += 1
        log.warning(
            "trial %d: %s; retry %d of %d", task.number, error, running.retries, self.max_retries
        )
        self._store.mark_retry(task.trial_id, error)
        self._queue.appendleft(running)
        return None

    def close(self) -> None:
        """Kill every actor and, when this executor started Ray, shut it down. Called on every
        exit path (a finished search, an error, a signal); safe to call twice."""
        ray = self._ray
        if ray is None:
            return
        actors, self._actors, self._running = self._actors, [], {}
        self._idle.clear()
        self._queue.clear()
        try:
            for actor in actors:
                try:
                    ray.kill(actor, no_restart=True)
                except Exception:  # noqa: BLE001 - best effort: the actor may be gone already
                    pass
        finally:
            if self._owns_ray:
                self._owns_ray = False
                ray.shutdown()


def check_shared_storage(url: str) -> None:
    """Ray workers open the store themselves: an in-memory database cannot be shared."""
    if url.startswith("memory:"):
        raise ConfigError("executor ray needs a store its worker processes can open, not memory://")
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and (parsed.database or "") in ("", ":memory:"):
        raise ConfigError(
            "executor ray needs a store its worker processes can open: use a SQLite file "
            "(sqlite:///nasplat.db, one machine) or PostgreSQL (clusters), not an in-memory database"
        )


def check_shippable(context: ExecutionContext) -> None:
    """The context (with its plugins, by value where they live in ``__main__``) must pickle with
    cloudpickle, as Ray sends it: one clear error otherwise."""
    import ray.cloudpickle as cloudpickle

    try:
        cloudpickle.dumps(context)
    except Exception as exc:  # noqa: BLE001 - any pickling failure is the same user error
        raise ConfigError(
            f"executor ray: cannot send the study's space, evaluator, data or objective to the "
            f"workers ({describe_error(exc)}); make them picklable or define them in an "
            "importable module"
        ) from None


def plugin_modules(context: ExecutionContext) -> tuple[str, ...]:
    """The modules that registered the context's evaluator and space (imported in workers)."""
    modules = []
    for registry, name in ((EVALUATORS, context.evaluator), (SPACES, context.space)):
        module = getattr(registry.get(name), "__module__", "")
        if module and module != "__main__" and module not in modules:
            modules.append(module)
    return tuple(modules)


def root_cause(exc: BaseException) -> str:
    """One line naming what went wrong in a Ray error: its cause when Ray wrapped one, else
    the last ``SomeError: message`` line of its text (a worker's traceback), else its first."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and cause is not exc:
        return describe_error(cause)
    lines = [ANSI.sub("", line).strip() for line in str(exc).splitlines()]
    raised = [line for line in lines if EXCEPTION_LINE.match(line)]
    if raised:
        return raised[-1]
    return f"{type(exc).__name__}: {next((line for line in lines if line), '')}".rstrip(": ")
