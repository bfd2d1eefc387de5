"""Fault injection with real processes: `tunesmith serve` and `tunesmith worker` subprocesses.

Each test breaks one thing in the middle of a study and then checks the study's books:
every trial number exactly once, exactly `max_trials` finished trials, no trial with two
complete attempts, completed trials unchanged. Leases are short (3 s) so lost workers are
noticed quickly; every wait polls with a generous timeout (the machine may be slow).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from service.client import Client
from service.schemas import StudyPublic, TrialDetail
from tests.support import (
    ServerProcess,
    WorkerGroup,
    await_a_client,
    finished,
    pg_unavailable_reason,
    restart_postgresql,
    wait_until,
)

pytestmark = pytest.mark.slow

LEASE_SECONDS = 3.0
StartServer = Callable[..., ServerProcess]
StartWorkers = Callable[..., WorkerGroup]
T = TypeVar("T")


def wait_for(predicate: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """wait_until for predicates that answer a value or None."""
    result = wait_until(predicate, timeout=timeout, what=what)
    assert result is not None
    return result


def synthetic(name: str, *, max_trials: int, max_parallel: int, **args: Any) -> dict[str, Any]:
    return {
        "name": name,
        "objective": "synthetic",
        "objective_args": args,
        "strategy": {"name": "random"},
        "budget": {"max_trials": max_trials, "max_parallel": max_parallel},
        "seed": 11,
    }


def wait_done(client: Client, study_id: int, timeout: float = 240) -> StudyPublic:
    return client.wait(study_id, timeout=timeout, progress=False, poll=0.5)


def details(client: Client, study_id: int) -> list[TrialDetail]:
    return [client.trial(t.id) for t in client.trials(study_id)]


def assert_books_balance(client: Client, study: StudyPublic, max_trials: int) -> None:
    """Every trial number once, `max_trials` finished, nothing counted twice, nothing lost."""
    trials = details(client, study.id)
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(max_trials)), numbers
    assert finished(study) == max_trials == study.n_trials, study.counts
    for t in trials:
        assert t.state.value in ("complete", "failed", "pruned"), (t.number, t.state, t.error)
        complete_attempts = [a for a in t.attempts if a.outcome == "complete"]
        assert len(complete_attempts) <= 1, (t.number, t.attempts)
        assert all(a.ended_at is not None for a in t.attempts), (t.number, t.attempts)
        if t.state.value == "complete":
            assert len(complete_attempts) == 1 and t.value is not None, (t.number, t.attempts)


def worker_child_running(
    client: Client, study_id: int, *, max_step: int | None = None
) -> tuple[int, int, str] | None:
    """(pid, trial id, worker id) of a worker process busy with a trial of `study_id` that
    has reported at least once (and at most `max_step` steps)."""
    running = {t.id: t for t in client.trials(study_id, state="running")}
    for worker in client.workers().data:
        trial = running.get(worker.current_trial_id or -1)
        if trial is None or not worker.pid or not (trial.step or 0) >= 1:
            continue
        if max_step is not None and (trial.step or 0) > max_step:
            continue
        try:
            cmdline = Path(f"/proc/{worker.pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"service.cli.worker" in cmdline and trial.worker_id == worker.id:
            return worker.pid, trial.id, worker.id
    return None


# ---- the server dies -----------------------------------------------------------------------


def test_kill_9_server_mid_study(
    database_url: str, start_server: StartServer, start_workers: StartWorkers
) -> None:
    server = start_server(database_url=database_url, lease_seconds=LEASE_SECONDS)
    start_workers(server, "--cpu-workers", "4")
    client = server.client()
    max_trials = 16
    study = client.create_study(
        synthetic("killed-server", max_trials=max_trials, max_parallel=4, steps=4, step_seconds=0.3)
    )

    def mid_study() -> bool:
        s = client.get_study(study.id)
        return finished(s) >= 3 and s.counts.get("running", 0) >= 1

    wait_until(mid_study, timeout=180, interval=0.2, what="a study in the middle")
    before = {t.id: t.value for t in client.trials(study.id, state="complete")}
    server.kill(signal.SIGKILL)
    client.close()
    await_a_client(server.port)  # a worker met the dead server (and retries)
    server.start()
    client = server.client()

    done = wait_done(client, study.id)
    assert done.state.value == "done", done
    assert_books_balance(client, done, max_trials)
    after = {t.id: t for t in client.trials(study.id)}
    for trial_id, value in before.items():
        assert after[trial_id].state.value == "complete" and after[trial_id].value == value
    assert done.counts["complete"] == max_trials, done.counts
    client.close()


def test_postgresql_restart_mid_study(
    pg_url: str, start_server: StartServer, start_workers: StartWorkers
) -> None:
    server = start_server(database_url=pg_url, lease_seconds=LEASE_SECONDS)
    start_workers(server, "--cpu-workers", "2")
    client = server.client()
    max_trials = 10
    study = client.create_study(
        synthetic("pg-restart", max_trials=max_trials, max_parallel=2, steps=4, step_seconds=0.3)
    )
    wait_until(
        lambda: finished(client.get_study(study.id)) >= 2, timeout=180, what="two trials finished"
    )
    cannot = restart_postgresql()
    if cannot is not None:
        if os.environ.get("TUNESMITH_REQUIRE_PG"):
            pytest.fail(f"TUNESMITH_REQUIRE_PG is set but PostgreSQL cannot be restarted: {cannot}")
        pytest.skip(f"cannot restart PostgreSQL here: {cannot}")
    wait_until(lambda: pg_unavailable_reason() is None, timeout=60, what="PostgreSQL back")

    done = wait_done(client, study.id)
    assert done.state.value == "done", done
    assert_books_balance(client, done, max_trials)
    assert done.counts["complete"] == max_trials, done.counts
    assert server.proc is not None and server.proc.poll() is None, "the server survived"
    # A lost connection is a 503 that clients retry, never an unhandled error (a 500).
    assert "Exception in ASGI application" not in server.log_tail(10**7)
    client.close()


# ---- a worker misbehaves -------------------------------------------------------------------


def test_stopped_worker_loses_its_lease_and_its_late_report_is_refused(
    start_server: StartServer, start_workers: StartWorkers
) -> None:
    server = start_server(lease_seconds=LEASE_SECONDS)
    group = start_workers(server, "--cpu-workers", "2")
    client = server.client()
    study = client.create_study(
        synthetic("sigstop", max_trials=3, max_parallel=2, steps=12, step_seconds=0.4)
    )
    pid, trial_id, stopped_worker = wait_for(
        lambda: worker_child_running(client, study.id), timeout=120, what="a worker mid-trial"
    )
    os.kill(pid, signal.SIGSTOP)
    try:

        def rerun_elsewhere() -> TrialDetail | None:
            t = client.trial(trial_id)
            return t if t.state.value == "complete" else None

        trial = wait_for(rerun_elsewhere, timeout=180, what="the trial re-run by another worker")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert trial.attempts[0].outcome == "lost" and trial.attempts[0].worker_id == stopped_worker
    assert "lease expired" in (trial.attempts[0].error or "")
    completes = [a for a in trial.attempts if a.outcome == "complete"]
    assert len(completes) == 1 and completes[0].worker_id != stopped_worker, trial.attempts
    assert trial.worker_id == completes[0].worker_id

    # The resumed worker's next report or heartbeat carries the old lease: 409, dropped.
    log = server.workdir / "workers.log"
    wait_until(
        lambda: "lost the lease" in log.read_text(errors="replace"),
        timeout=60,
        what="the resumed worker noticing it lost the lease",
    )
    done = wait_done(client, study.id)
    assert_books_balance(client, done, 3)
    again = client.trial(trial_id)
    assert [a.outcome for a in again.attempts] == [a.outcome for a in trial.attempts]
    assert again.value == trial.value and again.worker_id == trial.worker_id
    assert group.proc is not None and group.proc.poll() is None
    client.close()


def test_late_report_with_a_stale_lease_is_refused(start_server: StartServer) -> None:
    """The protocol under the previous test: once a lease expired and the trial went to
    someone else, every call with the old token is a 409 and changes nothing.

    The first lease is issued by a server with 1-s leases; the second by the same server
    restarted with 60-s leases, so the calls below cannot outlive it on a slow machine."""
    from service.client import ApiError

    server = start_server(lease_seconds=1.0)
    client = server.client()
    study = client.create_study(
        {
            "name": "stale",
            "objective": "external",
            "space": {"x": {"type": "float", "low": 0, "high": 1}},
            "budget": {"max_trials": 1, "max_parallel": 1},
        }
    )
    (first,) = client.suggest(study.id, 1)
    assert first.lease_expires_at is not None and first.started_at is not None
    assert (first.lease_expires_at - first.started_at).total_seconds() < 5
    wait_until(
        lambda: client.trial(first.id).state.value == "queued",
        timeout=60,
        what="the 1-s lease to expire",
        detail=server.log_tail,
    )
    client.close()
    server.stop()
    server.lease_seconds = 60.0
    server.start()
    client = server.client()
    (second,) = client.suggest(study.id, 1)
    assert second.lease_expires_at is not None
    assert second.lease_expires_at > datetime.now(UTC) + timedelta(seconds=30)
    assert second.id == first.id and second.lease_token != first.lease_token
    for call in (
        lambda: client.report(first, 1, 0.5),
        lambda: client.heartbeat(first),
        lambda: client.complete(first, 0.5),
        lambda: client.fail(first, "late"),
    ):
        with pytest.raises(ApiError) as info:
            call()
        assert info.value.status == 409
    client.complete(second, 0.25)
    trial = client.trial(first.id)
    assert trial.value == 0.25
    assert [a.outcome for a in trial.attempts] == ["lost", "complete"]
    client.close()


def test_trainer_raise_and_nan_fail_their_trial_and_the_worker_goes_on(
    start_server: StartServer, start_workers: StartWorkers
) -> None:
    server = start_server(lease_seconds=LEASE_SECONDS)
    start_workers(server, "--cpu-workers", "1")
    client = server.client()
    spec = synthetic(
        "trainer-errors", max_trials=3, max_parallel=1, steps=2, fail_above=0.8, diverge_above=0.5
    )
    spec["enqueue"] = [
        {"x": 0.9, "y": 0.5, "kind": "a"},  # raises
        {"x": 0.6, "y": 0.5, "kind": "a"},  # NaN
        {"x": 0.2, "y": 0.5, "kind": "a"},  # fine
    ]
    study = client.create_study(spec)
    done = wait_done(client, study.id)
    assert_books_balance(client, done, 3)
    by_x = {t.params["x"]: t for t in details(client, study.id)}
    assert by_x[0.9].state.value == "failed" and "injected failure" in (by_x[0.9].error or "")
    assert by_x[0.9].error and by_x[0.9].error.startswith("RuntimeError")
    assert by_x[0.6].state.value == "failed" and "diverged" in (by_x[0.6].error or "")
    assert "nan" in (by_x[0.6].error or "").lower()
    assert by_x[0.2].state.value == "complete"
    workers = {t.worker_id for t in by_x.values()}
    assert len(workers) == 1, "one worker ran all three: it went on after each failure"
    client.close()


def test_sigterm_worker_releases_its_trial(
    start_server: StartServer, start_workers: StartWorkers
) -> None:
    """SIGTERM to a worker mid-trial (at step 10 of 40 at most: 12 s or more of training
    left) releases the trial at its next report; another worker then completes it."""
    server = start_server(lease_seconds=LEASE_SECONDS)
    start_workers(server, "--cpu-workers", "2")
    client = server.client()
    study = client.create_study(
        synthetic("sigterm", max_trials=4, max_parallel=2, steps=40, step_seconds=0.4)
    )
    pid, trial_id, worker_id = wait_for(
        lambda: worker_child_running(client, study.id, max_step=10),
        timeout=120,
        what="a worker early in a trial",
    )
    os.kill(pid, signal.SIGTERM)

    def handed_back() -> TrialDetail | None:
        t = client.trial(trial_id)
        first = t.attempts[0]
        return t if first.outcome != "running" else None

    trial = wait_for(handed_back, timeout=60, what="the trial released")
    first = trial.attempts[0]
    assert first.worker_id == worker_id
    assert first.outcome == "released", trial.attempts
    wait_until(
        lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid),
        timeout=60,
        what="the worker process to exit",
    )
    done = wait_done(client, study.id)
    assert_books_balance(client, done, 4)
    trial = client.trial(trial_id)
    assert trial.state.value == "complete"
    assert [a.outcome for a in trial.attempts] == ["released", "complete"]
    assert trial.attempts[1].worker_id != worker_id
    client.close()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
