"""The uvicorn server of `tunesmith serve`, which stops its local workers first."""

from __future__ import annotations

import threading
from types import FrameType

import uvicorn

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
