"""The store contract: Scheduler, TrialLifecycle and repository, on SQLite and PostgreSQL.

Every test runs once per backend through the `database_url` fixture (PostgreSQL is skipped,
with the reason, when it is not running). No HTTP: these are the rules the API relies on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from service.core.lifecycle import ReportAction, TrialLifecycle
from service.core.scheduling import LeasePolicy, Scheduler
from service.core.studies import StudyAction, act_on_study, create_study, update_study
from service.core.suggesting import enqueue
from service.domain import StudyState, TrialState
from service.errors import Conflict, NotFound
from service.schemas import StudyCreate, StudyUpdate
from service.store import repository as repo
from service.store.db import Database
from service.store.models import Trial, Worker, utcnow
from service.trialquery import numeric_params, parse_conditions, parse_order

POLICY = LeasePolicy(lease_seconds=60.0, max_retries=2)
EXTERNAL_SPACE = {
    "x": {"type": "float", "low": 0.0, "high": 1.0},
    "n": {"type": "int", "low": 1, "high": 1000},
}


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, pool_size=12)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def scheduler(db: Database) -> Scheduler:
    return Scheduler(db, POLICY)


@pytest.fixture
def lifecycle(db: Database) -> TrialLifecycle:
    return TrialLifecycle(db, POLICY)


def new_study(
    db: Database,
    *,
    name: str = "study",
    max_trials: int = 5,
    max_parallel: int = 2,
    max_retries: int | None = None,
    external: bool = False,
    **extra: Any,
) -> int:
    spec: dict[str, Any] = {
        "name": name,
        "objective": "external" if external else "synthetic",
        "strategy": {"name": "random"},
        "budget": {
            "max_trials": max_trials,
            "max_parallel": max_parallel,
            "max_retries": max_retries,
        },
        "seed": 7,
        **extra,
    }
    if external:
        spec["space"] = EXTERNAL_SPACE
    return create_study(db, StudyCreate.model_validate(spec), owner_token_id=None)


def study_of(db: Database, study_id: int) -> Any:
    with db.read() as session:
        return repo.get_study(session, study_id)


def trial_of(db: Database, trial_id: int) -> Trial:
    with db.read() as session:
        return repo.get_trial(session, trial_id)


def counts_of(db: Database, study_id: int) -> dict[str, int]:
    with db.read() as session:
        return repo.trial_counts(session, [study_id])[study_id]


def outcomes(db: Database, trial_id: int) -> list[str]:
    with db.read() as session:
        return [a.outcome for a in repo.attempts(session, trial_id)]


def expire_lease(db: Database, trial_id: int) -> None:
    """Moves the trial's lease expiry into the past, as if its worker had gone silent."""
    with db.write() as session:
        session.execute(
            update(Trial)
            .where(Trial.id == trial_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )


def lease(scheduler: Scheduler, worker_id: str) -> Trial:
    got = scheduler.lease(worker_id)
    assert got is not None, f"worker {worker_id} got no trial"
    return got.trial


# ---- studies ------------------------------------------------------------------------------


def test_create_study_fills_objective_defaults_and_names_are_unique(db: Database) -> None:
    study_id = new_study(db, objective_args={"steps": 2})
    study = study_of(db, study_id)
    assert study.state == StudyState.RUNNING.value
    assert (study.metric, study.direction) == ("loss", "minimize")
    assert set(study.space) == {"x", "y", "kind"}
    assert study.objective_args["steps"] == 2
    assert study.objective_args["step_seconds"] == 0.0
    assert study.budget["max_trials"] == 5
    with pytest.raises(Conflict, match="already exists"):
        new_study(db)
    with pytest.raises(NotFound):
        study_of(db, study_id + 100)


# ---- leasing ------------------------------------------------------------------------------


def test_lease_respects_max_parallel_and_budget_then_study_is_done(
    db: Database, scheduler: Scheduler, lifecycle: TrialLifecycle
) -> None:
    study_id = new_study(db, max_trials=3, max_parallel=2)
    first, second = lease(scheduler, "w1"), lease(scheduler, "w2")
    assert first.id != second.id
    assert first.lease_token != second.lease_token
    assert scheduler.lease("w3") is None, "a third lease would exceed max_parallel=2"

    lifecycle.complete(first.id, first.lease_token or "", 0.5)
    third = lease(scheduler, "w3")
    assert third.id not in (first.id, second.id)
    lifecycle.complete(second.id, second.lease_token or "", 0.4)
    assert scheduler.lease("w4") is None, "the budget of 3 trials is used up"
    assert study_of(db, study_id).state == StudyState.RUNNING.value

    lifecycle.complete(third.id, third.lease_token or "", 0.3)
    study = study_of(db, study_id)
    assert study.state == StudyState.DONE.value
    assert study.stop_reason == "budget of 3 trials used"
    assert counts_of(db, study_id)[TrialState.COMPLETE.value] == 3
    assert sum(counts_of(db, study_id).values()) == 3


def test_lease_is_repeat_safe(db: Database, scheduler: Scheduler) -> None:
    new_study(db)
    first = lease(scheduler, "w1")
    again = lease(scheduler, "w1")
    assert (again.id, again.lease_token, again.attempt) == (first.id, first.lease_token, 1)
    assert outcomes(db, first.id) == ["running"]
    other = lease(scheduler, "w2")
    assert other.id != first.id
    with db.read() as session:
        worker = session.get(Worker, "w1")
        assert worker is not None and worker.current_trial_id == first.id


def test_lease_only_offers_the_objectives_a_worker_has(db: Database, scheduler: Scheduler) -> None:
    new_study(db)
    assert scheduler.lease("w1", objectives=["branin"]) is None
    assert scheduler.lease("w1", objectives=["synthetic"]) is not None


def test_external_studies_are_not_leased_to_workers(db: Database, scheduler: Scheduler) -> None:
    new_study(db, external=True)
    assert scheduler.lease("w1") is None


# ---- reports, complete, fail ----------------------------------------------------------------


def test_complete_twice_with_the_same_token_counts_once(
    db: Database, scheduler: Scheduler, lifecycle: TrialLifecycle
) -> None:
    study_id = new_study(db, max_trials=1)
    trial = lease(scheduler, "w1")
    token = trial.lease_token or ""
    done = lifecycle.complete(trial.id, token, 0.25)
    again = lifecycle.complete(trial.id, token, 0.99)
    assert done.state == again.state == TrialState.COMPLETE.value
    assert trial_of(db, trial.id).value == 0.25
    assert outcomes(db, trial.id) == ["complete"]
    with db.read() as session:
        worker = session.get(Worker, "w1")
        assert worker is not None
        assert (worker.trials_done, worker.current_trial_id) == (1, None)
    assert study_of(db, study_id).state == StudyState.DONE.value
    with pytest.raises(Conflict):
        lifecycle.fail(trial.id, token, "too late")
    assert trial_of(db, trial.id).state == TrialState.COMPLETE.value


def test_wrong_token_is_a_conflict_and_changes_nothing(
    db: Database, scheduler: Scheduler, lifecycle: TrialLifecycle
) -> None:
    new_study(db)
    trial = lease(scheduler, "w1")
    before = trial_of(db, trial.id)
    calls = [
        lambda: lifecycle.report(trial.id, "wrong", 1, 0.5),
        lambda: lifecycle.heartbeat(trial.id, "wrong"),
        lambda: lifecycle.complete(trial.id, "wrong", 0.5),
        lambda: lifecycle.fail(trial.id, "wrong", "no"),
        lambda: lifecycle.release(trial.id, "wrong"),
    ]
    for call in calls:
        with pytest.raises(Conflict, match="lease token"):
            call()
    after = trial_of(db, trial.id)
    assert after.state == TrialState.RUNNING.value
    assert (after.lease_token, after.lease_expires_at, after.value, after.step) == (
        before.lease_token,
        before.lease_expires_at,
        None,
        None,
    )
    with db.read() as session:
        assert repo.values_of(session, [trial.id])[trial.id] == []
    assert outcomes(db, trial.id) == ["running"]
    with pytest.raises(NotFound):
        lifecycle.complete(trial.id + 1000, trial.lease_token or "", 1.0)


def test_report_is_idempotent_per_step(
    db: Database, scheduler: Scheduler, lifecycle: TrialLifecycle
) -> None:
    new_study(db)
    trial = lease(scheduler, "w1")
    token = trial.lease_token or ""
    assert lifecycle.report(trial.id, token, 1, 0.9) is ReportAction.CONTINUE
    assert lifecycle.report(trial.id, token, 1, 0.8) is ReportAction.CONTINUE
    lifecycle.report(trial.id, token, 2, 0.7)
    lifecycle.report(trial.id, token, 2, 0.7)
    with db.read() as session:
        assert repo.values_of(session, [trial.id])[trial.id] == [(1, 0.8), (2, 0.7)]
    assert trial_of(db, trial.id).step == 2


def test_report_and_heartbeat_extend_the_lease(
    db: Database, scheduler: Scheduler, lifecycle: TrialLifecycle
) -> None:
    new_study(db)
    trial = lease(scheduler, "w1")
    token = trial.lease_token or ""
    with db.write() as session:  # leave 5 s of the 60 s lease
        session.execute(
            update(Trial)
            .where(Trial.id == trial.id)
            .values(lease_expires_at=utcnow() + timedelta(seconds=5))
        )
    lifecycle.heartbeat(trial.id, token)
    expires = trial_of(db, trial.id).lease_expires_at
    assert expires is not None and expires > utcnow() + timedelta(seconds=50)


# ---- expiry and release ---------------------------------------------------------------------


def test_expired_lease_loses_the_attempt_requeues_then_fails_after_max_retries(
    db: Database, scheduler: Scheduler, lifecycle: TrialLifecycle
) -> None:
    study_id = new_study(db, max_trials=1, max_retries=1)
    first = lease(scheduler, "w1")
    expire_lease(db, first.id)
    assert scheduler.reap() == 1
    requeued = trial_of(db, first.id)
    assert requeued.state == TrialState.QUEUED.value
    assert requeued.worker_id is None
    assert outcomes(db, first.id) == ["lost"]
    with db.read() as session:
        worker = session.get(Worker, "w1")
        assert worker is not None and worker.current_trial_id is None

    second = lease(scheduler, "w2")
    assert second.id == first.id, "the re-queued trial is run again"
    assert second.attempt == 2 and second.lease_token != first.lease_token
    with pytest.raises(Conflict):  # the first worker comes back too late
        lifecycle.complete(first.id, first.lease_token or "", 0.1)
    with pytest.raises(Conflict):
        lifecycle.report(first.id, first.lease_token or "", 1, 0.1)

    expire_lease(db, first.id)
    assert scheduler.lease("w3") is None, "after max_retries=1 the trial fails, not re-queued"
    failed = trial_of(db, first.id)
    assert failed.state == TrialState.FAILED.value
    assert failed.error is not None and "lease expired 2 times" in failed.error
    assert outcomes(db, first.id) == ["lost", "lost"]
    study = study_of(db, study_id)
    assert (study.state, study.stop_reason) == (StudyState.DONE.value, "all 1 trials failed")


def test_expired_lease_report_is_refused(
    db: Database, scheduler: Scheduler, lifecycle: TrialLifecycle
) -> None:
    new_study(db)
    trial = lease(scheduler, "w1")
    expire_lease(db, trial.id)
    with pytest.raises(Conflict, match="expired"):
        lifecycle.report(trial.id, trial.lease_token or "", 1, 0.5)
    with pytest.raises(Conflict, match="expired"):
        lifecycle.complete(trial.id, trial.lease_token or "", 0.5)
    with db.read() as session:
        assert repo.values_of(session, [trial.id])[trial.id] == []


def test_release_requeues_without_a_lost_attempt(
    db: Database, scheduler: Scheduler, lifecycle: TrialLifecycle
) -> None:
    new_study(db, max_retries=0)
    trial = lease(scheduler, "w1")
    released = lifecycle.release(trial.id, trial.lease_token or "")
    assert released.state == TrialState.QUEUED.value
    assert outcomes(db, trial.id) == ["released"]
    with db.read() as session:
        assert repo.lost_attempts(session, trial.id) == 0
        worker = session.get(Worker, "w1")
        assert worker is not None and (worker.current_trial_id, worker.trials_done) == (None, 0)
    again = lease(scheduler, "w2")
    assert again.id == trial.id and again.attempt == 2
    # max_retries=0: a release must not have used up the trial's only attempt
    lifecycle.complete(again.id, again.lease_token or "", 0.3)
    assert trial_of(db, trial.id).state == TrialState.COMPLETE.value


# ---- study end and state changes ------------------------------------------------------------


def test_study_done_when_all_trials_failed(
    db: Database, scheduler: Scheduler, lifecycle: TrialLifecycle
) -> None:
    study_id = new_study(db, max_trials=2)
    a, b = lease(scheduler, "w1"), lease(scheduler, "w2")
    lifecycle.fail(a.id, a.lease_token or "", "RuntimeError: boom")
    assert study_of(db, study_id).state == StudyState.RUNNING.value
    again = lifecycle.fail(a.id, a.lease_token or "", "RuntimeError: boom")
    assert again.error == "RuntimeError: boom"
    lifecycle.fail(b.id, b.lease_token or "", "RuntimeError: boom")
    study = study_of(db, study_id)
    assert (study.state, study.stop_reason) == (StudyState.DONE.value, "all 2 trials failed")
    assert study.finished_at is not None


def test_pause_resume_stop(db: Database, scheduler: Scheduler, lifecycle: TrialLifecycle) -> None:
    study_id = new_study(db, max_trials=5, max_parallel=3)
    running = lease(scheduler, "w1")

    paused = act_on_study(db, study_id, StudyAction.PAUSE)
    assert paused.state == StudyState.PAUSED.value
    assert scheduler.lease("w2") is None, "a paused study hands out no new trials"
    with pytest.raises(Conflict):
        scheduler.suggest(study_id, 1)
    lifecycle.report(running.id, running.lease_token or "", 1, 0.5)
    lifecycle.complete(running.id, running.lease_token or "", 0.5)  # running trials finish
    with pytest.raises(Conflict, match="only a running study pauses"):
        act_on_study(db, study_id, StudyAction.PAUSE)

    assert act_on_study(db, study_id, StudyAction.RESUME).state == StudyState.RUNNING.value
    assert act_on_study(db, study_id, StudyAction.RESUME).state == StudyState.RUNNING.value
    second = lease(scheduler, "w2")

    stopped = act_on_study(db, study_id, StudyAction.STOP)
    assert (stopped.state, stopped.stop_reason) == (StudyState.STOPPED.value, "stopped by user")
    assert stopped.finished_at is not None
    assert scheduler.lease("w3") is None
    lifecycle.complete(second.id, second.lease_token or "", 0.4)
    study = study_of(db, study_id)
    assert (study.state, study.stop_reason) == (StudyState.STOPPED.value, "stopped by user")
    assert sum(counts_of(db, study_id).values()) == 2, "no new trials after stop"
    assert act_on_study(db, study_id, StudyAction.STOP).state == StudyState.STOPPED.value
    with pytest.raises(Conflict):
        act_on_study(db, study_id, StudyAction.PAUSE)

    resumed = act_on_study(db, study_id, StudyAction.RESUME)
    assert (resumed.state, resumed.stop_reason) == (StudyState.RUNNING.value, None)
    assert scheduler.lease("w3") is not None
    with pytest.raises(NotFound):
        act_on_study(db, study_id + 100, StudyAction.PAUSE)


def test_a_done_study_cannot_be_resumed_or_paused(
    db: Database, scheduler: Scheduler, lifecycle: TrialLifecycle
) -> None:
    study_id = new_study(db, max_trials=1)
    trial = lease(scheduler, "w1")
    lifecycle.complete(trial.id, trial.lease_token or "", 1.0)
    with pytest.raises(Conflict, match="done"):
        act_on_study(db, study_id, StudyAction.RESUME)
    with pytest.raises(Conflict):
        act_on_study(db, study_id, StudyAction.PAUSE)
    assert act_on_study(db, study_id, StudyAction.STOP).state == StudyState.DONE.value


# ---- enqueue and ask ------------------------------------------------------------------------


def test_enqueued_configurations_come_first(
    db: Database, scheduler: Scheduler, lifecycle: TrialLifecycle
) -> None:
    chosen = {"x": 0.125, "y": 0.875, "kind": "b"}
    study_id = new_study(db, max_trials=4, max_parallel=4, enqueue=[chosen])
    first = lease(scheduler, "w1")
    assert (first.params, first.source, first.number) == (chosen, "enqueued", 0)
    suggested = lease(scheduler, "w2")
    assert suggested.source != "enqueued"

    later = {"x": 0.5, "y": 0.5, "kind": "a"}
    with db.write() as session:
        enqueue(session, repo.get_study(session, study_id, lock=True), [later])
    third = lease(scheduler, "w3")
    assert (third.params, third.source) == (later, "enqueued")


def test_suggest_hands_out_leased_trials_within_the_budget(
    db: Database, scheduler: Scheduler, lifecycle: TrialLifecycle
) -> None:
    study_id = new_study(db, external=True, max_trials=5, max_parallel=10)
    batch = scheduler.suggest(study_id, 3).trials
    assert len({t.id for t in batch}) == 3
    assert all(t.state == TrialState.RUNNING.value and t.lease_token for t in batch)
    rest = scheduler.suggest(study_id, 4)
    assert len(rest.trials) == 2, "only 2 trials are left in the budget"
    assert rest.reason == "budget of 5 trials used"
    assert scheduler.suggest(study_id, 1).trials == []
    assert counts_of(db, study_id)[TrialState.RUNNING.value] == 5


def test_suggest_respects_max_parallel_and_says_so(
    db: Database, scheduler: Scheduler, lifecycle: TrialLifecycle
) -> None:
    study_id = new_study(db, external=True, max_trials=50, max_parallel=2)
    first = scheduler.suggest(study_id, 64)
    assert len(first.trials) == 2
    assert first.reason == "budget.max_parallel is 2 and 0 trials run"
    second = scheduler.suggest(study_id, 64)
    assert second.trials == [] and second.reason == "budget.max_parallel is 2 and 2 trials run"
    done = first.trials[0]
    lifecycle.complete(done.id, done.lease_token or "", 0.5)
    assert len(scheduler.suggest(study_id, 64).trials) == 1
    assert counts_of(db, study_id)[TrialState.RUNNING.value] == 2


def test_concurrent_leases_never_hand_out_a_trial_twice(db: Database, scheduler: Scheduler) -> None:
    threads, per_thread = 8, 10
    study_id = new_study(db, max_trials=threads * per_thread, max_parallel=100)
    got: list[tuple[int, int, str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)
    lock = threading.Lock()

    def run(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                result = scheduler.lease(f"w{t}-{i}")
                assert result is not None, f"lease {t}-{i} got nothing"
                with lock:
                    got.append((result.trial.id, result.trial.number, result.trial.worker_id or ""))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not errors, errors
    assert len(got) == threads * per_thread
    assert len({g[0] for g in got}) == len(got), "a trial was leased twice"
    assert sorted(g[1] for g in got) == list(range(threads * per_thread))
    with db.read() as session:
        rows = repo.trials_in_states(session, study_id, list(TrialState))
    assert len(rows) == threads * per_thread
    assert all(r.state == TrialState.RUNNING.value for r in rows)
    assert {r.worker_id for r in rows} == {g[2] for g in got}


def test_concurrent_leases_respect_max_parallel(db: Database, scheduler: Scheduler) -> None:
    threads, max_parallel = 8, 3
    study_id = new_study(db, max_trials=50, max_parallel=max_parallel)
    barrier = threading.Barrier(threads)
    results: list[bool] = []
    lock = threading.Lock()

    def run(t: int) -> None:
        barrier.wait()
        got = scheduler.lease(f"w{t}") is not None
        with lock:
            results.append(got)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert len(results) == threads
    assert counts_of(db, study_id)[TrialState.RUNNING.value] == max_parallel
    assert sum(results) == max_parallel


def test_concurrent_suggestions_are_distinct(db: Database, scheduler: Scheduler) -> None:
    study_id = new_study(db, external=True, max_trials=20, max_parallel=20)
    threads = 4
    barrier = threading.Barrier(threads)
    got: list[Trial] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        batch = scheduler.suggest(study_id, 2).trials
        with lock:
            got.extend(batch)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert len(got) == 8
    assert len({t.id for t in got}) == 8
    assert len({t.number for t in got}) == 8
    assert len({(t.params["x"], t.params["n"]) for t in got}) == 8


def test_a_stopped_study_stays_stopped_when_its_last_trials_finish(
    db: Database, scheduler: Scheduler, lifecycle: TrialLifecycle
) -> None:
    study_id = new_study(db, max_trials=2, max_parallel=2)
    a, b = lease(scheduler, "w1"), lease(scheduler, "w2")
    act_on_study(db, study_id, StudyAction.STOP)
    lifecycle.complete(a.id, a.lease_token or "", 0.5)
    lifecycle.complete(b.id, b.lease_token or "", 0.4)
    study = study_of(db, study_id)
    assert (study.state, study.stop_reason) == (StudyState.STOPPED.value, "stopped by user")


# ---- the trials table: filters and orders by parameter; notes ------------------------------


def test_trials_filter_and_order_by_parameter_and_value(db: Database) -> None:
    study_id = new_study(db, external=True, max_trials=10)
    configs = [
        {"x": 0.9, "n": 5},
        {"x": 0.1, "n": 700},
        {"x": 0.5, "n": 40},
        {"x": 0.3, "n": 2},
        {"x": 0.5, "n": 900},
    ]
    values = [0.8, None, 0.2, 0.5, 0.4]
    with db.write() as session:
        trials = enqueue(session, repo.get_study(session, study_id, lock=True), configs)
        for trial, value in zip(trials, values, strict=True):
            session.execute(update(Trial).where(Trial.id == trial.id).values(value=value))
    names = list(EXTERNAL_SPACE)

    def numbers(
        where: list[str],
        order: str = "number",
        descending: bool = False,
        numeric: frozenset[str] = frozenset(),
    ) -> list[int]:
        column, param = parse_order(order, names)
        with db.read() as session:
            rows, count = repo.list_trials(
                session,
                study_id,
                conditions=parse_conditions(where, names),
                order=column,
                order_param=param,
                descending=descending,
                numeric=numeric,
            )
        assert count == len(rows)
        return [t.number for t in rows]

    for numeric in (frozenset(), numeric_params(EXTERNAL_SPACE)):  # in Python, then in SQL
        assert numbers(["params.x>=0.3"], numeric=numeric) == [0, 2, 3, 4]
        assert numbers(["params.n<=40", "value<=0.5"], numeric=numeric) == [2, 3]
        assert numbers([], order="params.n", numeric=numeric) == [3, 0, 2, 1, 4]
        by_x_down = numbers(["params.x<=0.5"], order="params.x", descending=True, numeric=numeric)
        assert by_x_down == [2, 4, 3, 1], "ties by trial number in either direction"
        assert numbers(["value>=0.1"], order="params.x", numeric=numeric) == [3, 2, 4, 0]


def test_notes_are_stored_with_the_study(db: Database) -> None:
    study_id = new_study(db)
    assert study_of(db, study_id).notes == ""
    text = "## lr\n\n" + "é" * 5000
    update_study(db, study_id, StudyUpdate(notes=text))
    assert study_of(db, study_id).notes == text
    update_study(db, study_id, StudyUpdate(budget={"max_trials": 9}))
    assert study_of(db, study_id).notes == text and study_of(db, study_id).budget["max_trials"] == 9
