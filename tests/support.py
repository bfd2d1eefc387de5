"""Helpers for tests that start real processes: a uvicorn server, workers, databases."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from service.client import Client

ADMIN_TOKEN = "test-admin-token"
PG_ADMIN_URL = os.environ.get(
    "TUNESMITH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str = "",
    detail: Callable[[], str] | None = None,
) -> T:
    """Polls `predicate` until it returns something truthy, and returns that.

    On timeout the AssertionError names `what` and, when given, `detail()`: evaluated then,
    after the wait (say a process's log tail), not when the wait began."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            message = f"timed out after {timeout} s waiting for {what or predicate}"
            if detail is not None:
                message += f"\n--- {detail()}"
            raise AssertionError(message)
        time.sleep(interval)


@contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """`count` processes that each keep one core busy (a Python busy loop) until the block
    ends: a loaded machine for tests of what must still work there."""
    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def await_a_client(port: int, *, timeout: float = 60.0) -> None:
    """Listens on `port` (of a server that was just killed) until some client connects, then
    hangs up on it: proof that a client (a worker reporting, say) met a dead server there.
    Replaces a fixed sleep that hoped a worker would try within it."""
    with socket.create_server(("127.0.0.1", port)) as standin:
        standin.settimeout(timeout)
        try:
            conn, _ = standin.accept()
        except TimeoutError:
            raise AssertionError(f"no client connected to port {port} within {timeout} s") from None
        conn.close()


def restart_postgresql() -> str | None:
    """Restarts the local PostgreSQL cluster (a few seconds: every connection is dropped);
    None on success, else why it could not (no cluster tools here, not root, ...)."""
    versions = sorted(Path("/etc/postgresql").glob("*/main"))
    if not versions:
        return "no PostgreSQL cluster under /etc/postgresql"
    version = versions[-1].parent.name
    try:
        done = subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"pg_ctlcluster failed: {exc}"
    if done.returncode != 0:
        return f"pg_ctlcluster exited {done.returncode}: {done.stderr.strip()[:200]}"
    return None


def pg_unavailable_reason() -> str | None:
    """None when PostgreSQL answers on PG_ADMIN_URL, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'tunesmith[pg]')"
    dsn = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return None
    except Exception as exc:
        return f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {str(exc).strip().splitlines()[0]}"


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test; dropped afterwards."""
    import psycopg

    name = f"tunesmith_test_{uuid.uuid4().hex[:12]}"
    dsn = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "service.cli", *args]


@dataclass
class ServerProcess:
    """A real `tunesmith serve` process on 127.0.0.1."""

    database_url: str
    workdir: Path
    port: int = field(default_factory=free_port)
    lease_seconds: float = 60.0
    start_timeout: float = 180.0
    """How long `start` waits for /healthz: a few seconds idle, minutes on a loaded machine."""
    extra_args: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    api_only: bool = True
    """True: `--workers 0` (tests start workers themselves); False: `serve` starts its own
    local workers (e.g. with extra_args=["--gpus", "0,1"])."""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return ADMIN_TOKEN

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            TUNESMITH_ADMIN_TOKEN=ADMIN_TOKEN,
            TUNESMITH_TOKEN=ADMIN_TOKEN,
            TUNESMITH_URL=self.url,
            TUNESMITH_TOKEN_FILE=str(self.workdir / "token"),
            TUNESMITH_LEASE_SECONDS=str(self.lease_seconds),
            TF_CPP_MIN_LOG_LEVEL="3",
        )
        env.update(self.extra_env)
        return env

    def start(self) -> ServerProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / f"server-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cli_command(
                "serve",
                "--port",
                str(self.port),
                "--database-url",
                self.database_url,
                "--artifact-dir",
                str(self.workdir / "artifacts"),
                *(["--workers", "0"] if self.api_only else []),
                *self.extra_args,
            ),
            env=self.env(),
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(
            self.healthy,
            timeout=self.start_timeout,
            what=f"server on {self.url}",
            detail=self.log_tail,
        )
        return self

    def healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"server exited with {self.proc.returncode}: {self.log_tail()}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def log_tail(self, n: int = 3000) -> str:
        """The end of this server's log and, when workers ran beside it, of theirs."""
        tails = []
        for path in (self.workdir / f"server-{self.port}.log", self.workdir / "workers.log"):
            if path.exists():
                tails.append(f"{path.name}:\n{path.read_text(errors='replace')[-n:]}")
        return "\n".join(tails) or "(no log written)"

    def client(self, token: str | None = None) -> Client:
        return Client(self.url, token or ADMIN_TOKEN, retry_seconds=20)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class WorkerGroup:
    """A real `tunesmith worker` process group (a supervisor and its worker processes)."""

    server: ServerProcess
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerGroup:
        log = open(self.server.workdir / "workers.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cli_command("worker", "--server", self.server.url, *self.args),
            env=self.server.env(),
            cwd=self.server.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def finished(study: Any) -> int:
    return sum(study.counts.get(s, 0) for s in ("complete", "pruned", "failed"))


# ---- a fake nvidia-smi ------------------------------------------------------------------


def fake_gpu_uuid(index: int) -> str:
    return f"GPU-{index:08x}-1111-2222-3333-{index:012x}"


def fake_mig_uuid(gpu: int, instance: int) -> str:
    return f"MIG-{gpu:08x}-4444-5555-6666-{instance:012x}"


def fake_nvidia_smi(folder: Path, *, gpus: int = 4, mig_gpu: int | None = None) -> dict[str, str]:
    """Writes `nvidia-smi` into `folder`, answering the two queries tunesmith makes (see
    service.executors.gpus) for `gpus` H100s, GPU `mig_gpu` in MIG mode with two instances;
    any other call fails. Returns the environment that puts it first on PATH."""
    rows, listing = [], []
    for i in range(gpus):
        mig = "Enabled" if i == mig_gpu else "Disabled"
        rows.append(f"{i}, {fake_gpu_uuid(i)}, NVIDIA H100 80GB HBM3, 81559, {mig}")
        listing.append(f"GPU {i}: NVIDIA H100 80GB HBM3 (UUID: {fake_gpu_uuid(i)})")
        if i == mig_gpu:
            listing += [
                f"  MIG 3g.40gb     Device  {k}: (UUID: {fake_mig_uuid(i, k)})" for k in range(2)
            ]
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "nvidia-smi"
    nl = "\n"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$*" = "--query-gpu=index,uuid,name,memory.total,mig.mode.current '
        '--format=csv,noheader,nounits" ]; then\n'
        f"cat <<'EOF'\n{nl.join(rows)}\nEOF\n"
        'elif [ "$*" = "-L" ]; then\n'
        f"cat <<'EOF'\n{nl.join(listing)}\nEOF\n"
        'else echo "fake nvidia-smi: unexpected arguments: $*" >&2; exit 2; fi\n'
    )
    script.chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"}
