"""Hands out trials: leases to workers, asks from ask/tell clients, prefetched suggestions.

No lock is held while a strategy computes (service.core.suggesting): a lease request first
claims, in one short write transaction, a queued trial of the first study with room (the
study row locked: SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL, across servers; the single
SQLite writer otherwise). When that study has no queued trial, its suggestion is computed
outside any transaction and stored and started in a second short one, which re-checks the
study (random and Sobol, which cost microseconds, are computed in the first one). So one
slow or broken study never delays another study's leases, reports or completes.

Failure isolation: a study whose suggestion raises is set aside, with the reason on it
(`suggest_error`, a warning) and a growing back-off (`suggest_retry_at`) during which leasing
skips it; the request moves on to the next study. The next successful suggestion clears it.

In one server process, suggestions for one study are computed one at a time (a second
request for it waits for the first, then finds its result or computes with it as a pending
point); across processes, `suggesting.store` rejects a suggestion that another process's
trial made a repeat.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from service.core import machine
from service.core.study_end import maybe_finish, maybe_stop_after_failures
from service.core.suggesting import (
    Computed,
    SuggestionFailed,
    add_warning,
    compute,
    read_input,
    read_input_locked,
    store,
)
from service.domain import StudyState, TrialState
from service.errors import Conflict
from service.records import StudyTally, WorkerInfo
from service.specs import StrategyName
from service.store import reader
from service.store import repository as repo
from service.store.db import Database
from service.store.models import Study, Trial, Worker, utcnow

log = logging.getLogger(__name__)

MODEL_BASED = frozenset({StrategyName.GP, StrategyName.TPE, StrategyName.SKOPT})
MODEL_FREE = frozenset({StrategyName.RANDOM, StrategyName.SOBOL})
LEASE_ROUNDS = 4
SET_ASIDE_FIRST_S = 10.0
SET_ASIDE_MAX_S = 600.0


def _model_free(study: Study) -> bool:
    return study.strategy.get("name") in MODEL_FREE


@dataclass(frozen=True)
class LeasePolicy:
    lease_seconds: float
    max_retries: int

    def retries_for(self, study: Study) -> int:
        value = study.budget.get("max_retries")
        return self.max_retries if value is None else int(value)


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
        study = repo.get_study(session, study_id)
        maybe_stop_after_failures(session, study)
        maybe_finish(session, study)
    return len(expired)


def set_aside(session: Session, study: Study, reason: str, now: datetime) -> None:
    """Records that the study's suggestions fail and when to try again (10 s, doubling up to
    10 minutes); leasing skips it until then."""
    study.suggest_failures += 1
    delay = min(SET_ASIDE_FIRST_S * 2 ** (study.suggest_failures - 1), SET_ASIDE_MAX_S)
    study.suggest_error = reason
    study.suggest_retry_at = now + timedelta(seconds=delay)
    add_warning(study, f"suggestions failing: {reason}")
    log.warning("study %s set aside for %.0f s: %s", study.id, delay, reason)


def clear_set_aside(study: Study) -> None:
    """Lets the scheduler try a set-aside study again at once (a user acted on it)."""
    study.suggest_retry_at = None


@dataclass(frozen=True)
class Lease:
    trial: Trial
    study: Study


@dataclass(frozen=True)
class Asked:
    """An ask's trials (RUNNING, with leases) and why there are fewer than asked, if so."""

    trials: list[Trial]
    reason: str | None


@dataclass(frozen=True)
class _Start:
    """Start new trials at once, for this worker (None: an ask/tell client)."""

    worker_id: str | None


@dataclass(frozen=True)
class _Needs:
    """The first study with room for a trial has none queued: a suggestion is needed."""

    study_id: int


class _StudyLocks:
    """One lock per study id (in this process): suggestions for a study are computed one at
    a time."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[int, threading.Lock] = {}
        self.busy: set[int] = set()

    @contextmanager
    def hold(self, study_id: int) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(study_id, threading.Lock())
        with lock:
            with self._guard:
                self.busy.add(study_id)
            try:
                yield
            finally:
                with self._guard:
                    self.busy.discard(study_id)


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
        self._locks = _StudyLocks()
        self._prefetcher = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") if prefetch else None
        )
        self._prefetching: set[int] = set()
        self._prefetch_lock = threading.Lock()

    def close(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.shutdown(wait=True, cancel_futures=True)

    # ---- leases -----------------------------------------------------------------------------

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
        for _ in range(LEASE_ROUNDS):
            found = self._claim(worker_id, info, objectives=objectives)
            if not isinstance(found, _Needs):
                if found is not None and found.study.strategy.get("name") in MODEL_BASED:
                    self._schedule_prefetch(found.study.id)
                return found
            with self._locks.hold(found.study_id):
                if self._queued(found.study_id):
                    continue  # another request's suggestion is waiting: claim it
                trials = self._suggest(found.study_id, 1, start=_Start(worker_id))
            running = [t for t in trials or [] if t.state == TrialState.RUNNING]
            if running:
                lease = Lease(running[0], self._study(found.study_id))
                if lease.study.strategy.get("name") in MODEL_BASED:
                    self._schedule_prefetch(lease.study.id)
                return lease
            # Set aside, changed, or no room any more (a queued trial waits): look again.
        return None

    def _claim(
        self, worker_id: str, info: WorkerInfo, *, objectives: Sequence[str] | None
    ) -> Lease | _Needs | None:
        """One short transaction: the worker's live lease, else a queued trial of the first
        study with room, else which study needs a suggestion (None: nothing to do)."""
        now = utcnow()
        with self.db.write() as session:
            worker = repo.touch_worker(session, worker_id, info)
            current = repo.running_trial_of_worker(session, worker_id, now)
            if current is not None:
                return Lease(current, repo.get_study(session, current.study_id))
            reap_expired(session, self.policy, now)
            skipped: list[int] = []
            for study_id, _running in repo.runnable_studies(session, objectives, now):
                if study_id in self._locks.busy:
                    skipped.append(study_id)  # this process is computing its suggestion
                    continue
                try:
                    study = repo.get_study(session, study_id, lock=True, skip_locked=True)
                except Conflict:
                    skipped.append(study_id)
                    continue
                found = self._claim_isolated(session, study, worker, now)
                if found is not None:
                    return found
            for study_id in skipped[:1]:
                if study_id in self._locks.busy:
                    return _Needs(study_id)  # wait for that suggestion, then claim it
                study = repo.get_study(session, study_id, lock=True)
                found = self._claim_isolated(session, study, worker, now)
                if found is not None:
                    return found
        return None

    def _claim_isolated(
        self, session: Session, study: Study, worker: Worker, now: datetime
    ) -> Lease | _Needs | None:
        """`_claim_in`, with whatever one study's rows raise kept to that study: it is set
        aside and the request goes on with the next study (a database that is unavailable
        is not the study's fault and fails the request)."""
        try:
            with session.begin_nested():
                return self._claim_in(session, study, worker, now)
        except OperationalError:
            raise
        except Exception as exc:
            log.exception("study %s: leasing from it failed", study.id)
            failed = isinstance(exc, SuggestionFailed)
            reason = str(exc) if failed else f"{type(exc).__name__}: {exc}"
            set_aside(session, study, reason[:1000], now)
            return None

    def _claim_in(
        self, session: Session, study: Study, worker: Worker, now: datetime
    ) -> Lease | _Needs | None:
        """Within `study`, whose row the caller has locked (the running count is read under
        the lock, so concurrent servers never exceed `max_parallel`)."""
        if study.state != StudyState.RUNNING:
            return None
        tally = reader.study_tally(session, study.id)
        if tally.running >= int(study.budget.get("max_parallel", 1)):
            return None
        trial = repo.claim_queued_trial(session, study.id) if tally.queued else None
        if trial is not None:
            machine.start(
                session, trial, worker=worker, lease_seconds=self.policy.lease_seconds, now=now
            )
            session.flush()
            return Lease(trial, study)
        if tally.total >= int(study.budget["max_trials"]):
            maybe_finish(session, study)
            return None
        if not _model_free(study):
            return _Needs(study.id)
        created = self._suggest_inline(session, study, 1, worker=worker, now=now, tally=tally)
        if not created:
            return None
        return Lease(created[0], study)

    def _suggest_inline(
        self,
        session: Session,
        study: Study,
        count: int,
        *,
        worker: Worker | None,
        now: datetime,
        tally: StudyTally | None = None,
    ) -> list[Trial]:
        """Random and Sobol suggestions, computed under the study's lock (they cost
        microseconds, and the lease stays one transaction), started for `worker` (None: an
        ask/tell client) as far as `max_parallel` allows; `tally`: read under that lock
        already (a lease's). Raises SuggestionFailed when the study's input cannot be read
        or the strategy fails."""
        computed = compute(read_input_locked(session, study, count, tally=tally))
        created = store(session, study, computed, count, locked_input=tally is not None) or []
        if not created:
            maybe_finish(session, study)
            return []
        running = reader.study_tally(session, study.id).running if tally is None else tally.running
        room = int(study.budget.get("max_parallel", 1)) - running
        for trial in created[: max(room, 0)]:
            machine.start(
                session, trial, worker=worker, lease_seconds=self.policy.lease_seconds, now=now
            )
        session.flush()
        return [t for t in created if t.state == TrialState.RUNNING]

    def _queued(self, study_id: int) -> bool:
        with self.db.read() as session:
            return reader.study_tally(session, study_id).queued > 0

    def _study(self, study_id: int) -> Study:
        with self.db.read() as session:
            return repo.get_study(session, study_id)

    # ---- suggestions ------------------------------------------------------------------------

    def _suggest(
        self, study_id: int, count: int, *, start: _Start | None = None
    ) -> list[Trial] | None:
        """Up to `count` new trials from the study's strategy, computed with no lock held:
        QUEUED, or with `start` RUNNING under leases as far as `max_parallel` allows (the rest
        stay queued). None when the study was set aside (its suggestion failed), stopped
        meanwhile, or the computed suggestions became repeats (another server's trials)
        twice."""
        for _ in range(2):
            try:
                with self.db.read() as session:
                    given = read_input(session, study_id, count)
                if given is None:
                    return None
                computed = compute(given)
            except SuggestionFailed as exc:
                self._set_aside(study_id, str(exc))
                return None
            created = self._store(study_id, computed, count, start)
            if created is not None:
                return created
        return None

    def _store(
        self, study_id: int, computed: Computed, count: int, start: _Start | None
    ) -> list[Trial] | None:
        now = utcnow()
        with self.db.write() as session:
            study = repo.get_study(session, study_id, lock=True)
            if study.state != StudyState.RUNNING:
                return []
            try:
                with session.begin_nested():
                    created = store(session, study, computed, count)
            except Exception as exc:  # e.g. a number or value the database refuses
                log.exception("study %s: storing its suggestion failed", study_id)
                set_aside(session, study, f"{type(exc).__name__}: {exc}"[:1000], now)
                return None
            if created == []:
                maybe_finish(session, study)
            if created and start is not None:
                self._start_within_room(session, study, created, start, now)
            return created

    def _start_within_room(
        self, session: Session, study: Study, trials: list[Trial], start: _Start, now: datetime
    ) -> None:
        running = reader.study_tally(session, study.id).running
        room = int(study.budget.get("max_parallel", 1)) - running
        worker = (
            None
            if start.worker_id is None
            else repo.touch_worker(session, start.worker_id)
        )
        for trial in trials[: max(room, 0)]:
            machine.start(
                session, trial, worker=worker, lease_seconds=self.policy.lease_seconds, now=now
            )
        session.flush()

    def _set_aside(self, study_id: int, reason: str) -> None:
        with self.db.write() as session:
            study = repo.get_study(session, study_id, lock=True)
            set_aside(session, study, reason, utcnow())

    def suggest(self, study_id: int, count: int) -> Asked:
        """Ask: up to `count` RUNNING trials with leases, for evaluation outside the service,
        and why there are fewer, if there are.

        Queued trials (enqueued or re-queued after a lost lease) come first. Fewer come back
        when `max_parallel` or the budget allows fewer, or when the study's suggestions fail
        (it is then set aside); raises Conflict when the study is not running.
        """
        out, room, reason = self._ask_queued(study_id, count)
        if room > 0:
            with self._locks.hold(study_id):
                trials = self._suggest(study_id, room, start=_Start(None))
            out += [t for t in trials or [] if t.state == TrialState.RUNNING]
        if len(out) < count and reason is None:
            reason = self._why_not(study_id)
        return Asked(out, reason)

    def _ask_queued(self, study_id: int, count: int) -> tuple[list[Trial], int, str | None]:
        """Claims queued trials; returns them, how many more may be suggested, and why
        fewer than `count` may be returned."""
        now = utcnow()
        with self.db.write() as session:
            reap_expired(session, self.policy, now)
            study = repo.get_study(session, study_id, lock=True)
            if study.state != StudyState.RUNNING:
                raise Conflict(
                    f"study {study_id} is {study.state}"
                    + (f": {study.stop_reason}" if study.stop_reason else "")
                )
            tally = reader.study_tally(session, study_id)
            max_parallel = int(study.budget.get("max_parallel", 1))
            max_trials = int(study.budget["max_trials"])
            parallel_room = max_parallel - tally.running
            budget_room = max_trials - tally.total + tally.queued  # queued ones are claimable
            room = max(min(count, parallel_room, budget_room), 0)
            reason = None
            if room < count:
                reason = (
                    f"budget.max_parallel is {max_parallel} and {tally.running} trials run"
                    if parallel_room <= budget_room
                    else f"budget of {max_trials} trials used"
                )
            out: list[Trial] = []
            while len(out) < room:
                queued = repo.claim_queued_trial(session, study.id)
                if queued is None:
                    break
                machine.start(
                    session, queued, worker=None, lease_seconds=self.policy.lease_seconds, now=now
                )
                out.append(queued)
            left = room - len(out)
            if budget_room <= 0:
                maybe_finish(session, study)
            elif left > 0 and _model_free(study):
                try:
                    with session.begin_nested():
                        out += self._suggest_inline(session, study, left, worker=None, now=now)
                except SuggestionFailed as exc:
                    set_aside(session, study, str(exc), now)
                left = 0
            return out, left, reason

    def _why_not(self, study_id: int) -> str:
        with self.db.read() as session:
            study = repo.get_study(session, study_id)
            if study.suggest_error:
                return f"suggestions failing: {study.suggest_error}"
            if study.state != StudyState.RUNNING:
                return f"study {study_id} is {study.state}: {study.stop_reason}"
            return f"budget of {study.budget['max_trials']} trials used"

    # ---- prefetching ------------------------------------------------------------------------

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
            with self._locks.hold(study_id):
                with self.db.read() as session:
                    study = repo.get_study(session, study_id)
                    tally = reader.study_tally(session, study_id)
                    if study.state != StudyState.RUNNING or tally.queued:
                        return
                    if tally.total >= int(study.budget["max_trials"]):
                        return
                self._suggest(study_id, 1)
        except Exception:
            log.exception("study %s: prefetching a suggestion failed; workers will ask", study_id)
        finally:
            with self._prefetch_lock:
                self._prefetching.discard(study_id)

    def reap(self) -> int:
        with self.db.write() as session:
            return reap_expired(session, self.policy)
