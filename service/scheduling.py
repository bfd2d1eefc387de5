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
import secrets
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from service.errors import Conflict
from service.optimizer import Observation, StrategySpec, SuggestRequest, get_strategy
from service.space import SearchSpace
from service.stopping import (
    StoppingSpec,
    history_stop_reason,
    relative_expected_improvement,
    update_ei_streak,
)
from service.store import repository as repo
from service.store.db import Database
from service.store.models import (
    AttemptOutcome,
    Study,
    StudyState,
    Trial,
    TrialAttempt,
    TrialState,
    Worker,
    utcnow,
)
from service.warm_start import prior_studies

log = logging.getLogger(__name__)

MAX_WARNINGS = 20
MODEL_BASED = frozenset({"gp", "tpe", "skopt"})
MODEL_FREE = frozenset({"random", "sobol"})


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


def _observation(trial: repo.TrialRecord) -> Observation:
    value = trial.value
    if trial.state == TrialState.FAILED.value:
        value = None
    return Observation(
        params=trial.params,
        value=value if value is None or math.isfinite(value) else None,
        state=trial.state,  # type: ignore[arg-type]
        step=trial.step,
    )


def _add_warning(study: Study, message: str) -> None:
    if message not in study.warnings:
        study.warnings = [*study.warnings, message][-MAX_WARNINGS:]
        log.warning("study %s: %s", study.id, message)


def start_attempt(
    session: Session, trial: Trial, *, worker: Worker | None, policy: LeasePolicy, now: datetime
) -> None:
    """Puts `trial` in RUNNING under a fresh lease token and records the attempt."""
    worker_id = worker.id if worker is not None else None
    trial.state = TrialState.RUNNING.value
    trial.attempt += 1
    trial.lease_token = secrets.token_hex(16)
    trial.lease_expires_at = now + timedelta(seconds=policy.lease_seconds)
    trial.worker_id = worker_id
    trial.started_at = trial.started_at or now
    session.add(
        TrialAttempt(
            trial_id=trial.id,
            number=trial.attempt,
            worker_id=worker_id,
            lease_token=trial.lease_token,
            started_at=now,
        )
    )
    if worker is not None:
        worker.current_trial_id = trial.id
        worker.busy_since = now


def new_trials(
    session: Session, study: Study, count: int, *, tally: repo.StudyTally | None = None
) -> list[Trial]:
    """Creates up to `count` QUEUED trials from the study's strategy. Caller holds the study lock.

    Respects the budget: never more trials in total than `max_trials`. `tally`: the study's
    counts, when the caller has just read them under the same lock.
    """
    space = SearchSpace.from_spec(study.space)
    spec = StrategySpec.model_validate(study.strategy)
    trials, n_trials, number = _history(session, study.id, spec, space, tally)
    count = min(count, int(study.budget["max_trials"]) - n_trials)
    if count <= 0:
        return []
    strategy, warning = get_strategy(spec.name)
    if warning:
        _add_warning(study, warning)
    finished = [t for t in trials if TrialState(t.state).is_finished()]
    pending = [t.params for t in trials if not TrialState(t.state).is_finished()]
    observations = [_observation(t) for t in finished]
    own_values = [o.value for o in observations if o.value is not None]
    request = SuggestRequest(
        space=space,
        direction=study.direction,  # type: ignore[arg-type]
        spec=spec,
        observations=observations,
        pending=pending,
        count=count,
        seed=trial_seed(spec.seed if spec.seed is not None else study.seed, n_trials),
        state=study.strategy_state or {},
        # Earlier studies (warm start), for the whole study: the strategy models them as a
        # prior, apart from this study's own observations (service/optimizer/transfer.py).
        prior=prior_studies(session, study, space),
    )
    result = strategy.suggest(request)
    study.strategy_state = result.state
    for message in result.warnings:
        _add_warning(study, message)
    if study.stopping and result.suggestions:
        reason = _ei_stop_reason(study, result.suggestions[0].info, own_values, len(finished))
        if reason is not None:
            _finish_study(study, reason)
            return []
    created: list[Trial] = []
    for suggestion in result.suggestions[:count]:
        params = space.validate({k: repo.to_plain(v) for k, v in suggestion.params.items()})
        trial = Trial(
            study_id=study.id,
            number=number,
            params=params,
            state=TrialState.QUEUED.value,
            seed=trial_seed(study.seed, number),
            source=str(suggestion.info.get("source", spec.name.value)),
            suggestion=_plain_info(suggestion.info),
        )
        session.add(trial)
        created.append(trial)
        number += 1
    session.flush()
    return created


def _history(
    session: Session,
    study_id: int,
    spec: StrategySpec,
    space: SearchSpace,
    tally: repo.StudyTally | None,
) -> tuple[list[repo.TrialRecord], int, int]:
    """(trial records, number of trials, next trial number) for a suggestion.

    Random and Sobol read earlier trials only to skip duplicates, which a space with a float
    parameter cannot produce (keys compare 12 significant digits): there the study's tally
    replaces loading every trial, which made each suggestion O(trials) (bench/throughput.py
    --profile: 30 of 44 ms per trial at 1,000 trials)."""
    if spec.name in MODEL_FREE and space.cardinality() is None:
        tally = tally or repo.study_tally(session, study_id)
        return [], tally.total, tally.next_number
    records = repo.trial_history(session, study_id)
    return records, len(records), records[-1].number + 1 if records else 0


def _ei_stop_reason(
    study: Study, info: dict[str, Any], own_values: list[float], n_finished: int
) -> str | None:
    spec = StoppingSpec.model_validate(study.stopping)
    relative_ei = relative_expected_improvement(info, study.direction, own_values)
    streak = int((study.stopping_state or {}).get("low_ei_streak", 0))
    streak, reason = update_ei_streak(spec, streak, relative_ei, n_finished)
    study.stopping_state = {"low_ei_streak": streak, "last_relative_ei": relative_ei}
    return reason


def _finish_study(study: Study, reason: str) -> None:
    study.state = StudyState.DONE.value
    study.stop_reason = reason
    study.finished_at = utcnow()
    log.info("study %s is done: %s", study.id, reason)


def _plain_info(info: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in info.items():
        value = repo.to_plain(value)
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[key] = value
    return out


def enqueue(
    session: Session, study: Study, configs: Sequence[dict[str, Any]], *, source: str = "enqueued"
) -> list[Trial]:
    """Adds chosen configurations as QUEUED trials, evaluated before any suggestion."""
    space = SearchSpace.from_spec(study.space)
    number = repo.next_trial_number(session, study.id)
    created = []
    for i, config in enumerate(configs):
        trial = Trial(
            study_id=study.id,
            number=number + i,
            params=space.validate(config, field=f"enqueue.{i}"),
            state=TrialState.QUEUED.value,
            seed=trial_seed(study.seed, number + i),
            source=source,
            suggestion={"source": source},
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
        error = f"lease expired (worker {trial.worker_id})"
        repo.end_attempt(session, trial, AttemptOutcome.LOST, error, now)
        repo.worker_finished_trial(session, trial.worker_id, counted=False)
        study = repo.get_study(session, trial.study_id)
        lost = repo.lost_attempts(session, trial.id)
        if lost > policy.retries_for(study):
            trial.state = TrialState.FAILED.value
            trial.error = f"lease expired {lost} times; last worker {trial.worker_id}"
            trial.finished_at = now
        else:
            trial.state = TrialState.QUEUED.value
        trial.lease_expires_at = None
        trial.worker_id = None
        log.warning(
            "study %s trial %s: lease expired (attempt %s); now %s",
            trial.study_id,
            trial.number,
            trial.attempt,
            trial.state,
        )
        touched.add(trial.study_id)
    for study_id in touched:
        maybe_finish(session, repo.get_study(session, study_id))
    return len(expired)


def maybe_finish(session: Session, study: Study) -> None:
    """Ends the study DONE when a stopping rule fires, or once its budget is used and
    nothing is running or queued."""
    if study.state in (StudyState.DONE.value, StudyState.STOPPED.value):
        return
    session.flush()
    if study.stopping:
        finished_trials = repo.trials_in_states(
            session, study.id, [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED]
        )
        finished_trials.sort(key=lambda t: (t.finished_at or t.created_at, t.number))
        values = [
            t.value if t.state == TrialState.COMPLETE.value else None for t in finished_trials
        ]
        reason = history_stop_reason(
            StoppingSpec.model_validate(study.stopping), study.direction, values
        )
        if reason is not None:
            _finish_study(study, reason)
            return
    if repo.count_in_states(session, study.id, [TrialState.RUNNING, TrialState.QUEUED]):
        return
    counts = repo.trial_counts(session, [study.id])[study.id]
    finished = sum(counts[s.value] for s in TrialState if s.is_finished())
    if finished >= int(study.budget["max_trials"]):
        failed = counts[TrialState.FAILED.value]
        if failed == finished:
            _finish_study(study, f"all {finished} trials failed")
        else:
            _finish_study(study, f"budget of {study.budget['max_trials']} trials used")


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
        *,
        host: str | None = None,
        gpu: str | None = None,
        pid: int | None = None,
        objectives: Sequence[str] | None = None,
    ) -> Lease | None:
        """The worker's next trial, or None when no study has work for it.

        Repeat-safe: a worker that asks again while its lease is alive gets the same trial.
        """
        lease = self._lease(worker_id, host=host, gpu=gpu, pid=pid, objectives=objectives)
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
                if study.state != StudyState.RUNNING.value:
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
        self,
        worker_id: str,
        *,
        host: str | None,
        gpu: str | None,
        pid: int | None,
        objectives: Sequence[str] | None,
    ) -> Lease | None:
        now = utcnow()
        with self.db.write() as session:
            worker = repo.touch_worker(session, worker_id, host=host, gpu=gpu, pid=pid)
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
        if study.state != StudyState.RUNNING.value:
            return None
        tally = repo.study_tally(session, study.id)
        if tally.running >= int(study.budget.get("max_parallel", 1)):
            return None
        trial = repo.claim_queued_trial(session, study.id) if tally.queued else None
        if trial is None:
            created = new_trials(session, study, 1, tally=tally)
            trial = created[0] if created else None
        if trial is None:
            maybe_finish(session, study)
            return None
        start_attempt(session, trial, worker=worker, policy=self.policy, now=utcnow())
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
            if study.state != StudyState.RUNNING.value:
                raise Conflict(
                    f"study {study_id} is {study.state}"
                    + (f": {study.stop_reason}" if study.stop_reason else "")
                )
            out: list[Trial] = []
            while len(out) < count:
                queued = repo.claim_queued_trial(session, study.id)
                if queued is None:
                    break
                start_attempt(session, queued, worker=None, policy=self.policy, now=now)
                out.append(queued)
            if len(out) < count:
                for trial in new_trials(session, study, count - len(out)):
                    start_attempt(session, trial, worker=None, policy=self.policy, now=now)
                    out.append(trial)
            if not out:
                maybe_finish(session, study)
            session.flush()
            return out

    def reap(self) -> int:
        with self.db.write() as session:
            return reap_expired(session, self.policy)
