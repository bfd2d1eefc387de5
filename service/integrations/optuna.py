"""`TunesmithSampler`: an Optuna sampler that runs tunesmith's GP engine in-process.

    import optuna
    from service.integrations.optuna import TunesmithSampler

    study = optuna.create_study(sampler=TunesmithSampler(seed=0))
    study.optimize(objective, n_trials=50)

Rules:
- Relative sampling over the intersection search space (the parameters every complete and
  pruned trial has, with the same distribution; single-valued ones left to Optuna): each
  trial's configuration is one suggestion of the `gp` strategy, exactly as the server makes
  it (Sobol design for the first `n_startup_trials`, then the GP with `acquisition`). The
  distributions map exactly (`optuna_space`): steps and categoricals become grid and choice
  indices, so every suggestion is a value Optuna allows.
- History: complete trials are observations with their value; pruned trials count at their
  last intermediate value (as failed when they have none); failed trials (including NaN
  values, which Optuna records as failed) are failed observations, which the engine imputes
  as bad; RUNNING trials with every parameter are pending points, so parallel workers
  (`n_jobs`, several processes on one storage) get distinct configurations. A trial only
  counts if it has every parameter of the space with the same distribution.
- Parameters outside the relative space (conditional, or their range changed) go to
  `independent_sampler` (default: `RandomSampler` with the same seed).
- The engine's state between calls (the Sobol position, the GP's hyperparameters to warm
  start from, the GP-Hedge gains of `acquisition="auto"`) is kept in this sampler per study
  and search space, as a cache: a new process starts it afresh, and loses nothing else.
- Single-objective studies only: multi-objective ones raise ValueError.
- `server`: also mirror the study into a tunesmith study (`OptunaMirror`), so the trials
  appear on tunesmith's dashboard with its GP view. Mirroring never fails the Optuna study.
- Thread-safe (Optuna's `n_jobs`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import intersection_search_space
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from service.client import Client
from service.domain import Direction
from service.domain import TrialState as Finished
from service.integrations.optuna_mirror import OptunaMirror
from service.integrations.optuna_space import EngineSpace
from service.optimizer import (
    AcquisitionName,
    Observation,
    StrategyName,
    StrategySpec,
    SuggestRequest,
    get_strategy,
)

logger = logging.getLogger(__name__)

_STATE_CACHE = 16
_HISTORY_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)


def _observation(trial: FrozenTrial, params: dict[str, Any]) -> Observation:
    if trial.state == TrialState.COMPLETE:
        return Observation(params, trial.value, Finished.COMPLETE)
    if trial.state == TrialState.PRUNED and trial.intermediate_values:
        step = max(trial.intermediate_values)
        return Observation(params, trial.intermediate_values[step], Finished.PRUNED, step)
    if trial.state == TrialState.PRUNED:
        return Observation(params, None, Finished.PRUNED)
    return Observation(params, None, Finished.FAILED)


class TunesmithSampler(BaseSampler):
    """tunesmith's GP engine as an Optuna sampler (see the module's rules).

    `acquisition`: "auto" (GP-Hedge over UCB, PI and EI), "ei", "pi" or "ucb"; `beta`, `xi`,
    `output_warping` as in the study's `strategy`. `n_startup_trials`: Sobol trials before
    the GP (default: twice the number of parameters, clipped to [5, 10]). `seed` makes the
    sampler reproducible. `server` (a tunesmith URL) and `token` (default: TUNESMITH_TOKEN,
    then ~/.tunesmith/token) turn on the mirror; `mirror_study` names the tunesmith study
    (default: the Optuna study's name). Raises ValueError for invalid settings.
    """

    def __init__(
        self,
        *,
        acquisition: str = "auto",
        seed: int | None = None,
        n_startup_trials: int | None = None,
        beta: float = 2.0,
        xi: float = 0.01,
        output_warping: bool = True,
        independent_sampler: BaseSampler | None = None,
        warn_independent_sampling: bool = True,
        server: str | None = None,
        token: str | None = None,
        mirror_study: str | None = None,
    ) -> None:
        self._spec = StrategySpec(
            name=StrategyName.GP,
            acquisition=AcquisitionName(acquisition),
            beta=beta,
            xi=xi,
            n_initial=n_startup_trials,
            output_warping=output_warping,
        )
        self._strategy, _ = get_strategy(StrategyName.GP)
        self._rng = np.random.default_rng(seed)
        self._independent_sampler = independent_sampler or RandomSampler(seed=seed)
        self._warn_independent_sampling = warn_independent_sampling
        self._warned: set[str] = set()
        self._states: OrderedDict[tuple[int, int, str], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._mirror = (
            OptunaMirror(
                Client(server, token, timeout=10.0, retry_seconds=5.0),
                acquisition=self._spec.acquisition.value,
                name=mirror_study,
            )
            if server is not None
            else None
        )

    def reseed_rng(self) -> None:
        with self._lock:
            self._rng = np.random.default_rng()
        self._independent_sampler.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        _require_single_objective(study)
        trials = study._get_trials(deepcopy=False, use_cache=True)
        space = intersection_search_space(trials, include_pruned=True)
        return {name: dist for name, dist in space.items() if not dist.single()}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        _require_single_objective(study)
        if not search_space:
            return {}
        engine = EngineSpace(search_space)
        observations, pending = self._history(study, trial, engine)
        key = (id(study._storage), study._study_id, engine.key)
        with self._lock:
            seed = int(self._rng.integers(2**31))
            state = self._states.get(key, {})
        result = self._strategy.suggest(
            SuggestRequest(
                space=engine.space,
                direction=(
                    Direction.MAXIMIZE
                    if study.direction == StudyDirection.MAXIMIZE
                    else Direction.MINIMIZE
                ),
                spec=self._spec,
                observations=observations,
                pending=pending,
                count=1,
                seed=seed,
                state=state,
            )
        )
        for message in result.warnings:
            logger.warning("study %r trial %d: %s", study.study_name, trial.number, message)
        with self._lock:
            self._states[key] = result.state
            self._states.move_to_end(key)
            while len(self._states) > _STATE_CACHE:
                self._states.popitem(last=False)
        return engine.to_optuna(result.suggestions[0].params)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        _require_single_objective(study)
        if self._warn_independent_sampling and param_name not in self._warned:
            complete = study._get_trials(
                deepcopy=False, states=(TrialState.COMPLETE,), use_cache=True
            )
            if complete:
                self._warned.add(param_name)
                logger.warning(
                    "study %r: parameter %r is sampled by %s, outside the GP: not every "
                    "finished trial has it with this distribution",
                    study.study_name,
                    param_name,
                    type(self._independent_sampler).__name__,
                )
        return self._independent_sampler.sample_independent(
            study, trial, param_name, param_distribution
        )

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._independent_sampler.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._independent_sampler.after_trial(study, trial, state, values)
        if self._mirror is not None:
            self._mirror.record(study, trial, state, values)

    def _history(
        self, study: Study, current: FrozenTrial, engine: EngineSpace
    ) -> tuple[list[Observation], list[dict[str, Any]]]:
        observations: list[Observation] = []
        pending: list[dict[str, Any]] = []
        for t in study._get_trials(deepcopy=False, states=_HISTORY_STATES, use_cache=True):
            if t.number == current.number or not engine.contains(t.distributions):
                continue
            params = engine.to_engine(t.params)
            if t.state == TrialState.RUNNING:
                pending.append(params)
            else:
                observations.append(_observation(t, params))
        return observations, pending


def _require_single_objective(study: Study) -> None:
    if len(study.directions) > 1:
        raise ValueError(
            f"TunesmithSampler optimizes one objective; study {study.study_name!r} has "
            f"{len(study.directions)}"
        )
