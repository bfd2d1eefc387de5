"""`tunesmith serve --http-workers N`: its HTTP processes come up however slowly they start,
and one that dies or hangs is replaced.

uvicorn's supervisor alone pings each HTTP process every 0.5 s and kills one that does not
answer within 5 s, even while it is still starting: on a busy machine the server then never
became healthy (service.serving.WorkersFirstSupervisor gives a new process a start-up grace).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support import ServerProcess, busy_loops, wait_until

pytestmark = pytest.mark.slow

StartServer = Callable[..., ServerProcess]

SLOW_START_S = 20.0
"""Longer than uvicorn would ever wait for a new process: it pings the processes in turn,
waiting up to 5 s for each, so with two processes a new one is given at most about 15 s."""


def _http_pids(server: ServerProcess) -> set[int]:
    """The server's HTTP processes: its multiprocessing-spawned children (from /proc; Linux)."""
    assert server.proc is not None
    parent = server.proc.pid
    children: set[int] = set()
    for task in Path(f"/proc/{parent}/task").iterdir():
        children.update(int(p) for p in (task / "children").read_text().split())
    spawned = set()
    for pid in children:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"--multiprocessing-fork" in cmdline and b"spawn_main" in cmdline:
            spawned.add(pid)
    return spawned


def _healthy(server: ServerProcess) -> bool:
    try:
        return httpx.get(server.url + "/healthz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.timeout(200)
def test_http_processes_slower_to_start_than_the_ping_timeout_are_kept(
    start_server: StartServer, tmp_path: Path
) -> None:
    """Each HTTP process spends 20 s starting its interpreter before it can answer a ping (a
    `sitecustomize` that sleeps in multiprocessing children only). uvicorn's supervisor
    killed such a process after 5 to 15 s and respawned it forever; now both come up, and none
    is replaced."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys, time\n"
        "if '--multiprocessing-fork' in sys.orig_argv:\n"
        f"    time.sleep({SLOW_START_S})\n"
    )
    pythonpath = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    server = start_server(
        extra_args=["--http-workers", "2"],
        extra_env={"PYTHONPATH": pythonpath},
        start_timeout=150,
    )
    pids = wait_until(
        lambda: len(_http_pids(server)) == 2 and _http_pids(server),
        timeout=30,
        what="two HTTP processes",
        detail=server.log_tail,
    )
    assert _healthy(server)
    assert "starting another" not in server.log_tail(10**6), server.log_tail()
    assert _http_pids(server) == pids


@pytest.mark.timeout(600)
@pytest.mark.parametrize("how", ["dies", "hangs"])
def test_an_http_process_that_dies_or_hangs_is_replaced(
    start_server: StartServer, how: str
) -> None:
    """A process killed outright is replaced at once; one that stops answering pings (here
    SIGSTOP, after it has started) is killed after uvicorn's 5-s healthcheck and replaced.
    The server answers throughout on its other process and afterwards on both."""
    server = start_server(extra_args=["--http-workers", "2"])
    before = wait_until(
        lambda: len(_http_pids(server)) == 2 and _http_pids(server),
        timeout=60,
        what="two HTTP processes",
        detail=server.log_tail,
    )
    victim = min(before)
    os.kill(victim, signal.SIGKILL if how == "dies" else signal.SIGSTOP)

    def replaced() -> set[int] | None:
        now = _http_pids(server)
        return now if len(now) == 2 and victim not in now else None

    after = wait_until(
        replaced,
        timeout=180,
        interval=0.5,
        what="a replacement HTTP process",
        detail=server.log_tail,
    )
    assert max(before) in after
    wait_until(lambda: _healthy(server), timeout=60, what="/healthz", detail=server.log_tail)
    assert "starting another" in server.log_tail(10**6)


@pytest.mark.timeout(480)
def test_http_workers_become_healthy_with_both_cores_busy(start_server: StartServer) -> None:
    """`serve --http-workers 2` while two busy-loop processes keep both cores busy: both HTTP
    processes start (slowly) and the server answers; none was killed while starting."""
    with busy_loops(2):
        server = start_server(extra_args=["--http-workers", "2"], start_timeout=300)
        wait_until(
            lambda: len(_http_pids(server)) == 2,
            timeout=60,
            what="two HTTP processes",
            detail=server.log_tail,
        )
        for _ in range(10):
            assert _healthy(server)
    assert "starting another" not in server.log_tail(10**6), server.log_tail()
