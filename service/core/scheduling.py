"""Hands out trials: picks a study, asks its strategy under a per-study lock, leases the trial.

The per-study lock is the study row (SELECT ... FOR UPDATE on PostgreSQL, across servers; the
single SQLite writer otherwise). Under it the scheduler counts trials, rebuilds the strategy's
input from stored trials, and inserts the new trial with its lease in the same transaction:
two concurrent requests can never get the same pending point, and a suggestion that was not
stored never reaches a worker.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from service.core import machine
from service.core.study_end import maybe_finish
from service.domain import StudyState, TrialState
from service.errors import Conflict
from service.optimizer import Observation, SuggestionInfo, SuggestRequest, get_strategy
from service.policies.stopping import relative_expected_improvement, update_ei_streak
from service.policies.warm_start import prior_studies, source_ids
from service.records import StudyTally, TrialRecord, WorkerInfo
from service.space import SearchSpace
from service.specs import StoppingSpec, StrategyName, StrategySpec
from service.store import reader
from service.store import repository as repo
from service.store.db import Database
from service.store.models import Study, Trial, Worker, utcnow

log = logging.getLogger(__name__)

MAX_WARNINGS = 20
MODEL_BASED = frozenset({StrategyName.GP, StrategyName.TPE, StrategyName.SKOPT})
MODEL_FREE = frozenset({StrategyName.RANDOM, StrategyName.SOBOL})


@dataclass(frozen=True)
class LeasePolicy:
    lease_seconds: float
    max_retries: int

    def retries_for(self, study: Study) -> int:
        value = study.budget.get("max_retries")
        return self.max_retries if value is None else int(value)


def trial_seed(study_seed: int, number: int) -> int:
    digest = hashlib.sha256(f"{study_seed}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def _observation(trial: TrialRecord) -> Observation:
    """A finished trial as the strategy sees it: no value when it failed or is not finite."""
    value = trial.value
    if trial.state == TrialState.FAILED or value is None or not math.isfinite(value):
        value = None
    return Observation(params=trial.params, value=value, state=trial.state, step=trial.step)


def add_warning(study: Study, message: str) -> None:
    """Records a warning on the study (the newest `MAX_WARNINGS`, each once)."""
    if message not in study.warnings:
        study.warnings = [*study.warnings, message][-MAX_WARNINGS:]
        log.warning("study %s: %s", study.id, message)


@dataclass(frozen=True)
class StudyInput:
    """A study's stored trials as a strategy sees them: the request for `count` suggestions,
    how many trials the study has, and the number the next trial gets."""

    request: SuggestRequest
    n_trials: int
    next_number: int


def suggest_input(
    session: Session,
    study: Study,
    count: int,
    *,
    tally: StudyTally | None = None,
    trials: list[TrialRecord] | None = None,
) -> StudyInput:
    """The strategy's input, rebuilt from the stored trials (designer-per-request): finished
    trials are observations, queued and running ones pending points, earlier studies (warm
    start) the prior. The scheduler asks with it; the dashboard's GP view builds its model
    from the same input, so it shows the model that chooses the study's trials.

    Random and Sobol read earlier trials only to skip duplicates, which a space with a float
    parameter cannot produce (keys compare 12 significant digits): there the study's tally
    replaces loading every trial, which made each suggestion O(trials) (bench/throughput.py
    --profile: 30 of 44 ms per trial at 1,000 trials). `trials`: the study's history when
    the caller has read it already (the GP view, for any strategy)."""
    space = SearchSpace.from_spec(study.space)
    spec = StrategySpec.model_validate(study.strategy)
    if trials is None and spec.name in MODEL_FREE and space.cardinality() is None:
        tally = tally or reader.study_tally(session, study.id)
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
        observations=[_observation(t) for t in trials if t.state.is_finished()],
        pending=[t.params for t in trials if not t.state.is_finished()],
        count=count,
        seed=trial_seed(spec.seed if spec.seed is not None else study.seed, n_trials),
        state=study.strategy_state or {},
        # Earlier studies (warm start), for the whole study: the strategy models them as a
        # prior, apart from this study's own observations (service/optimizer/transfer.py).
        prior=prior_studies(earlier, space),
    )
    return StudyInput(request, n_trials, number)


def new_trials(
    session: Session, study: Study, count: int, *, tally: StudyTally | None = None
) -> list[Trial]:
    """Creates up to `count` QUEUED trials from the study's strategy. Caller holds the study lock.

    Respects the budget: never more trials in total than `max_trials`. `tally`: the study's
    counts, when the caller has just read them under the same lock.
    """
    count = min(count, int(study.budget["max_trials"]) - (tally.total if tally else 0))
    if count <= 0:
        return []
    given = suggest_input(session, study, count, tally=tally)
    request = given.request
    count = min(count, int(study.budget["max_trials"]) - given.n_trials)
    if count <= 0:
        return []
    if count != request.count:
        request = replace(request, count=count)
    strategy, warning = get_strategy(request.spec.name)
    if warning:
        add_warning(study, warning)
    result = strategy.suggest(request)
    study.strategy_state = result.state
    for message in result.warnings:
        add_warning(study, message)
    if study.stopping and result.suggestions:
        own_values = [o.value for o in request.observations if o.value is not None]
        n_finished = len(request.observations)
        if _ei_stop(study, result.suggestions[0].info, own_values, n_finished):
            return []
    created: list[Trial] = []
    number = given.next_number
    for suggestion in result.suggestions[:count]:
        params = request.space.validate(
            {k: repo.to_plain(v) for k, v in suggestion.params.items()}
        )
        trial = machine.new_trial(
            study,
            number=number,
            params=params,
            seed=trial_seed(study.seed, number),
            source=suggestion.info.source or request.spec.name.value,
            suggestion=suggestion.info.to_json(),
        )
        session.add(trial)
        created.append(trial)
        number += 1
    session.flush()
    return created


def _ei_stop(
    study: Study, info: SuggestionInfo, own_values: list[float], n_finished: int
) -> bool:
    """Applies the EI-threshold rule to the suggestion about to be made; True when it ended
    the study."""
    spec = StoppingSpec.model_validate(study.stopping)
    relative_ei = relative_expected_improvement(info, study.direction, own_values)
    streak = int((study.stopping_state or {}).get("low_ei_streak", 0))
    streak, reason = update_ei_streak(spec, streak, relative_ei, n_finished)
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


def reap_expired(session: Session, policy: LeasePolicy, now: datetime | None = None) -> int:
    """Ends expired leases: the attempt is lost; the trial is queued again or, past its retry
    limit, failed. Returns how many leases were reaped."""
    now = now or utcnow()
    expired = repo.expired_trials(session, now)
    touched: set[int] = set()
    for trial in expired:
        study = repo.get_study(session, trial.study_id)
        machine.lose_lease(session, trial, max_retries=policy.retries_for(study), now=now)
        touched.add(trial.study_id)
    for study_id in touched:
        maybe_finish(session, repo.get_study(session, study_id))
    return len(expired)


@dataclass(frozen=True)
class Lease:
    trial: Trial
    study: Study


class Scheduler:
    """Leases trials to workers and hands out suggestions to ask/tell clients.

    With `prefetch`, a model-based study keeps one suggestion ready: right after a worker
    leases a trial, the next suggestion is computed in a background thread (with every
    running trial as a pending point) and stored as a QUEUED trial, so the next worker to
    ask gets a trial without waiting for the model. The prefetched trial is an ordinary
    queued trial in the database: a restart or another server loses nothing.
    """

    def __init__(self, db: Database, policy: LeasePolicy, *, prefetch: bool = False) -> None:
        self.db = db
        self.policy = policy
        self._prefetcher = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") if prefetch else None
        )
        self._prefetching: set[int] = set()
        self._prefetch_lock = threading.Lock()

    def close(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.shutdown(wait=True, cancel_futures=True)

    def lease(
        self,
        worker_id: str,
        info: WorkerInfo | None = None,
        *,
        objectives: Sequence[str] | None = None,
    ) -> Lease | None:
        """The worker's next trial, or None when no study has work for it.

        Repeat-safe: a worker that asks again while its lease is alive gets the same trial.
        A worker that says it is `unavailable` is recorded with the reason and gets None.
        """
        info = info or WorkerInfo()
        if info.unavailable is not None:
            with self.db.write() as session:
                repo.touch_worker(session, worker_id, info)
            return None
        lease = self._lease(worker_id, info, objectives=objectives)
        if lease is not None and lease.study.strategy.get("name") in MODEL_BASED:
            self._schedule_prefetch(lease.study.id)
        return lease

    def _schedule_prefetch(self, study_id: int) -> None:
        if self._prefetcher is None:
            return
        with self._prefetch_lock:
            if study_id in self._prefetching:
                return
            self._prefetching.add(study_id)
        try:
            self._prefetcher.submit(self._prefetch, study_id)
        except RuntimeError:  # shutting down
            with self._prefetch_lock:
                self._prefetching.discard(study_id)

    def _prefetch(self, study_id: int) -> None:
        try:
            with self.db.write() as session:
                study = repo.get_study(session, study_id, lock=True)
                if study.state != StudyState.RUNNING:
                    return
                if repo.count_in_states(session, study_id, [TrialState.QUEUED]):
                    return
                new_trials(session, study, 1)
        except Exception:
            log.exception("study %s: prefetching a suggestion failed; workers will ask", study_id)
        finally:
            with self._prefetch_lock:
                self._prefetching.discard(study_id)

    def _lease(
        self, worker_id: str, info: WorkerInfo, *, objectives: Sequence[str] | None
    ) -> Lease | None:
        now = utcnow()
        with self.db.write() as session:
            worker = repo.touch_worker(session, worker_id, info)
            current = repo.running_trial_of_worker(session, worker_id, now)
            if current is not None:
                return Lease(current, repo.get_study(session, current.study_id))
            reap_expired(session, self.policy, now)
            candidates = repo.runnable_studies(session, objectives)
            skipped: list[int] = []
            for study_id, _running in candidates:
                try:
                    study = repo.get_study(session, study_id, lock=True, skip_locked=True)
                except Conflict:
                    skipped.append(study_id)
                    continue
                lease = self._lease_in(session, study, worker)
                if lease is not None:
                    return lease
            for study_id in skipped[:1]:
                study = repo.get_study(session, study_id, lock=True)
                lease = self._lease_in(session, study, worker)
                if lease is not None:
                    return lease
        return None

    def _lease_in(self, session: Session, study: Study, worker: Worker) -> Lease | None:
        """Leases a trial of `study`, whose row the caller has locked: the running count is
        read under the lock, so concurrent servers never exceed `max_parallel`."""
        if study.state != StudyState.RUNNING:
            return None
        tally = reader.study_tally(session, study.id)
        if tally.running >= int(study.budget.get("max_parallel", 1)):
            return None
        trial = repo.claim_queued_trial(session, study.id) if tally.queued else None
        if trial is None:
            created = new_trials(session, study, 1, tally=tally)
            trial = created[0] if created else None
        if trial is None:
            maybe_finish(session, study)
            return None
        machine.start(
            session, trial, worker=worker, lease_seconds=self.policy.lease_seconds, now=utcnow()
        )
        session.flush()
        return Lease(trial, study)

    def suggest(self, study_id: int, count: int) -> list[Trial]:
        """Ask: up to `count` RUNNING trials with leases, for evaluation outside the service.

        Queued trials (enqueued or re-queued after a lost lease) come first. Fewer than
        `count` come back when the budget allows fewer; raises Conflict when the study is
        not running.
        """
        now = utcnow()
        with self.db.write() as session:
            reap_expired(session, self.policy, now)
            study = repo.get_study(session, study_id, lock=True)
            if study.state != StudyState.RUNNING:
                raise Conflict(
                    f"study {study_id} is {study.state}"
                    + (f": {study.stop_reason}" if study.stop_reason else "")
                )
            out: list[Trial] = []
            while len(out) < count:
                queued = repo.claim_queued_trial(session, study.id)
                if queued is None:
                    break
                machine.start(
                    session, queued, worker=None, lease_seconds=self.policy.lease_seconds, now=now
                )
                out.append(queued)
            if len(out) < count:
                for trial in new_trials(session, study, count - len(out)):
                    machine.start(
                        session,
                        trial,
                        worker=None,
                        lease_seconds=self.policy.lease_seconds,
                        now=now,
                    )
                    out.append(trial)
            if not out:
                maybe_finish(session, study)
            session.flush()
            return out

    def reap(self) -> int:
        with self.db.write() as session:
            return reap_expired(session, self.policy)
