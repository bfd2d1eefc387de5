"""End to end: a real `tunesmith serve` (uvicorn) and real `tunesmith worker` processes.

One server and one group of two CPU workers serve the module's tests in turn (each test's
study ends before the next begins), with 3-second leases so that a lost worker is noticed
quickly. The `--gpus` and PostgreSQL tests start their own servers.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.client import ApiError, Client
from service.schemas import StudyPublic, TrialLeased
from tests.support import ServerProcess, WorkerGroup, finished, wait_until

pytestmark = pytest.mark.slow

LEASE_SECONDS = 3.0


@dataclass
class Live:
    server: ServerProcess
    workers: WorkerGroup
    client: Client
    artifact_root: Path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    workdir = tmp_path_factory.mktemp("e2e")
    server = ServerProcess(
        database_url=f"sqlite:///{workdir / 'e2e.db'}", workdir=workdir, lease_seconds=LEASE_SECONDS
    ).start()
    root = workdir / "worker-artifacts"
    workers = WorkerGroup(
        server, ["--cpu-workers", "2", "--artifact-root", str(root), "--objective", "synthetic"]
    ).start()
    client = server.client()
    try:
        wait_until(lambda: client.workers().count >= 2, timeout=60, what="two workers polling")
        yield Live(server, workers, client, root)
    finally:
        client.close()
        workers.stop()
        server.stop()


def synthetic(name: str, *, max_trials: int, max_parallel: int, **args: Any) -> dict[str, Any]:
    return {
        "name": name,
        "objective": "synthetic",
        "objective_args": args,
        "strategy": {"name": "random"},
        "budget": {"max_trials": max_trials, "max_parallel": max_parallel},
    }


def wait_done(client: Client, study_id: int, timeout: float = 120) -> StudyPublic:
    return client.wait(study_id, timeout=timeout, progress=False, poll=0.25)


def assert_exactly(client: Client, study: StudyPublic, n: int) -> None:
    """n COMPLETE trials, numbered 0..n-1, no other trial and no duplicate."""
    trials = client.trials(study.id)
    assert [t.state.value for t in trials] == ["complete"] * n, [
        (t.number, t.state.value, t.error) for t in trials
    ]
    assert sorted(t.number for t in trials) == list(range(n))
    assert len({t.id for t in trials}) == n
    assert study.counts["complete"] == n and study.n_trials == n


def test_twenty_trial_study_completes_exactly(live: Live) -> None:
    client = live.client
    study = client.create_study(
        synthetic("twenty", max_trials=20, max_parallel=4, steps=2, step_seconds=0.02)
    )
    done = wait_done(client, study.id)
    assert (done.state.value, done.stop_reason) == ("done", "budget of 20 trials used")
    assert_exactly(client, done, 20)
    detail = client.trial(client.trials(study.id)[0].id)
    assert [v.step for v in detail.values] == [1, 2]
    assert [a.outcome for a in detail.attempts] == ["complete"]
    assert done.best is not None


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _child_pid_running(client: Client, study_id: int, slot: str) -> tuple[int, int] | None:
    """(pid, trial id) of the worker process of `slot` while it runs a trial of the study."""
    running = {t.id for t in client.trials(study_id, state="running")}
    for worker in client.workers().data:
        if f"-{slot}-" in worker.id and worker.current_trial_id in running and worker.pid:
            try:
                cmdline = Path(f"/proc/{worker.pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"service.cli.worker" in cmdline:
                return worker.pid, worker.current_trial_id
    return None


def test_kill_9_of_a_worker_reruns_its_trial(live: Live) -> None:
    client = live.client
    study = client.create_study(
        synthetic("killed", max_trials=6, max_parallel=2, steps=8, step_seconds=0.25)
    )
    # cpu1: the supervisor's last child, whose death once ended `tunesmith worker` itself
    found = wait_until(
        lambda: _child_pid_running(client, study.id, "cpu1"), timeout=60, what="cpu1 mid-trial"
    )
    assert found is not None
    pid, trial_id = found
    wait_until(lambda: (client.trial(trial_id).step or 0) >= 1, timeout=30, what="a report")
    os.kill(pid, signal.SIGKILL)

    done = wait_done(client, study.id, timeout=150)
    assert done.state.value == "done"
    assert_exactly(client, done, 6)
    rerun = client.trial(trial_id)
    outcomes = [a.outcome for a in rerun.attempts]
    assert outcomes[0] == "lost" and outcomes[-1] == "complete", outcomes
    assert rerun.attempts[0].error is not None and "lease expired" in rerun.attempts[0].error
    assert rerun.attempt == len(outcomes) >= 2
    assert str(pid) in (rerun.attempts[0].worker_id or "")
    assert live.workers.proc is not None and live.workers.proc.poll() is None
    restarted = [w for w in client.workers().data if "-cpu1-" in w.id and w.pid != pid and w.pid]
    assert restarted and _alive(restarted[0].pid or 0), "the supervisor restarts the worker"


def test_sigterm_to_the_worker_command_releases_the_trial(live: Live) -> None:
    """`kill PID` (or `docker stop`) of `tunesmith worker`: its worker releases the running
    trial (no lost attempt) and exits; nothing is left running."""
    client = live.client
    group = WorkerGroup(
        live.server,
        ["--cpu-workers", "1", "--artifact-root", str(live.artifact_root), "--objective", "branin"],
    ).start()
    try:
        study = client.create_study(
            {
                "name": "released",
                "objective": "branin",
                "objective_args": {"seconds": 2.0},
                "budget": {"max_trials": 1},
            }
        )
        trial = wait_until(
            lambda: next(iter(client.trials(study.id, state="running")), None),
            timeout=60,
            what="the branin trial to start",
        )
        assert trial is not None
        (worker,) = [w for w in client.workers().data if w.current_trial_id == trial.id]
        assert group.proc is not None
        os.kill(group.proc.pid, signal.SIGTERM)
        assert group.proc.wait(timeout=40) != 0
        assert worker.pid is not None
        wait_until(lambda: not _alive(worker.pid or 0), timeout=10, what="the worker to exit")
        after = client.trial(trial.id)
        assert after.state.value == "queued"
        assert [a.outcome for a in after.attempts] == ["released"]
        client.stop(study.id)
    finally:
        group.stop()


def test_stale_lease_report_is_409(live: Live) -> None:
    client = live.client
    study = client.create_study(
        {
            "name": "stale",
            "objective": "external",
            "space": {"x": {"type": "float", "low": 0, "high": 1}},
            "budget": {"max_trials": 1},
        }
    )
    (first,) = client.suggest(study.id, 1)
    client.report(first, 1, 0.5)
    wait_until(
        lambda: client.trial(first.id).state.value == "queued",
        timeout=LEASE_SECONDS * 4,
        what="the server to reap the expired lease",
    )
    for call in (
        lambda: client.report(first, 2, 0.4),
        lambda: client.heartbeat(first),
        lambda: client.complete(first, 0.4),
    ):
        with pytest.raises(ApiError) as err:
            call()
        assert err.value.status == 409
    (second,) = client.suggest(study.id, 1)
    assert (second.id, second.attempt) == (first.id, 2)
    assert second.lease_token != first.lease_token
    client.complete(second, 0.3)
    with pytest.raises(ApiError) as err:
        client.complete(first, 0.1)
    assert err.value.status == 409
    assert client.trial(first.id).value == 0.3


def test_four_concurrent_suggestions_are_distinct(live: Live) -> None:
    client = live.client
    study = client.create_study(
        {
            "name": "concurrent-ask",
            "objective": "external",
            "space": {
                "x": {"type": "float", "low": 0, "high": 1},
                "y": {"type": "float", "low": 0, "high": 1},
            },
            "budget": {"max_trials": 8, "max_parallel": 8},
        }
    )
    barrier = threading.Barrier(4)
    got: list[TrialLeased] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def ask() -> None:
        with live.server.client() as own:
            try:
                barrier.wait()
                batch = own.suggest(study.id, 1)
                with lock:
                    got.extend(batch)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(got) == 4 and len({t.id for t in got}) == 4
    assert len({tuple(sorted(t.params.items())) for t in got}) == 4

    batch = client.suggest(study.id, 4)
    assert len(batch) == 4 and len({t.id for t in batch}) == 4
    everything = got + batch
    assert len({t.id for t in everything}) == 8
    assert len({tuple(sorted(t.params.items())) for t in everything}) == 8
    assert sorted(t.number for t in everything) == list(range(8))
    client.stop(study.id)


def test_bad_spec_is_422_and_no_token_is_401(live: Live) -> None:
    url = live.server.url + "/api/v1/studies"
    auth = {"Authorization": f"Bearer {live.server.token}"}
    bad = httpx.post(
        url,
        json={"name": "bad", "objective": "synthetic", "objective_args": {"steps": 0}},
        headers=auth,
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "objective_args", "steps"]
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    with pytest.raises(ApiError) as err:
        live.client.create_study({"name": "bad2", "objective": "synthetic", "budgets": {}})
    assert err.value.status == 422 and "budgets" in str(err.value)


def _running(client: Client, study_id: int) -> int:
    return client.get_study(study_id).counts["running"]


def _workers_asked_since(client: Client, since: datetime, *, workers: int = 2) -> None:
    """Waits until `workers` workers have been seen by the server after `since`: with no trial
    running, that is a lease request each (a worker backs off up to 3 s when idle)."""
    wait_until(
        lambda: sum(w.last_seen_at > since for w in client.workers().data) >= workers,
        timeout=60,
        interval=0.2,
        what=f"{workers} workers to ask for a trial",
    )


def test_pause_resume_and_stop(live: Live) -> None:
    client = live.client
    spec = synthetic("pausable", max_trials=8, max_parallel=2, steps=4, step_seconds=0.2)
    study = client.create_study(spec)
    wait_until(
        lambda: (
            (s := client.get_study(study.id)).counts["complete"] >= 1 and s.counts["running"] >= 1
        ),
        timeout=60,
        what="a finished and a running trial",
    )
    assert client.pause(study.id).state.value == "paused"
    before = client.get_study(study.id).n_trials
    wait_until(lambda: _running(client, study.id) == 0, timeout=30, what="running trials to end")
    _workers_asked_since(client, datetime.now(UTC))
    paused = client.get_study(study.id)
    assert paused.state.value == "paused"
    assert paused.n_trials == before, "no new trial while paused"
    assert paused.counts["complete"] == before, "trials running at pause time finished"
    assert before < 8

    assert client.resume(study.id).state.value == "running"
    done = wait_done(client, study.id)
    assert done.state.value == "done"
    assert_exactly(client, done, 8)

    stoppable = client.create_study({**spec, "name": "stoppable"})
    wait_until(lambda: _running(client, stoppable.id) >= 1, timeout=60, what="a running trial")
    stopped = client.stop(stoppable.id)
    assert (stopped.state.value, stopped.stop_reason) == ("stopped", "stopped by user")
    wait_until(lambda: _running(client, stoppable.id) == 0, timeout=30, what="running to end")
    _workers_asked_since(client, datetime.now(UTC))
    after = client.get_study(stoppable.id)
    assert (after.state.value, after.stop_reason) == ("stopped", "stopped by user")
    assert after.n_trials < 8
    assert after.counts["complete"] == after.n_trials == finished(after)
    _workers_asked_since(client, datetime.now(UTC))
    assert client.get_study(stoppable.id).n_trials == after.n_trials


def test_trial_artifacts_hold_only_what_the_trial_wrote(live: Live) -> None:
    client = live.client
    probe = client.create_study(
        {
            "name": "probe",
            "objective": "external",
            "space": {"x": {"type": "float", "low": 0, "high": 1}},
            "budget": {"max_trials": 1},
        }
    )
    (trial,) = client.suggest(probe.id, 1)
    client.complete(trial, 1.0)
    # The next study and its first trial get the next ids: leave files of an "earlier run".
    stale = live.artifact_root / str(probe.id + 1) / str(trial.id + 1)
    stale.mkdir(parents=True)
    (stale / "stale.png").write_bytes(b"not from this trial")
    study = client.create_study(
        synthetic("fresh-artifacts", max_trials=1, max_parallel=1, record_env=True)
    )
    assert study.id == probe.id + 1
    done = wait_done(client, study.id)
    (only,) = client.trials(done.id)
    assert only.id == trial.id + 1
    assert [a.name for a in client.trial(only.id).artifacts] == ["env.txt"]


def test_serve_with_gpus_pins_one_gpu_per_worker(
    start_server: Callable[..., ServerProcess],
) -> None:
    # No GPU here: the workers' probe finds none, and --allow-cpu lets them train anyway
    # (KERAS_BACKEND=numpy keeps the probe from importing TensorFlow; see test_gpus.py).
    server = start_server(
        lease_seconds=10,
        api_only=False,
        extra_args=["--gpus", "0,1", "--allow-cpu"],
        extra_env={"KERAS_BACKEND": "numpy"},
    )
    with server.client() as client:
        wait_until(lambda: client.workers().count == 2, timeout=60, what="two GPU workers")
        workers = client.workers().data
        assert sorted(w.gpu or "" for w in workers) == ["0", "1"]
        study = client.create_study(
            synthetic(
                "gpus", max_trials=4, max_parallel=2, steps=3, step_seconds=0.4, record_env=True
            )
        )
        done = wait_done(client, study.id)
        assert done.counts["complete"] == 4
        gpu_of = {w.id: w.gpu for w in client.workers().data}
        seen = set()
        for trial in client.trials(study.id):
            response = client.request("GET", f"/trials/{trial.id}/artifacts/env.txt")
            visible = response.text
            assert visible == gpu_of[trial.worker_id or ""], (trial.worker_id, visible)
            seen.add(visible)
        assert seen == {"0", "1"}, "both workers ran trials, each on its own GPU"


@pytest.mark.pg
def test_study_with_workers_on_postgresql(
    pg_url: str, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(
        database_url=pg_url,
        lease_seconds=LEASE_SECONDS,
        api_only=False,
        extra_args=["--workers", "2"],
    )
    with server.client() as client:
        study = client.create_study(
            synthetic("on-pg", max_trials=10, max_parallel=4, steps=2, step_seconds=0.02)
        )
        done = wait_done(client, study.id)
        assert (done.state.value, done.stop_reason) == ("done", "budget of 10 trials used")
        assert_exactly(client, done, 10)
        assert {t.worker_id for t in client.trials(study.id)} <= {
            w.id for w in client.workers().data
        }
