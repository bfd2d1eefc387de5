"""What the service benchmarks share: a fresh database per run and a real `tunesmith serve`.

    fresh_database("postgresql", workdir)   # CREATE DATABASE ... / DROP DATABASE ... WITH (FORCE)
    running_server(url, workdir, token)     # `tunesmith serve --workers 0` on a free port
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

PG_ADMIN_URL = os.environ.get(
    "TUNESMITH_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def branin(x1: float, x2: float) -> float:
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


# ---- databases --------------------------------------------------------------------------------


def pg_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(pg_dsn(PG_ADMIN_URL), connect_timeout=3):
            return None
    except Exception as exc:
        return str(exc).strip().splitlines()[0]


@contextlib.contextmanager
def fresh_database(backend: str, workdir: Path) -> Iterator[str]:
    """A new, empty database URL of `backend`; dropped (PostgreSQL) afterwards."""
    name = f"tunesmith_bench_{uuid.uuid4().hex[:10]}"
    if backend == "sqlite":
        yield f"sqlite:///{workdir / (name + '.db')}"
        return
    import psycopg

    with psycopg.connect(pg_dsn(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(pg_dsn(PG_ADMIN_URL), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---- a real server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(
    database_url: str, workdir: Path, token: str, http_workers: int = 1
) -> Iterator[str]:
    """`tunesmith serve --workers 0 --http-workers N` with admin token `token` on a free port;
    yields its URL."""
    port = free_port()
    env = {
        **os.environ,
        "TUNESMITH_ADMIN_TOKEN": token,
        "TUNESMITH_TOKEN_FILE": str(workdir / "token"),
        "TUNESMITH_LOG_LEVEL": "warning",
    }
    logfile = (workdir / f"server-{port}.log").open("wb")
    cmd = [sys.executable, "-m", "service.cli", "serve", "--port", str(port)]
    cmd += ["--database-url", database_url, "--artifact-dir", str(workdir / "artifacts")]
    cmd += ["--workers", "0", "--http-workers", str(http_workers)]
    proc = subprocess.Popen(
        cmd, env=env, cwd=workdir, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {(workdir / f'server-{port}.log').read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in 60 s")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        logfile.close()
