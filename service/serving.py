"""The uvicorn server(s) of `tunesmith serve`, which stop the local workers first."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from types import FrameType

import uvicorn
from threadpoolctl import threadpool_limits
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from service.executors import Executor

GRACEFUL_SHUTDOWN_S = 10
GIL_SWITCH_INTERVAL_S = 0.0005
HTTP_STARTUP_GRACE_S = 300.0
"""How long a new HTTP process may take to answer its first health ping: about 3 s idle to
start an interpreter and import the stack, many times that on a busy machine."""

logger = logging.getLogger(__name__)


def configure_server_process() -> None:
    """Settings for a process that serves requests beside CPU-bound suggestion threads.

    - One BLAS thread: concurrency comes from requests, not from BLAS; several GP fits at
      once with a full BLAS pool each were 5x slower on a busy server.
    - A 0.5 ms GIL switch interval instead of 5 ms: a request thread gives up the GIL at
      every database round trip and then waits up to the interval for a thread fitting a
      GP to hand it back. Ten queries beside a GP thread took a median 37 ms (p90 148 ms)
      with 5 ms and 4.8 ms (p90 13 ms) with 0.5 ms, against 1.2 ms alone.
    """
    threadpool_limits(limits=1)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


class WorkersFirstServer(uvicorn.Server):
    """On SIGTERM or Ctrl-C, the local workers stop first and release their trials while the
    API can still record it; then the server shuts down. A second signal stops the server at
    once (its workers' leases then expire and their trials are re-queued)."""

    def __init__(self, config: uvicorn.Config, executor: Executor | None) -> None:
        config.timeout_graceful_shutdown = config.timeout_graceful_shutdown or GRACEFUL_SHUTDOWN_S
        super().__init__(config)
        self.executor = executor
        self._stopping_workers = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.executor is None or self._stopping_workers:
            super().handle_exit(sig, frame)
            return
        self._stopping_workers = True
        executor = self.executor

        def stop_workers_then_server() -> None:
            executor.stop()
            super(WorkersFirstServer, self).handle_exit(sig, frame)

        threading.Thread(target=stop_workers_then_server, name="stop-workers", daemon=True).start()


class WorkersFirstSupervisor(Multiprocess):
    """`serve --http-workers N`: N uvicorn processes share the bound socket.

    One process serializes every request's Python work on one core (GIL); a server on
    PostgreSQL can use more. On SIGTERM or Ctrl-C the local workers stop first and release
    their trials through the still-running HTTP processes, which are then terminated.

    Rules for the HTTP processes (uvicorn's loop calls `keep_subprocess_alive` every 0.5 s):
    - A process that has exited is replaced at once (unless it failed before serving, which
      would fail the same way again: then the server stops, as uvicorn does).
    - A new process has `startup_grace_s` to answer its first health ping. uvicorn alone
      gives it 5 s, and a process still starting its interpreter on a busy machine was
      killed and respawned again and again, so the server never became healthy.
    - Once it has answered, it must answer each ping within uvicorn's healthcheck timeout
      (`timeout_worker_healthcheck`, 5 s) or it is killed as hung and replaced.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        sockets: list[socket.socket],
        executor: Executor | None,
        *,
        startup_grace_s: float = HTTP_STARTUP_GRACE_S,
    ) -> None:
        super().__init__(config, sockets)
        self.executor = executor
        self.startup_grace_s = startup_grace_s
        self._first_ping_deadline: dict[Process, float] = {}
        self._answered: set[Process] = set()

    def _stop_workers(self) -> None:
        executor, self.executor = self.executor, None
        if executor is not None:
            executor.stop()

    def handle_int(self) -> None:
        self._stop_workers()
        super().handle_int()

    def handle_term(self) -> None:
        self._stop_workers()
        super().handle_term()

    def _starting(self, process: Process) -> bool:
        """True while `process` runs, has not yet answered its first ping, and is within its
        grace. Sends that ping once and reads the answer without waiting, so pings never
        pile up in the pipe of a process that cannot answer yet."""
        if process in self._answered or not process.process.is_alive():
            return False
        now = time.monotonic()
        if process not in self._first_ping_deadline:
            self._first_ping_deadline[process] = now + self.startup_grace_s
            try:
                process.parent_conn.send(b"ping")
            except OSError:
                return False
        try:
            answered = process.parent_conn.poll(0)
            if answered:
                process.parent_conn.recv()
        except (OSError, EOFError):
            return False
        if answered:
            self._answered.add(process)
            del self._first_ping_deadline[process]
            return False
        if now < self._first_ping_deadline[process]:
            return True
        logger.warning(
            "HTTP process %s did not answer within %.0f s of starting: replacing it",
            process.pid,
            self.startup_grace_s,
        )
        return False

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if self._starting(process) or process.is_alive(
                timeout=self.config.timeout_worker_healthcheck
            ):
                continue
            process.kill()
            process.join()
            self._first_ping_deadline.pop(process, None)
            self._answered.discard(process)
            if process.exitcode == STARTUP_FAILURE:
                logger.error("HTTP process %s failed to start: stopping the server", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.warning(
                "HTTP process %s died (exit code %s): starting another",
                process.pid,
                process.exitcode,
            )
            replacement = Process(self.config, self.sockets)
            replacement.start()
            self.processes[idx] = replacement
