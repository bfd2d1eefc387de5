"""Executors: where worker loops run (local processes, Ray actors)."""

from __future__ import annotations

from typing import Protocol


class Executor(Protocol):
    """Starts worker loops against a server and stops them (each releasing its trial)."""

    def start(self) -> None: ...

    def stop(self, timeout: float = 30.0) -> None: ...
