"""Two `tunesmith serve` in two directories on one machine (HOME a temporary folder, no
token in the environment): each keeps its own admin token file, the first one's token stays
valid and findable, the start line says where the database and the token are, and the CLI
finds the right token for each URL."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import cli_command, free_port, wait_until


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TUNESMITH_") and k != "HOME"}
    return {**env, "HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}


class Serve:
    def __init__(self, folder: Path, home: Path, port: int | None = None,
                 log: str = "serve.log") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.port = folder, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / log
        self.proc = subprocess.Popen(
            cli_command("serve", "--port", str(self.port), "--workers", "0"),
            cwd=folder, env=clean_env(home), stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_until(self.serving, timeout=90, what=f"server in {folder}")

    def serving(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        if "serving on" not in self.log.read_text():
            return False
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def servers(tmp_path: Path, home: Path) -> Iterator[list[Serve]]:
    started: list[Serve] = []
    try:
        started.append(Serve(tmp_path / "one", home))
        started.append(Serve(tmp_path / "two", home))
        yield started
    finally:
        for server in started:
            server.stop()


def token_in(output: str) -> str:
    lines = output.splitlines()
    index = next(i for i, line in enumerate(lines) if "created the admin token" in line)
    return lines[index + 1].strip()


def test_two_servers_keep_their_own_tokens(servers: list[Serve], home: Path) -> None:
    one, two = servers
    first, second = token_in(one.output()), token_in(two.output())
    assert first != second
    tokens = home / ".tunesmith" / "tokens"
    assert (tokens / f"127.0.0.1-{one.port}").read_text().strip() == first
    assert (tokens / f"127.0.0.1-{two.port}").read_text().strip() == second
    # The default file keeps the first server's token; the second says it left it alone.
    assert (home / ".tunesmith" / "token").read_text().strip() == first
    assert "holds another server's token and is left as it is" in two.output()
    for server, token in ((one, first), (two, second)):
        answer = httpx.get(f"{server.url}/api/v1/studies",
                           headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 200
        line = next(x for x in server.output().splitlines() if "serving on" in x)
        assert f"serving on {server.url}" in line
        assert f"database: {server.folder.resolve() / 'tunesmith.db'}" in line
        assert f"admin token: {tokens / f'127.0.0.1-{server.port}'}" in line


def test_the_cli_finds_each_servers_token(servers: list[Serve], home: Path) -> None:
    for server in servers:
        done = subprocess.run(
            cli_command("study", "list", "--url", server.url),
            env=clean_env(home), capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr
    # localhost is the same server as 127.0.0.1.
    done = subprocess.run(
        cli_command("study", "list", "--url", f"http://localhost:{servers[1].port}"),
        env=clean_env(home), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_restarting_a_server_keeps_its_token(tmp_path: Path, home: Path) -> None:
    server = Serve(tmp_path / "one", home)
    token = token_in(server.output())
    server.stop()
    again = Serve(server.folder, home, port=server.port, log="serve-again.log")
    try:
        assert "created the admin token" not in again.output()
        path = home / ".tunesmith" / "tokens" / f"127.0.0.1-{server.port}"
        assert path.read_text().strip() == token
        assert f"admin token: {path}" in again.output()
    finally:
        again.stop()
