"""NNI's hyper-parameter tuners as black-box strategies (``nni-tpe``, ``nni-evolution``, ...).

Needs the optional extra ``nasplat[nni]``; NNI is imported only when such a strategy is
built, so this module imports cleanly without it. Every decision becomes an NNI ``choice``
over its choice *indices*; the tuner is driven through NNI's tuner interface
(``update_search_space``, ``generate_multiple_parameters``, ``receive_trial_result``,
``trial_end``), as NNI's dispatcher drives it.
"""

from __future__ import annotations

import importlib
import logging
import random
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from nasplat.direction import Direction
from nasplat.errors import ConfigError, NasplatError
from nasplat.genotype import Genotype
from nasplat.options import Option
from nasplat.registry import STRATEGIES
from nasplat.space import SearchSpace
from nasplat.strategy import Observation, Strategy
from strategies._encoding import PendingAsks, decode, quiet_logger

__all__ = ["NNI_TUNERS", "NNIStrategy", "NNITunerSpec"]

_log = logging.getLogger(__name__)
_INSTALL_HINT = "install with pip install 'nasplat[nni]'"


def _stdout_handlers_off(logger: logging.Logger) -> None:
    """Drop the stdout handler NNI installs on import: stdout is for data, logs go to stderr."""
    for handler in list(logger.handlers):
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            logger.removeHandler(handler)


def _reseed_evolution(tuner: Any, seed: int) -> None:
    # EvolutionTuner draws its initial population from an unseeded RandomState in
    # update_search_space: seed that RandomState and draw the population again.
    import numpy as np

    tuner.random_state = np.random.RandomState(seed)
    tuner.population = []
    for _ in range(tuner.population_size):
        tuner._random_generate_individual()


def _evolution_busy(tuner: Any) -> bool:
    # With every individual out for evaluation EvolutionTuner raises RuntimeError.
    return not tuner.population or tuner.num_running_trials >= tuner.population_size


def _reseed_hyperopt(tuner: Any, seed: int) -> None:
    import numpy as np

    tuner.rval.rstate = np.random.RandomState(seed)


@dataclass(frozen=True)
class NNITunerSpec:
    """How to build one NNI tuner: module, class, fixed arguments and seeding."""

    module: str
    cls: str
    args: dict[str, Any] = field(default_factory=dict)
    takes_seed: bool = False
    takes_mode: bool = True
    reseed: Callable[[Any, int], None] | None = None
    busy: Callable[[Any], bool] | None = None  # True when the tuner cannot propose now
    requires: str | None = None  # a further package the tuner imports
    description: str = ""


NNI_TUNERS: dict[str, NNITunerSpec] = {
    "tpe": NNITunerSpec(
        "nni.algorithms.hpo.tpe_tuner",
        "TpeTuner",
        takes_seed=True,
        description="NNI's TPE tuner",
    ),
    "evolution": NNITunerSpec(
        "nni.algorithms.hpo.evolution_tuner",
        "EvolutionTuner",
        reseed=_reseed_evolution,
        busy=_evolution_busy,
        description="NNI's naive evolution tuner",
    ),
    "anneal": NNITunerSpec(
        "nni.algorithms.hpo.hyperopt_tuner",
        "HyperoptTuner",
        {"algorithm_name": "anneal"},
        reseed=_reseed_hyperopt,
        requires="hyperopt",
        description="NNI's anneal tuner (hyperopt)",
    ),
    "random": NNITunerSpec(
        "nni.algorithms.hpo.random_tuner",
        "RandomTuner",
        takes_seed=True,
        takes_mode=False,
        description="NNI's random tuner",
    ),
    "gridsearch": NNITunerSpec(
        "nni.algorithms.hpo.gridsearch_tuner",
        "GridSearchTuner",
        takes_mode=False,
        description="NNI's grid search tuner",
    ),
}


class NNIStrategy(Strategy):
    """Adapter from an NNI tuner to the Strategy interface.

    Options: ``tuner`` (one of :data:`NNI_TUNERS`; the registered ``nni-<tuner>`` names fix
    it) and ``tuner_args`` (extra keyword arguments for the tuner's constructor, e.g.
    ``{"population_size": 16}`` for evolution or ``{"tpe_args": {...}}`` for TPE).

    - ``direction`` becomes the tuner's ``optimize_mode`` where it takes one.
    - A FAILED or PRUNED observation ends the tuner's trial with ``success=False`` and no
      result, as NNI's dispatcher does for failed and early-stopped trials.
    - When the tuner has nothing to propose (``NoMoreTrialError``: grid or space exhausted;
      evolution with every individual out for evaluation), the genotype is drawn uniformly with ``self.rng`` and its result is
      not reported to the tuner. Genotypes told without being asked are ignored.
    - Determinism: tuners with a seed argument get ``seed``; unseeded RNGs inside evolution
      and anneal are replaced by seeded ones; calls into the tuner run with Python's and
      NumPy's global RNGs swapped for the adapter's own seeded ones (and restored after).
    - Resume replays the logged tuner calls on a fresh tuner; with the above, a replay
      reproduces the tuner exactly. A replay that proposes different parameters than logged
      (a tuner version with other randomness) is warned about, not hidden.
    """

    name = "nni"
    default_tuner = "tpe"
    OPTIONS = (
        Option("tuner", "str", None, f"NNI tuner: {', '.join(NNI_TUNERS)} (fixed by nni-NAME)"),
        Option("tuner_args", "dict", None, "extra keyword arguments of the tuner's constructor"),
    )

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        direction: str | Direction = Direction.MAXIMIZE,
        tuner: str | None = None,
        tuner_args: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(space, seed=seed, direction=direction)
        self.tuner_name = tuner or self.default_tuner
        if self.tuner_name not in NNI_TUNERS:
            raise ConfigError(
                f"unknown NNI tuner {self.tuner_name!r}; known: {', '.join(sorted(NNI_TUNERS))}"
            )
        self.tuner_args = dict(tuner_args or {})
        self._keys = [f"d{i}" for i in range(len(space.decisions()))]
        self._import_nni()
        self._start()

    # --- tuner construction -------------------------------------------------------------------
    def _import_nni(self) -> None:
        """Import NNI and the tuner's extra requirement, or say what to install."""
        spec = NNI_TUNERS[self.tuner_name]
        try:
            import nni  # noqa: F401 - installed? (installs a stdout log handler)
        except ImportError:
            raise NasplatError(
                f"strategy 'nni-{self.tuner_name}' needs NNI: {_INSTALL_HINT}"
            ) from None
        _stdout_handlers_off(logging.getLogger("nni"))
        if spec.requires is not None:
            try:
                importlib.import_module(spec.requires)
            except ImportError:
                raise NasplatError(
                    f"strategy 'nni-{self.tuner_name}' needs {spec.requires}: "
                    f"pip install {spec.requires}"
                ) from None

    def _start(self) -> None:
        """A fresh tuner and fresh adapter state, as after ``__init__``."""
        spec = NNI_TUNERS[self.tuner_name]
        kwargs = {**spec.args, **self.tuner_args}
        if spec.takes_seed:
            kwargs.setdefault("seed", self.seed)
        if spec.takes_mode:
            kwargs.setdefault("optimize_mode", self.direction.value)
        import numpy as np  # imported by the tuners anyway; not at registration

        self._py_rng = random.Random(f"nasplat-nni-{self.seed}")
        self._np_rng = np.random.RandomState(self.seed)
        with self._global_rngs():
            cls = getattr(importlib.import_module(spec.module), spec.cls)
            self.tuner = cls(**kwargs)
            self.tuner.update_search_space(
                {
                    key: {"_type": "choice", "_value": list(range(len(d.choices)))}
                    for key, d in zip(self._keys, self.space.decisions(), strict=True)
                }
            )
            if spec.reseed is not None:
                spec.reseed(self.tuner, self.seed)
        self._next_id = 0
        self._params: dict[int, dict[str, Any]] = {}  # parameter id -> tuner's parameters
        self._pushed: list[list[Any]] = []  # [id, parameters] sent by the tuner on its own
        self._log: list[list[Any]] = []  # every tuner call, for replay on resume
        self._pending = PendingAsks()  # payload: parameter id, or None for a fallback ask

    @contextmanager
    def _global_rngs(self) -> Iterator[None]:
        """Run with the adapter's own ``random`` and ``np.random`` states (restored after), quietly."""
        import numpy as np

        saved_py, saved_np = random.getstate(), np.random.get_state()
        random.setstate(self._py_rng.getstate())
        np.random.set_state(self._np_rng.get_state())
        try:
            with quiet_logger("nni"):
                yield
        finally:
            self._py_rng.setstate(random.getstate())
            self._np_rng.set_state(np.random.get_state())
            random.setstate(saved_py)
            np.random.set_state(saved_np)

    # --- tuner calls (each logged for replay) ---------------------------------------------------
    def _generate(self, parameter_id: int) -> dict[str, Any] | None:
        self._log.append(["gen", parameter_id])
        busy = NNI_TUNERS[self.tuner_name].busy
        if busy is not None and busy(self.tuner):
            return None
        with self._global_rngs():
            result = self.tuner.generate_multiple_parameters(
                [parameter_id], st_callback=self._receive_pushed
            )
        if not result:
            return None
        self._params[parameter_id] = result[0]
        return result[0]

    def _receive_pushed(self, parameter_id: int, parameters: Any, *args: Any, **kw: Any) -> None:
        self._params[parameter_id] = parameters
        self._pushed.append([parameter_id, parameters])

    def _result(self, parameter_id: int, value: float | None) -> None:
        self._log.append(["end", parameter_id, value])
        with self._global_rngs():
            if value is not None:
                self.tuner.receive_trial_result(parameter_id, self._params[parameter_id], value)
            self.tuner.trial_end(parameter_id, value is not None)

    def _genotype(self, parameters: dict[str, Any]) -> Genotype:
        indices = [int(parameters[key]) for key in self._keys]
        return decode(self.space, indices)

    # --- Strategy interface -------------------------------------------------------------------
    def ask(self) -> Genotype:
        if self._pushed:
            parameter_id, parameters = self._pushed.pop(0)
        else:
            parameter_id, self._next_id = self._next_id, self._next_id + 1
            parameters = self._generate(parameter_id)
        if parameters is None:
            genotype = self.space.sample(self.rng)
            self._pending.add(genotype, None)
            return genotype
        genotype = self._genotype(parameters)
        self._pending.add(genotype, parameter_id)
        return genotype

    def tell(self, observation: Observation) -> None:
        found, parameter_id = self._pending.pop(observation.genotype)
        if not found or parameter_id is None:
            _log.debug("nni-%s: ignoring a result the tuner did not propose", self.tuner_name)
            return
        value = observation.value
        ok = observation.state == "COMPLETE" and value is not None and value == value
        self._result(parameter_id, float(value) if ok and value is not None else None)

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "tuner": self.tuner_name,
            "next_id": self._next_id,
            "log": [list(entry) for entry in self._log],
            "proposed": {str(k): v for k, v in self._params.items()},
            "pushed": [list(p) for p in self._pushed],
            "pending": self._pending.to_list(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["tuner"] != self.tuner_name:
            raise ConfigError(
                f"checkpoint is for NNI tuner {state['tuner']!r}, not {self.tuner_name!r}"
            )
        self._start()
        logged = {int(k): v for k, v in state["proposed"].items()}
        for kind, parameter_id, *rest in state["log"]:
            if kind == "gen":
                proposed = self._generate(parameter_id)
                if proposed is not None and proposed != logged.get(parameter_id):
                    warnings.warn(
                        f"nni-{self.tuner_name}: replay proposed {proposed} for trial "
                        f"{parameter_id}, the checkpoint holds {logged.get(parameter_id)}; "
                        "resume is not exact",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            else:
                self._result(parameter_id, rest[0])
        self._params.update(logged)
        self._pushed = [list(p) for p in state["pushed"]]
        self._next_id = state["next_id"]
        self._pending = PendingAsks.from_list(state["pending"])
        super().load_state_dict(state)


def _register() -> None:
    for tuner, spec in NNI_TUNERS.items():
        name = f"nni-{tuner}"
        cls = type(
            f"NNI{tuner.title()}Strategy",
            (NNIStrategy,),
            {
                "name": name,
                "default_tuner": tuner,
                "__doc__": f"{spec.description}.",
                "__module__": __name__,  # not abc's, the metaclass's module
            },
        )
        STRATEGIES.add(name, cls, description=f"{spec.description} (extra nasplat[nni])")


_register()
