"""How a worker ends a trial, or itself, on the paths a healthy run never takes.

A real server process each time; the worker is either the real `tunesmith worker` process
group or the same loop (service.worker.Worker) in the test process, when the test needs a
trainer that the worker has and the server does not, or a trainer of its own:

- a trial whose objective the worker does not have fails with "objective unavailable";
- a trainer that stops on its own time limit before any report fails its trial with that
  reason (it would otherwise be released and run again forever), and after a report
  completes with the last value;
- a worker whose token is revoked exits with EXIT_REFUSED and its supervisor does not
  restart it;
- a worker process whose supervisor dies (kill -9) releases its trial and exits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from objectives import registry
from objectives.base import TrialContext, TrialPruned
from objectives.synthetic import SYNTHETIC
from service import worker as worker_module
from service.client import Client
from service.worker import Worker, WorkerOptions
from tests.objectives.test_registry_plugins import PLUGIN, REPO, fake_install
from tests.support import ServerProcess, WorkerGroup, wait_until

pytestmark = pytest.mark.slow


def _study(client: Client, name: str, objective: str, **spec: Any) -> int:
    body = {"name": name, "objective": objective, "budget": {"max_trials": 1}, **spec}
    return client.create_study(body).id


def _only_trial(client: Client, study: int) -> Any:
    (trial,) = client.trials(study)
    return trial


def _run_one_trial(server: ServerProcess, tmp_path: Path) -> int:
    """The worker loop in this process, for one trial."""
    options = WorkerOptions(
        server=server.url,
        token=server.token,
        worker_id="in-process",
        artifact_root=tmp_path / "worker-artifacts",
        max_trials=1,
        idle_timeout=60,
        retry_seconds=20,
    )
    return Worker(options).run()


def test_a_trial_whose_objective_the_worker_lacks_fails_as_unavailable(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """The server has a plugin objective installed; this worker (the test process) has not."""
    fake_install(PLUGIN, tmp_path / "site")
    path = os.pathsep.join([str(tmp_path / "site"), str(PLUGIN), str(REPO)])
    server = start_server(extra_env={"PYTHONPATH": path})
    assert "demo_plugin" not in registry.available()
    client = server.client()
    study = _study(client, "plugin-only", "demo_plugin")
    assert _run_one_trial(server, tmp_path) == 1
    trial = _only_trial(client, study)
    assert trial.state.value == "failed"
    assert (trial.error or "").startswith("objective unavailable on this worker: ")
    assert "demo_plugin" in (trial.error or "")


def _stops_on_its_own(reports: int) -> Callable[[dict[str, Any], Any, TrialContext], float]:
    """A trainer that reports `reports` steps, then stops on its own time limit."""

    def train(params: dict[str, Any], args: Any, ctx: TrialContext) -> float:
        for step in range(1, reports + 1):
            ctx.report(step, 0.25 * step)
        raise TrialPruned("time limit reached")

    return train


@pytest.mark.parametrize("reports", [0, 2])
def test_a_trainer_that_stops_on_its_time_limit(
    server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reports: int
) -> None:
    timed = dataclasses.replace(SYNTHETIC, train=_stops_on_its_own(reports))
    real_get = registry.get
    monkeypatch.setattr(
        worker_module.registry,
        "get",
        lambda name: timed if name == "synthetic" else real_get(name),
    )
    client = server.client()
    study = _study(client, f"timed-{reports}", "synthetic")
    assert _run_one_trial(server, tmp_path) == 1
    trial = _only_trial(client, study)
    if reports == 0:
        assert (trial.state.value, trial.error) == (
            "failed",
            "time limit reached before any report",
        )
    else:
        assert (trial.state.value, trial.value) == ("complete", 0.5)


def _log(server: ServerProcess) -> str:
    path = server.workdir / "workers.log"
    return path.read_text(errors="replace") if path.exists() else ""


def test_a_worker_whose_token_is_revoked_exits_and_is_not_restarted(
    server: ServerProcess, start_workers: Callable[..., WorkerGroup]
) -> None:
    admin = server.client()
    created = admin.create_token("doomed-worker", "worker")
    group = start_workers(server, "--cpu-workers", "1", "--token", created.token)
    wait_until(
        lambda: admin.workers().data,
        timeout=120,
        what=f"the worker's first lease request ({_log(server)[-2000:]})",
    )
    admin.revoke_token(created.id)
    assert group.proc is not None
    code = wait_until(
        lambda: group.proc.poll() is not None and (group.proc.returncode,),  # type: ignore[union-attr]
        timeout=120,
        what="the worker command to exit",
    )
    log = _log(server)
    assert "refused its token; not restarting it" in log, log[-3000:]
    assert log.count("started worker cpu0") == 1, log[-3000:]
    assert "restarting it" not in log.replace("not restarting it", "")
    assert code == (0,) or code == (worker_module.EXIT_REFUSED,)


def test_a_worker_whose_supervisor_dies_releases_its_trial_and_exits(
    server: ServerProcess, start_workers: Callable[..., WorkerGroup]
) -> None:
    client = server.client()
    study = _study(
        client, "orphaned", "synthetic", objective_args={"steps": 600, "step_seconds": 0.5}
    )
    group = start_workers(server, "--cpu-workers", "1")
    assert group.proc is not None
    trial = wait_until(
        lambda: next((t for t in client.trials(study) if t.state.value == "running"), None),
        timeout=120,
        what=f"a running trial ({_log(server)[-2000:]})",
    )
    (worker,) = [w for w in client.workers().data if w.current_trial_id == trial.id]
    try:
        os.kill(group.proc.pid, signal.SIGKILL)  # the supervisor alone
        group.proc.wait(timeout=30)
        wait_until(
            lambda: _only_trial(client, study).state.value == "queued",
            timeout=120,
            what=f"the trial to be released ({_log(server)[-2000:]})",
        )
        wait_until(
            lambda: _gone(worker.pid), timeout=60, what=f"worker process {worker.pid} to exit"
        )
    finally:
        _kill_group(group.proc.pid)
    released = _only_trial(client, study)
    assert released.attempt == 1  # a release is not a lost attempt
    assert "is gone; stopping this worker" in _log(server)


def _gone(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # exited, not reaped by this container's init


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)

