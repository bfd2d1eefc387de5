"""Scale-out: several servers on one PostgreSQL, remote workers across a server restart, Ray.

Every test starts real processes: `tunesmith serve --workers 0` servers (or one with the Ray
executor) and `tunesmith worker` process groups.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from service.client import Client
from tests.support import ServerProcess, WorkerGroup, await_a_client, finished, wait_until

pytestmark = pytest.mark.slow

StartServer = Callable[..., ServerProcess]
StartWorkers = Callable[..., WorkerGroup]


def _synthetic_value(params: dict[str, object]) -> float:
    """The synthetic objective's final value (see objectives/synthetic.py)."""
    x, y = float(params["x"]), float(params["y"])  # type: ignore[arg-type]
    return (x - 0.3) ** 2 + (y - 0.6) ** 2 + (0.1 if params.get("kind") == "b" else 0.0)


@pytest.mark.pg
def test_two_servers_eight_workers_run_300_trials_without_duplicates(
    pg_url: str, start_server: StartServer, start_workers: StartWorkers
) -> None:
    # Two servers of two HTTP processes each: four processes suggest and lease concurrently.
    servers = [
        start_server(database_url=pg_url, extra_args=["--http-workers", "2"]) for _ in range(2)
    ]
    client = servers[0].client()
    strategies = ["random", "sobol", "random"]
    studies = [
        client.create_study(
            {
                "name": f"scale-{i}",
                "objective": "branin",
                "objective_args": {"seconds": 0},
                "strategy": {"name": strategy},
                "budget": {"max_trials": 100, "max_parallel": 16},
            }
        )
        for i, strategy in enumerate(strategies)
    ]
    for server in servers:
        start_workers(server, "--cpu-workers", "4")

    def all_done() -> bool:
        return all(client.get_study(s.id).state == "done" for s in studies)

    wait_until(all_done, timeout=240, interval=1.0, what="3 studies of 100 trials to finish")
    for study in studies:
        trials = client.trials(study.id)
        assert len(trials) == 100, f"study {study.id} has {len(trials)} trials"
        assert sorted(t.number for t in trials) == list(range(100))
        assert all(t.state == "complete" and t.value is not None for t in trials)
        configs = {json.dumps(t.params, sort_keys=True) for t in trials}
        assert len(configs) == 100, f"study {study.id}: {100 - len(configs)} duplicate suggestions"
        assert finished(client.get_study(study.id)) == 100
    workers = client.workers().data
    assert sum(w.trials_done for w in workers) == 300
    assert len({w.id for w in workers if w.trials_done}) >= 2


def test_remote_worker_survives_a_server_restart(
    start_server: StartServer, start_workers: StartWorkers
) -> None:
    server = start_server(lease_seconds=60)
    client = server.client()
    study = client.create_study(
        {
            "name": "restart",
            "objective": "synthetic",
            "objective_args": {"steps": 4, "step_seconds": 1.5},
            "strategy": {"name": "random"},
            "budget": {"max_trials": 1},
        }
    )
    group = start_workers(server, "--cpu-workers", "1", "--max-trials", "1")

    def first_report() -> bool:
        trials = client.trials(study.id)
        return bool(trials) and trials[0].step is not None

    wait_until(first_report, timeout=60, what="the trial's first report")
    server.kill()  # kill -9 mid-trial
    await_a_client(server.port)  # the worker's next report finds no server and retries
    server.start()  # same port, same database
    client = server.client()
    wait_until(
        lambda: client.get_study(study.id).state == "done",
        timeout=90,
        interval=0.5,
        what="the study to finish after the restart",
        detail=server.log_tail,
    )
    (trial,) = client.trials(study.id)
    assert trial.state == "complete", trial.error
    assert trial.attempt == 1
    assert trial.value == pytest.approx(_synthetic_value(trial.params))
    assert group.proc is not None
    assert group.proc.wait(timeout=30) == 0


def test_workers_of_two_servers_sharing_an_artifact_root_keep_their_own_files(
    tmp_path: Path, start_server: StartServer, start_workers: StartWorkers
) -> None:
    """Two servers with fresh databases both number their first study and trial 1. Their
    workers share the default artifact root on this machine; the second must neither delete
    the first's files mid-trial nor upload them as its own."""
    shared_root = str(tmp_path / "shared-artifacts")
    servers = [
        start_server(database_url=f"sqlite:///{tmp_path / name}") for name in ("a.db", "b.db")
    ]
    clients = [server.client() for server in servers]
    studies = [
        client.create_study(
            {
                "name": "artifacts",
                "objective": "synthetic",
                "objective_args": {"steps": steps, "step_seconds": 0.5, "record_env": True},
                "strategy": {"name": "random"},
                "budget": {"max_trials": 1},
            }
        )
        for client, steps in zip(clients, (8, 1), strict=True)
    ]
    assert [s.id for s in studies] == [1, 1]
    env = ["--cpu-workers", "1", "--max-trials", "1", "--artifact-root", shared_root]
    start_workers(servers[0], *env)

    def reporting() -> bool:
        trials = clients[0].trials(studies[0].id)
        return bool(trials) and trials[0].step is not None

    wait_until(reporting, timeout=120, what="the first server's trial to report")
    start_workers(servers[1], *env)  # its trial 1 starts while the first one's is running
    for client, study, server in zip(clients, studies, servers, strict=True):
        wait_until(
            lambda c=client, s=study: c.get_study(s.id).state == "done",
            timeout=120,
            interval=0.5,
            what="both studies to finish",
            detail=server.log_tail,
        )
        (trial,) = client.trials(study.id)
        assert trial.state == "complete", trial.error
        assert [a.name for a in client.trial(trial.id).artifacts] == ["env.txt"]


@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="ray is not installed (tunesmith[ray])"
)
def test_ray_executor_gives_each_actor_its_own_gpu(start_server: StartServer) -> None:
    server = start_server(
        extra_args=["--workers", "2", "--executor", "ray", "--gpus", "0,1"],
        extra_env={"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"},
    )
    client = server.client()
    study = client.create_study(
        {
            "name": "ray-gpus",
            "objective": "synthetic",
            "objective_args": {"steps": 2, "step_seconds": 0.5, "record_env": True},
            "strategy": {"name": "random"},
            "budget": {"max_trials": 8, "max_parallel": 2},
        }
    )
    wait_until(
        lambda: client.get_study(study.id).state == "done",
        timeout=180,
        interval=0.5,
        what="the Ray study to finish",
        detail=server.log_tail,
    )
    seen: dict[str, set[str]] = defaultdict(set)
    for trial in client.trials(study.id):
        assert trial.state == "complete", trial.error
        detail = client.trial(trial.id)
        assert [a.name for a in detail.artifacts] == ["env.txt"]
        assert trial.worker_id is not None
        seen[trial.worker_id].add(_artifact_text(client, trial.id, "env.txt"))
    assert all(len(devices) == 1 for devices in seen.values()), seen
    assert len(seen) == 2, f"expected both actors to run trials: {dict(seen)}"
    assert set().union(*seen.values()) == {"0", "1"}


def _artifact_text(client: Client, trial_id: int, name: str) -> str:
    return client.request("GET", f"/trials/{trial_id}/artifacts/{name}").text


def test_http_workers_serve_one_port_and_local_workers_release_on_sigterm(
    start_server: StartServer,
) -> None:
    """`serve --http-workers 2 --workers 2`: two HTTP processes answer on one port; SIGTERM
    stops the local workers first, so their running trials are released (not lost) through
    the still-serving HTTP processes, and the server exits 0."""
    server = start_server(api_only=False, extra_args=["--http-workers", "2", "--workers", "2"])
    client = server.client()
    study = client.create_study(
        {
            "name": "http-workers",
            "objective": "synthetic",
            "objective_args": {"steps": 50, "step_seconds": 0.4},
            "strategy": {"name": "random"},
            "budget": {"max_trials": 4, "max_parallel": 2},
        }
    )

    def both_reporting() -> bool:
        trials = client.trials(study.id)
        return sum(t.state == "running" and t.step is not None for t in trials) == 2

    wait_until(both_reporting, timeout=120, what="2 running trials", detail=server.log_tail)
    server_pids = _listening_pids(server.port)
    assert len(server_pids) == 3, server_pids  # the supervisor and two HTTP processes
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)  # the supervisor only, as `kill PID` would
    assert server.proc.wait(timeout=60) == 0, server.log_tail()

    restarted = start_server(database_url=server.database_url)
    client = restarted.client()
    trials = client.trials(study.id)
    assert len(trials) == 2
    for t in trials:
        assert t.state == "queued", (t.state, server.log_tail())
        detail = client.trial(t.id)
        assert [a.outcome for a in detail.attempts] == ["released"]


def _listening_pids(port: int) -> set[str]:
    """Processes with a socket listening on `port` (from /proc; Linux)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(fields[9])
    pids = set()
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:[") and target[8:-1] in inodes:
                pids.add(fd.parts[2])
    return pids
