"""Shared fixtures: databases (SQLite and PostgreSQL), a live server, worker groups."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import (
    ServerProcess,
    WorkerGroup,
    fresh_pg_database,
    pg_unavailable_reason,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TUNESMITH_OFFLINE", "1")


def _require_pg() -> None:
    reason = pg_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("TUNESMITH_REQUIRE_PG"):
        pytest.fail(f"TUNESMITH_REQUIRE_PG is set but {reason}")
    pytest.skip(f"skipping PostgreSQL test: {reason}")


@pytest.fixture
def pg_url() -> Iterator[str]:
    _require_pg()
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Runs a test once on SQLite and once on PostgreSQL (the store contract)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tunesmith.db'}"
    else:
        _require_pg()
        with fresh_pg_database() as url:
            yield url


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(database_url: str | None = None, **kwargs: object) -> ServerProcess:
        url = database_url or f"sqlite:///{tmp_path / 'tunesmith.db'}"
        server = ServerProcess(database_url=url, workdir=tmp_path, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server()


@pytest.fixture
def start_workers() -> Iterator[Callable[..., WorkerGroup]]:
    groups: list[WorkerGroup] = []

    def start(server: ServerProcess, *args: str) -> WorkerGroup:
        group = WorkerGroup(server, list(args)).start()
        groups.append(group)
        return group

    yield start
    for group in groups:
        group.stop()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Prints the random order's seed last, where a failed run's reader looks (`-q` hides the
    header that pytest-randomly prints it in)."""
    seed = getattr(config.option, "randomly_seed", None)
    if config.pluginmanager.hasplugin("randomly") and isinstance(seed, int):
        terminalreporter.write_line(
            f"random test order: seed {seed}; repeat it with --randomly-seed={seed} "
            f'(make test PYTEST_ARGS="--randomly-seed={seed}")'
        )
