"""The uvicorn server(s) of `tunesmith serve`, which stop the local workers first."""

from __future__ import annotations

import socket
import threading
from types import FrameType

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

from service.executors import Executor

GRACEFUL_SHUTDOWN_S = 10


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
