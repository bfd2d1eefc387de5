"""The uvicorn server(s) of `tunesmith serve`, which stop the local workers first."""

from __future__ import annotations

import socket
import sys
import threading
from types import FrameType

import uvicorn
from threadpoolctl import threadpool_limits
from uvicorn.supervisors.multiprocess import Multiprocess

from service.executors import Executor

GRACEFUL_SHUTDOWN_S = 10
GIL_SWITCH_INTERVAL_S = 0.0005


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
    Crashed HTTP processes are replaced (uvicorn's supervisor loop)."""

    def __init__(
        self, config: uvicorn.Config, sockets: list[socket.socket], executor: Executor | None
    ) -> None:
        super().__init__(config, sockets)
        self.executor = executor

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
