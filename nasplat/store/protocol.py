"""The trial-store protocol: what the run layer, the commands and the dashboards ask of a store.

Two implementations: :class:`nasplat.store.Store` (SQL: SQLite by default, PostgreSQL for
clusters) and :class:`nasplat.store.MemoryStore` (a dict, for benchmarks and quick runs that need
no file). :func:`nasplat.store.open_store` picks one from a URL (``memory://`` is the in-memory one).

Rules every implementation keeps:
- Records handed out are frozen (:class:`StudyRecord`, :class:`TrialRecord`); callers never see
  live rows.
- Trial numbers are unique and increasing per study, also with several writers.
- ``claim_trial`` is atomic: processes sharing a study never evaluate one architecture twice at
  one budget and never together exceed the limit they claim under.
- ``finish_trial`` stores the outcome, its metrics, kept weights and the strategy checkpoint
  together: a crash never leaves a result without the checkpoint that has seen it.
- ``tag``: ``None`` always means "untagged trials only"; :data:`ANY_TAG` means every trial.
- Stored genotypes are canonical (the caller canonicalises before ``create_trial``).
- The trial loop's calls (``create_trial``, ``finish_trial``, ``find_evaluated``) cost the same
  whatever the study's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from nasplat.budget import Budget
from nasplat.genotype import Genotype
from nasplat.store.records import ANY_TAG, FINISHED, Claim, StudyRecord, TrialRecord

__all__ = ["ANY_TAG", "TrialStore"]


@runtime_checkable
class TrialStore(Protocol):
    """Studies, their trials, values, intermediate values, checkpoints and kept weights."""

    url: str

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden (for messages)."""

    def close(self) -> None: ...

    # studies
    def create_study(
        self,
        name: str,
        *,
        space: str,
        strategy: str,
        evaluator: str,
        objectives: Sequence[tuple[str, str]],
        config: dict[str, Any],
    ) -> StudyRecord:
        """A new study (StorageError when the name is taken)."""

    def get_study(self, name: str) -> StudyRecord: ...
    def has_study(self, name: str) -> bool: ...
    def study_names(self) -> list[str]: ...
    def list_studies(self) -> list[dict[str, Any]]: ...
    def delete_study(self, name: str) -> None: ...
    def setdefault_study_config(self, study_id: int, key: str, value: Any) -> Any:
        """Store ``value`` under ``key`` in the study's config unless it holds one already, in
        one transaction; return what it holds then (so processes sharing a study agree on the
        first value written, e.g. a hypervolume reference point)."""

    # trials
    def create_trial(
        self,
        study_id: int,
        genotype: Genotype,
        budget: Budget,
        *,
        worker: str | None = None,
        tag: str | None = None,
    ) -> TrialRecord:
        """A new RUNNING trial with the study's next number."""

    def claim_trial(
        self,
        study_id: int,
        genotype: Genotype,
        budget: Budget,
        *,
        tag: str | None = None,
        limit: int | None = None,
        owner: str | None = None,
    ) -> Claim:
        """Atomically (one step no other process interleaves with): the study's COMPLETE or
        PRUNED trial of this architecture at this budget (``evaluated``), else its RUNNING
        trial in another live process (``running``), else ``full`` when the study has
        ``limit`` trials with ``tag`` RUNNING or finished, else a new RUNNING trial owned by
        ``owner`` (``new``)."""

    def interrupt_orphans(
        self, study_id: int, trial_ids: Iterable[int] | None = None, *, mine: bool = False
    ) -> int:
        """Mark RUNNING trials whose owner process is dead INTERRUPTED (``mine``: this process's
        own too); returns how many."""

    def beat(self, owner: str) -> None:
        """Search process ``owner`` is alive (its heartbeat, for other machines to see)."""

    def end_beat(self, owner: str) -> None:
        """Search process ``owner`` has stopped."""

    def finish_trial(
        self,
        trial_id: int,
        *,
        state: str,
        value: float | None = None,
        metrics: dict[str, float] | None = None,
        error: str | None = None,
        weights: bytes | None = None,
        keep_weights: str = "best",
        checkpoint: dict[str, Any] | None = None,
        worker: str | None = None,
    ) -> None: ...

    def set_trial_architecture(self, trial_id: int, genotype: Genotype) -> None: ...
    def mark_retry(self, trial_id: int, error: str) -> None: ...
    def interrupt_running(self, study_id: int, trial_ids: Iterable[int] | None = None) -> int:
        """Mark the study's RUNNING trials (``trial_ids``: only those) INTERRUPTED; returns
        how many. Interrupted trials stay on record, are not counted by ``count_trials``'s
        default states, and are evaluated again on resume."""

    def get_trial(self, trial_id: int) -> TrialRecord: ...

    def trials(
        self,
        study: str | int,
        *,
        states: Iterable[str] | None = None,
        with_intermediate: bool = False,
        since: int = 0,
    ) -> list[TrialRecord]:
        """Trials in number order; ``since``: only those numbered ``since`` or more."""

    def count_trials(
        self, study_id: int, states: Iterable[str] = FINISHED, tag: str | None = ANY_TAG
    ) -> int: ...

    def best_trial(self, study: str | int, tag: str | None = ANY_TAG) -> TrialRecord: ...

    def find_evaluated(
        self, study_id: int, genotype: Genotype, budget: Budget
    ) -> TrialRecord | None:
        """A COMPLETE or PRUNED trial of this canonical architecture at this budget."""

    def trial_index(self, study_id: int, budget: Budget) -> list[tuple[int, str, str]]:
        """``(number, architecture hash, state)`` of each trial at ``budget``, in number order."""

    def trial_weights(self, trial_id: int) -> bytes | None: ...

    # learning curves
    def report_intermediate(
        self, trial_id: int, step: int, value: float, key: str = "value"
    ) -> None: ...

    def intermediate_values(
        self, trial_id: int, key: str | None = "value"
    ) -> list[tuple[int, float]]: ...

    def intermediate_series(self, trial_id: int) -> dict[str, list[tuple[int, float]]]: ...

    # strategy checkpoints
    def save_checkpoint(self, study_id: int, state: dict[str, Any]) -> None: ...
    def load_checkpoint(self, study_id: int) -> dict[str, Any] | None: ...
    def prune_checkpoints(self, study_id: int, keep: int = 3) -> None: ...

    # tables
    def trials_dataframe(self, study: str | int) -> Any: ...
