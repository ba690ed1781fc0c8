"""The loop's per-trial work stays flat: no re-proposals, the best kept in memory, checkpoints
taken sparsely and a resume replaying the trials after the last one exactly."""

from __future__ import annotations

from typing import Any

import pytest

import nasplat.run.loop as loop_module
from nasplat.budget import Budget, EvalResult
from nasplat.evaluator import Evaluator, Reporter
from nasplat.genotype import Genotype
from nasplat.registry import SPACES, STRATEGIES, load_builtins
from nasplat.run.local import LocalExecutor
from nasplat.run.loop import LoopContext, TrialLoop
from nasplat.store import MemoryStore, Store, TrialStore
from nasplat.strategy import Observation, Strategy

STRATEGY_OPTIONS: dict[str, dict[str, Any]] = {
    "random": {},
    "evolution": {"population_size": 10, "tournament_size": 3},
    "rl": {},
    "tpe": {"n_startup_trials": 5},
}


class Crash(BaseException):
    """Stands for the search process dying (not an evaluation failure)."""


class HashEvaluator(Evaluator):
    """The value is a fixed function of the architecture; raises Crash at ``crash_at``."""

    name = "hash"

    def __init__(self, space: Any, crash_at: int | None = None) -> None:
        super().__init__(space)
        self.crash_at = crash_at
        self.calls = 0

    def evaluate(self, genotype: Genotype, budget: Budget, reporter: Reporter) -> EvalResult:
        if self.calls == self.crash_at:
            raise Crash
        self.calls += 1
        return EvalResult({"val_acc": int(genotype.sha[:8], 16) / 2**32})


class CountingProposer:
    """The strategy, with its asks counted."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.asks = 0

    def ask(self) -> Genotype:
        self.asks += 1
        return self.strategy.ask()

    def tell(self, observation: Observation) -> None:
        self.strategy.tell(observation)

    def state_dict(self) -> dict[str, Any]:
        return self.strategy.state_dict()

    def avoid(self, seen: Any) -> None:
        self.strategy.avoid(seen)


def setup(store: TrialStore, strategy: str, name: str = "s") -> tuple[Any, Any, Strategy]:
    load_builtins()
    space = SPACES.create("nb201")
    study = store.create_study(
        name,
        space="nb201",
        strategy=strategy,
        evaluator="hash",
        objectives=[("val_acc", "maximize")],
        config={},
    )
    built = STRATEGIES.create(strategy, space, seed=7, **STRATEGY_OPTIONS[strategy])
    return space, study, built


def run_loop(
    store: TrialStore,
    study: Any,
    space: Any,
    proposer: Any,
    target: int,
    *,
    crash_at: int | None = None,
    resumed: dict[str, Any] | None = None,
) -> TrialLoop:
    executor = LocalExecutor()
    executor.attach(HashEvaluator(space, crash_at), store, study.id, study.objective)
    pending = [Genotype.from_dict(g) for g in (resumed or {}).get("pending", [])]
    context = LoopContext(
        store,
        study,
        space,
        proposer,
        executor,
        Budget(),
        target=target,
        already=store.count_trials(study.id, tag=None),
        pending=pending,
        resumed=resumed,
    )
    return TrialLoop(context).run()


@pytest.mark.parametrize("strategy", list(STRATEGY_OPTIONS))
def test_strategies_propose_only_architectures_the_study_has_not_seen(strategy: str) -> None:
    store = MemoryStore()
    space, study, built = setup(store, strategy)
    proposer = CountingProposer(built)
    trials = 120 if strategy == "tpe" else 300
    loop = run_loop(store, study, space, proposer, trials)
    assert loop.finished == trials
    assert proposer.asks == trials  # not one proposal spent on a duplicate
    hashes = [t.arch_hash for t in store.trials(study.id)]
    assert len(set(hashes)) == len(hashes) == trials
    if strategy == "tpe":  # Optuna heard of each architecture once
        told = [
            tuple(t.params.values())
            for t in built.study.trials
            if t.state.name in ("COMPLETE", "PRUNED")
        ]
        assert len(told) == len(set(told)) == trials


def test_a_strategy_avoids_what_the_study_had_before_this_run() -> None:
    store = MemoryStore()
    space, study, built = setup(store, "random")
    run_loop(store, study, space, built, 50)
    again = STRATEGIES.create("random", space, seed=7)  # the same seed proposes the same first
    proposer = CountingProposer(again)
    run_loop(store, study, space, proposer, 80)
    hashes = [t.arch_hash for t in store.trials(study.id)]
    assert len(hashes) == len(set(hashes)) == 80 and proposer.asks == 30


class BestCounting(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.best_calls = 0

    def best_trial(self, study: str | int, tag: str | None = "*") -> Any:
        self.best_calls += 1
        return super().best_trial(study, tag)


def test_the_best_value_is_kept_by_the_loop_not_asked_of_the_store() -> None:
    store = BestCounting()
    space, study, built = setup(store, "random")
    loop = run_loop(store, study, space, built, 40)
    assert store.best_calls == 1  # once, at the start
    assert loop.best == store.trials(study.id)[0].value or loop.best == max(
        t.value for t in store.trials(study.id)
    )


def test_checkpoints_are_sparse_as_the_study_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    saved: list[int] = []

    class Recording(MemoryStore):
        def finish_trial(self, trial_id: int, **kw: Any) -> None:
            if kw.get("checkpoint") is not None:
                saved.append(self._trial(trial_id).number)
            super().finish_trial(trial_id, **kw)

    monkeypatch.setattr(loop_module, "CHECKPOINT_SPREAD", 4)
    store = Recording()
    space, study, built = setup(store, "random")
    run_loop(store, study, space, built, 40)
    gaps = [b - a for a, b in zip(saved, saved[1:], strict=False)]
    assert saved[:4] == [0, 1, 2, 3] and max(gaps) == 9 and len(saved) < 20
    assert store.load_checkpoint(study.id)["next_number"] == 40  # the final one, at the end


@pytest.mark.parametrize("strategy", ["evolution", "rl", "tpe"])
def test_resume_from_a_sparse_checkpoint_replays_exactly(
    strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop_module, "CHECKPOINT_SPREAD", 2)  # a checkpoint every n // 2
    store = Store("sqlite://")
    space, reference_study, reference = setup(store, strategy, "reference")
    run_loop(store, reference_study, space, reference, 40)
    expected = [(t.arch_hash, t.value) for t in store.trials("reference")]

    _, study, first = setup(store, strategy, "crashed")
    with pytest.raises(Crash):
        run_loop(store, study, space, first, 40, crash_at=27)
    # the loop marked its trial in flight INTERRUPTED on the way out; nothing is left RUNNING
    assert store.interrupt_running(study.id) == 0
    checkpoint = store.load_checkpoint(study.id)
    assert checkpoint["next_number"] < 27  # trials to replay after it

    resumed = STRATEGIES.create(strategy, space, seed=7, **STRATEGY_OPTIONS[strategy])
    resumed.load_state_dict(checkpoint["strategy"])
    proposer = CountingProposer(resumed)
    run_loop(store, study, space, proposer, 40, resumed=checkpoint)
    trials = store.trials("crashed")
    assert trials[27].state == "INTERRUPTED" and trials[27].error.startswith("interrupted")
    after = [(t.arch_hash, t.value) for t in trials if t.state == "COMPLETE"]
    assert after == expected  # the interrupted trial cost nothing: 40 evaluated, as uninterrupted
    assert trials[28].arch_hash == trials[27].arch_hash  # evaluated again
    replayed = 27 - checkpoint["next_number"]
    assert proposer.asks == replayed + 13  # the replays, then the interrupted one and 12 new
    assert json_state(resumed) == json_state_after_uninterrupted(strategy, space, store)


def json_state(strategy: Strategy) -> Any:
    import json

    return json.loads(json.dumps(strategy.state_dict()))


def json_state_after_uninterrupted(strategy: str, space: Any, store: TrialStore) -> Any:
    """The state of a strategy run uninterrupted over the same trials (the interrupted trial's
    architecture, evaluated again, is the 28th proposal of both runs)."""
    fresh = MemoryStore()
    _, study, built = setup(fresh, strategy)
    run_loop(fresh, study, space, built, 40)
    return json_state(built)
