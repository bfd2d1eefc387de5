"""A study's next configurations, in three steps that hold no lock while the strategy runs.

1. `read_input` (a short read transaction): the strategy's input rebuilt from the stored
   trials (designer-per-request), and a fingerprint of the study's trials.
2. `compute` (no transaction at all): the strategy's suggestions. Whatever it raises is the
   study's own problem: `SuggestionFailed` carries the reason, and the scheduler sets the
   study aside instead of failing the request.
3. `store` (a short write transaction under the study's lock): the suggestions become QUEUED
   trials. If the study's trials changed meanwhile (another server or thread suggested,
   a trial finished), a suggestion is still accepted when it is not a configuration that a
   trial already has; otherwise the caller computes again with the new input.

The strategy's state is last-writer-wins (it is a cache of fits and gains; losing one
update costs a refit, never a trial).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from service.core import machine
from service.domain import StudyState, TrialState
from service.errors import NotFound, TunesmithError
from service.optimizer import (
    Observation,
    SuggestionInfo,
    SuggestRequest,
    SuggestResult,
    get_strategy,
)
from service.policies.stopping import relative_expected_improvement, update_ei_streak
from service.policies.warm_start import prior_studies, source_ids
from service.records import StudyTally, TrialRecord
from service.space import SearchSpace
from service.specs import (
    StoppingSpec,
    StrategyName,
    StrategySpec,
    parse_constraints,
    parse_objectives,
)
from service.store import reader
from service.store import repository as repo
from service.store.models import Study, Trial

log = logging.getLogger(__name__)

MAX_WARNINGS = 20
MODEL_FREE = frozenset({StrategyName.RANDOM, StrategyName.SOBOL})


def trial_seed(study_seed: int, number: int) -> int:
    digest = hashlib.sha256(f"{study_seed}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def add_warning(study: Study, message: str) -> None:
    """Records a warning on the study (the newest `MAX_WARNINGS`, each once)."""
    if message not in study.warnings:
        study.warnings = [*study.warnings, message][-MAX_WARNINGS:]
        log.warning("study %s: %s", study.id, message)


def _observation(trial: TrialRecord) -> Observation:
    """A finished trial as the strategy sees it: no value when it failed or is not finite."""
    value = trial.value
    if trial.state == TrialState.FAILED or value is None or not math.isfinite(value):
        value = None
    values = tuple(trial.values) if trial.values and value is not None else None
    return Observation(
        params=trial.params,
        value=value,
        state=trial.state,
        step=trial.step,
        values=values,
        feasible=trial.feasible,
        metrics=trial.metrics,
    )


def infeasible_failure(trial: TrialRecord) -> bool:
    """A trial that failed because its configuration cannot run (e.g. out of memory)."""
    return trial.state == TrialState.FAILED and trial.feasible is False


@dataclass(frozen=True)
class StudyInput:
    """A study's stored trials as a strategy sees them: the request for `count` suggestions,
    how many trials the study has, the number the next trial gets, and the fingerprint of
    its trials when they were read (`fingerprint`)."""

    study_id: int
    request: SuggestRequest
    n_trials: int
    next_number: int
    tally: StudyTally


def fingerprint(tally: StudyTally) -> tuple[int, int, int, int]:
    """Changes whenever a trial is added, starts, finishes or is queued again."""
    return (tally.running, tally.queued, tally.total, tally.next_number)


def suggest_input(
    session: Session,
    study: Study,
    count: int,
    *,
    trials: list[TrialRecord] | None = None,
    tally: StudyTally | None = None,
) -> StudyInput:
    """The strategy's input, rebuilt from the stored trials (designer-per-request): finished
    trials are observations, queued and running ones pending points, earlier studies (warm
    start) the prior. The scheduler asks with it; the dashboard's GP view builds its model
    from the same input, so it shows the model that chooses the study's trials.

    Random and Sobol read earlier trials only to skip duplicates, which a space with a float
    parameter cannot produce (keys compare 12 significant digits): there the study's tally
    replaces loading every trial, which made each suggestion O(trials) (bench/throughput.py
    --profile: 30 of 44 ms per trial at 1,000 trials). `trials`: the study's history when
    the caller has read it already (the GP view, for any strategy). `tally`: the study's
    tally, read before the study row (see `read_input`)."""
    space = SearchSpace.from_spec(study.space)
    spec = StrategySpec.model_validate(study.strategy)
    tally = tally or reader.study_tally(session, study.id)
    if trials is None and spec.name in MODEL_FREE and space.cardinality() is None:
        trials = []
        n_trials, number = tally.total, tally.next_number
    else:
        if trials is None:
            trials = reader.trial_history(session, study.id)
        n_trials, number = len(trials), trials[-1].number + 1 if trials else 0
    earlier = reader.completed_trials(session, source_ids(study.warm_start))
    request = SuggestRequest(
        space=space,
        direction=study.direction,
        spec=spec,
        observations=[
            _observation(t) for t in trials if t.state.is_finished() and not infeasible_failure(t)
        ],
        pending=[t.params for t in trials if not t.state.is_finished()],
        infeasible=[t.params for t in trials if infeasible_failure(t)],
        directions=tuple(o.direction for o in parse_objectives(study.objectives)),
        constraints=parse_constraints(study.constraints),
        count=count,
        seed=trial_seed(spec.seed if spec.seed is not None else study.seed, n_trials),
        state=study.strategy_state or {},
        # Earlier studies (warm start), for the whole study: the strategy models them as a
        # prior, apart from this study's own observations (service/optimizer/transfer.py).
        prior=prior_studies(earlier, space),
    )
    return StudyInput(study.id, request, n_trials, number, tally)


def read_input_locked(
    session: Session, study: Study, count: int, *, tally: StudyTally | None = None
) -> StudyInput:
    """`read_input` for a study whose row the caller holds locked (inside its transaction;
    `tally`: read under that lock already); raises SuggestionFailed as `read_input` does."""
    try:
        return suggest_input(session, study, count, tally=tally)
    except OperationalError:
        raise
    except Exception as exc:
        log.exception("study %s: its stored input cannot be read", study.id)
        raise SuggestionFailed(f"{type(exc).__name__}: {exc}"[:1000]) from exc


class SuggestionFailed(Exception):
    """The study's strategy, space or data could not produce a suggestion; the message is
    the reason recorded on the study."""


def read_input(session: Session, study_id: int, count: int) -> StudyInput | None:
    """`suggest_input` for the scheduler; None when the study is not running.

    The tally (the fingerprint that `store` compares) is read before the study row and the
    trials: under PostgreSQL's READ COMMITTED each statement sees the latest commits, so a
    strategy state newer than the fingerprint would let a repeat through, while an older
    fingerprint only makes `store` check the trials added since.

    A study whose stored space, strategy or trials cannot be read as an input (a row written
    by an older version, say) raises SuggestionFailed. A database that is unavailable is not
    the study's fault: that error propagates (the request answers 503)."""
    try:
        tally = reader.study_tally(session, study_id)
        study = repo.get_study(session, study_id)
        if study.state != StudyState.RUNNING:
            return None
        return suggest_input(session, study, count, tally=tally)
    except OperationalError:
        raise
    except TunesmithError as exc:
        if isinstance(exc, NotFound):
            raise
        raise SuggestionFailed(f"{type(exc).__name__}: {exc}"[:1000]) from exc
    except Exception as exc:
        log.exception("study %s: its stored input cannot be read", study_id)
        raise SuggestionFailed(f"{type(exc).__name__}: {exc}"[:1000]) from exc


@dataclass(frozen=True)
class Computed:
    """A strategy's answer for one input, not stored yet."""

    given: StudyInput
    result: SuggestResult
    fallback_warning: str | None


def compute(given: StudyInput) -> Computed:
    """Runs the study's strategy on `given` with no database transaction open. Raises
    SuggestionFailed with the reason when anything in it raises."""
    request = given.request
    try:
        strategy, warning = get_strategy(request.spec.name)
        result = strategy.suggest(request)
    except Exception as exc:
        log.exception("suggesting for a study failed")
        raise SuggestionFailed(f"{type(exc).__name__}: {exc}"[:1000]) from exc
    return Computed(given, result, warning)


def _keys_added_since(session: Session, given: StudyInput) -> set[tuple[Any, ...]]:
    """Keys of the trials added since `given` was read (numbered from its `next_number`):
    the strategy avoided every configuration in its input, so only these can repeat."""
    space = given.request.space
    added = reader.trial_params(session, given.study_id, min_number=given.next_number)
    return {space.key(p) for p in added}


def store(
    session: Session, study: Study, computed: Computed, count: int, *, locked_input: bool = False
) -> list[Trial] | None:
    """The suggestions as up to `count` QUEUED trials of `study`, whose row the caller has
    locked and found running. Respects the budget (never more trials than `max_trials`).

    Returns None when the study's trials changed since the input was read and a suggestion
    now repeats a configuration in use: the caller computes again. An empty list means the
    budget is used up or a stopping rule ended the study. `locked_input`: the input was read
    under the same lock in this transaction, so its tally is still the study's.
    """
    given, result = computed.given, computed.result
    request = given.request
    tally = given.tally if locked_input else reader.study_tally(session, study.id)
    count = min(count, int(study.budget["max_trials"]) - tally.total, len(result.suggestions))
    if count <= 0:
        return []
    space = request.space
    params = [
        space.validate({k: repo.to_plain(v) for k, v in s.params.items()})
        for s in result.suggestions[:count]
    ]
    if fingerprint(tally) != fingerprint(given.tally):
        added = _keys_added_since(session, given)
        if any(space.key(p) in added for p in params):
            return None
    study.strategy_state = result.state
    for message in [computed.fallback_warning, *result.warnings]:
        if message:
            add_warning(study, message)
    if study.suggest_error is not None or study.suggest_failures:
        study.suggest_error, study.suggest_failures, study.suggest_retry_at = None, 0, None
    if study.stopping and _ei_stop(study, request, result.suggestions[0].info):
        return []
    created: list[Trial] = []
    number = tally.next_number
    for config, suggestion in zip(params, result.suggestions, strict=False):
        trial = machine.new_trial(
            study,
            number=number,
            params=config,
            seed=trial_seed(study.seed, number),
            source=suggestion.info.source or request.spec.name.value,
            suggestion=suggestion.info.to_json(),
        )
        session.add(trial)
        created.append(trial)
        number += 1
    session.flush()
    return created


def _ei_stop(study: Study, request: SuggestRequest, info: SuggestionInfo) -> bool:
    """Applies the EI-threshold rule to the suggestion about to be made; True when it ended
    the study."""
    own_values = [o.value for o in request.observations if o.value is not None]
    spec = StoppingSpec.model_validate(study.stopping)
    relative_ei = relative_expected_improvement(info, study.direction, own_values)
    streak = int((study.stopping_state or {}).get("low_ei_streak", 0))
    streak, reason = update_ei_streak(spec, streak, relative_ei, len(request.observations))
    study.stopping_state = {"low_ei_streak": streak, "last_relative_ei": relative_ei}
    if reason is None:
        return False
    machine.finish(study, reason)
    return True


def enqueue(
    session: Session, study: Study, configs: Sequence[dict[str, Any]], *, source: str = "enqueued"
) -> list[Trial]:
    """Adds chosen configurations as QUEUED trials, evaluated before any suggestion."""
    space = SearchSpace.from_spec(study.space)
    number = repo.next_trial_number(session, study.id)
    created = []
    for i, config in enumerate(configs):
        trial = machine.new_trial(
            study,
            number=number + i,
            params=space.validate(config, field=f"enqueue.{i}"),
            seed=trial_seed(study.seed, number + i),
            source=source,
            suggestion=SuggestionInfo(source).to_json(),
        )
        session.add(trial)
        created.append(trial)
    session.flush()
    return created
