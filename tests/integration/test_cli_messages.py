"""What a user sees when something is wrong: the real `tunesmith` command (a subprocess)
against a real server, a port where nothing listens, one that never answers, and an HTTP
server that is not tunesmith.

Each row of CASES is one mistake; its error must be exactly one line on stderr, with a
non-zero exit status, naming what is wrong and what to do (the row's needles). A
specification refused for several fields prints one such line per field.
"""

from __future__ import annotations

import http.server
import importlib.metadata
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from service.client import ApiError, Client, ServerUnavailable
from tests.support import ServerProcess, cli_command, free_port, wait_until

pytestmark = pytest.mark.slow


@dataclass
class Places:
    """What the cases' templates may name: {url}, {port}, {spare} (a free port), {dead},
    {silent}, {foreign}, {files}, {absent}."""

    url: str
    port: int
    spare: int
    dead: str
    silent: str
    foreign: str
    files: Path
    absent: Path

    def fill(self, text: str) -> str:
        return text.format(**{k: str(v) for k, v in vars(self).items()})


class _NotTunesmith(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html><body>It works!</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Places]:
    workdir = tmp_path_factory.mktemp("cli-messages")
    server = ServerProcess(
        database_url=f"sqlite:///{workdir / 'cli.db'}", workdir=workdir
    ).start()
    files = workdir / "files"
    files.mkdir()
    (files / "token").write_text(server.token + "\n")
    (files / "wrong-token").write_text("ts_not-a-token\n")
    (files / "empty-token").write_text("\n")
    (files / "syntax.yaml").write_text("name: [unclosed\nobjective: synthetic\n")
    (files / "one-arg.yaml").write_text(
        yaml.safe_dump({"name": "one", "objective": "synthetic", "objective_args": {"steps": 0}})
    )
    # A listening socket whose accept queue is full: connections to it are never answered.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(silent.getsockname())
        fillers.append(filler)
    foreign = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotTunesmith)
    threading.Thread(target=foreign.serve_forever, daemon=True).start()
    yield Places(
        url=server.url,
        port=server.port,
        spare=free_port(),
        dead=f"http://127.0.0.1:{free_port()}",
        silent=f"http://127.0.0.1:{silent.getsockname()[1]}",
        foreign=f"http://127.0.0.1:{foreign.server_address[1]}",
        files=files,
        absent=workdir / "no-such-token-file",
    )
    foreign.shutdown()
    for s in [silent, *fillers]:
        s.close()
    server.stop()


def cli_env(places: Places, **extra: str) -> dict[str, str]:
    """The environment of a user with the token file `serve` wrote and no TUNESMITH_URL."""
    env = {k: v for k, v in os.environ.items() if k not in ("TUNESMITH_TOKEN", "TUNESMITH_URL")}
    env["TUNESMITH_TOKEN_FILE"] = str(places.files / "token")
    env.update(extra)
    return env


def run(places: Places, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args),
        env=cli_env(places, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


REPEATED_FIELD = re.compile(r"(?:^|\s)([\w.\[\]]+): \1: ")


@dataclass(frozen=True)
class Case:
    id: str
    args: str
    needles: tuple[str, ...]
    code: int = 1
    env: dict[str, str] = field(default_factory=dict)
    absent: tuple[str, ...] = ()


CASES = [
    Case(
        "yaml-syntax-error-with-line-and-column",
        "study create -f {files}/syntax.yaml",
        ("syntax.yaml:2:10: not valid YAML", "started at line 1, column 7"),
    ),
    Case(
        "objective-args-field-named-once",
        "study create -f {files}/one-arg.yaml --url {url}",
        ("objective_args.steps: Input should be greater than or equal to 1",),
    ),
    Case(
        "bad-enum-lists-the-allowed-values",
        "study trials 1 --state completed --url {url}",
        ("invalid choice: 'completed'", "'complete', 'pruned', 'failed'",
         "see tunesmith study trials --help"),
        code=2,
    ),
    Case(
        "bad-role-lists-the-allowed-values",
        "token create --role root --name x --url {url}",
        ("invalid choice: 'root'", "'admin', 'user', 'worker', 'viewer'"),
        code=2,
    ),
    Case(
        "bad-number",
        "study list --limit x",
        ("invalid int value: 'x'", "see tunesmith study list --help"),
        code=2,
    ),
    Case(
        "missing-sub-command",
        "study",
        ("required: COMMAND", "see tunesmith study --help"),
        code=2,
    ),
    Case(
        "url-without-scheme",
        "study list --url 127.0.0.1:{port}",
        ("--url '127.0.0.1:{port}' has no scheme: write http://127.0.0.1:{port}",),
    ),
    Case(
        "env-url-without-scheme",
        "study list",
        ("TUNESMITH_URL 'localhost:{port}' has no scheme: write http://localhost:{port}",),
        env={"TUNESMITH_URL": "localhost:{port}"},
    ),
    Case(
        "missing-token-says-where-it-looked",
        "study list --url {url}",
        ("no API token", "no --token-file or --token given", "TUNESMITH_TOKEN is not set",
         "no token file {absent}", "pass --token-file FILE or set TUNESMITH_TOKEN"),
        env={"TUNESMITH_TOKEN_FILE": "{absent}"},
    ),
    Case(
        "unreadable-token-file",
        "study list --url {url} --token-file {absent}",
        ("cannot read --token-file {absent}: No such file or directory",),
    ),
    Case(
        "empty-token-file",
        "study list --url {url} --token-file {files}/empty-token",
        ("--token-file {files}/empty-token is empty",),
    ),
    Case(
        "refused-token-names-its-source",
        "study list --url {url} --token-file {files}/wrong-token",
        ("HTTP 401", "the token from --token-file {files}/wrong-token was refused",
         "tunesmith token create"),
    ),
    Case(
        "wrong-port",
        "study list --url {dead}",
        ("cannot reach {dead} (", "check the host and port in --url",
         "`tunesmith serve` is running there"),
    ),
    Case(
        "wrong-port-from-the-environment",
        "study list",
        ("cannot reach {dead} (", "check the host and port in TUNESMITH_URL"),
        env={"TUNESMITH_URL": "{dead}"},
    ),
    Case(
        "port-that-never-answers",
        "study list --url {silent}",
        ("cannot reach {silent} (no answer to the connection within 3 s)",
         "check the host and port in --url"),
    ),
    Case(
        "url-with-a-path",
        "study list --url {url}/dashboard",
        ("HTTP 404", "{url}/dashboard/api/v1 has no such route", "check the server URL"),
    ),
    Case(
        "not-a-tunesmith-server",
        "study list --url {foreign}",
        ("HTTP 404: Not Found; {foreign} did not answer as a tunesmith server",
         "check the server URL"),
    ),
    Case(
        "unknown-study",
        "study show 99999 --url {url}",
        ("HTTP 404: study 99999 not found",),
    ),
    Case(
        "missing-spec-file",
        "study create -f {absent}",
        ("cannot read {absent}: No such file or directory",),
    ),
    Case(
        "delete-needs-yes",
        "study delete 1 --url {url}",
        ("repeat with --yes",),
    ),
    Case(
        "worker-without-token",
        "worker --server {url} --cpu-workers 1",
        ("no API token", "no token file {absent}"),
        env={"TUNESMITH_TOKEN_FILE": "{absent}"},
    ),
    Case(
        "serve-on-a-busy-port",
        "serve --port {port} --workers 0 --database-url sqlite:///{files}/busy.db",
        ("cannot listen on 127.0.0.1:{port}: Address already in use",
         "choose another port with --port"),
    ),
    Case(
        "serve-with-an-unreachable-database",
        "serve --port {spare} --workers 0 --database-url "
        "postgresql+psycopg://someone:secret@127.0.0.1:9/nowhere",
        ("cannot open the database postgresql+psycopg://someone:***@127.0.0.1:9/nowhere",
         "Connection refused", "check --database-url or TUNESMITH_DATABASE_URL"),
        absent=("secret",),
    ),
    Case(
        "db-upgrade-with-an-unknown-dialect",
        "db upgrade --database-url nosuchdb://x",
        ("cannot open the database nosuchdb://x: Can't load plugin",
         "check --database-url"),
    ),
    Case(
        "worker-url-without-scheme",
        "worker --server 127.0.0.1:{port} --cpu-workers 1",
        ("--server '127.0.0.1:{port}' has no scheme: write http://127.0.0.1:{port}",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_mistake_is_one_line_that_says_what_to_do(places: Places, case: Case) -> None:
    env = {k: places.fill(v) for k, v in case.env.items()}
    result = run(places, places.fill(case.args).split(), **env)
    assert result.returncode == case.code, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("tunesmith") and ": error: " in line, line
    for needle in case.needles:
        assert places.fill(needle) in line, (needle, line)
    assert not REPEATED_FIELD.search(line), line
    for word in case.absent:
        assert word not in result.stderr, (word, line)
    assert result.stdout == ""


def test_every_refused_field_is_one_line_naming_it_once(places: Places, tmp_path: Path) -> None:
    spec = tmp_path / "many.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "many",
                "objective": "synthetic",
                "objective_args": {"steps": 0, "colour": "red"},
                "space": {"x": {"type": "float", "low": 1.0, "high": 0.0}},
                "budget": {"max_trials": 0},
            }
        )
    )
    result = run(places, ["study", "create", "-f", str(spec), "--url", places.url])
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert all(line.startswith("tunesmith: error: ") for line in lines), lines
    fields = sorted(line.removeprefix("tunesmith: error: ").split(": ")[0] for line in lines)
    # The body is refused before the objective's arguments are checked; each field once.
    assert fields == ["budget.max_trials", "space.x"], lines
    assert not any(REPEATED_FIELD.search(line) for line in lines), lines

    spec.write_text(
        yaml.safe_dump(
            {"name": "many", "objective": "synthetic", "objective_args": {"steps": 0, "c": 1}}
        )
    )
    result = run(places, ["study", "create", "-f", str(spec), "--url", places.url])
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "tunesmith: error: objective_args.steps: Input should be greater than or equal to 1",
        "tunesmith: error: objective_args.c: Extra inputs are not permitted",
    ]


@pytest.mark.parametrize("suffix", ["/api/v1", "/api/v1/", "/"])
def test_a_url_ending_in_the_api_prefix_works(places: Places, suffix: str) -> None:
    result = run(places, ["study", "list", "--url", places.url + suffix])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["ID", "NAME"]


def test_the_token_comes_from_a_file_or_the_environment(places: Places) -> None:
    token = (places.files / "token").read_text().strip()
    by_file = run(
        places,
        ["token", "list", "--url", places.url, "--token-file", str(places.files / "token")],
        TUNESMITH_TOKEN_FILE=str(places.absent),
    )
    by_env = run(
        places,
        ["token", "list", "--url", places.url],
        TUNESMITH_TOKEN_FILE=str(places.absent),
        TUNESMITH_TOKEN=token,
    )
    assert by_file.returncode == by_env.returncode == 0, (by_file.stderr, by_env.stderr)
    assert by_file.stdout == by_env.stdout and "admin" in by_file.stdout


def test_version_is_the_installed_package_version(places: Places) -> None:
    result = run(places, ["--version"])
    assert result.returncode == 0
    assert result.stdout.strip() == f"tunesmith {importlib.metadata.version('tunesmith')}"


def test_connection_failures_end_within_the_connect_timeout(places: Places) -> None:
    """A wrong port (refused) and a port that never answers both fail in about 3 s (the
    connect timeout), not after the 30-s retry window meant for a restarting server."""
    for url in (places.dead, places.silent):
        with Client(url, "t", connect_retry_seconds=1.0) as client:
            started = time.monotonic()
            with pytest.raises(ServerUnavailable):
                client.list_studies()
            assert time.monotonic() - started < 6.0, url


def test_the_python_client_says_where_it_looked_for_a_token(
    places: Places, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TUNESMITH_TOKEN", raising=False)
    monkeypatch.setenv("TUNESMITH_TOKEN_FILE", str(places.absent))
    with Client(places.url + "/api/v1") as client, pytest.raises(ApiError) as refused:
        client.list_studies()
    assert refused.value.status == 401
    assert str(refused.value).endswith(
        f"no token was sent (TUNESMITH_TOKEN is not set, no token file "
        f"{places.absent}): set TUNESMITH_TOKEN or pass token="
    )


def test_every_option_has_help() -> None:
    """`--help` of every command explains every option; and `--version` exists."""
    from service.cli import build_parser

    missing = []
    parsers = [build_parser()]
    while parsers:
        parser = parsers.pop()
        for action in parser._actions:
            if action.choices and isinstance(action.choices, dict):  # sub-commands
                parsers.extend(action.choices.values())
            elif not action.help:
                missing.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []
    assert "--version" in build_parser().format_help()


def test_help_shows_defaults(places: Places) -> None:
    result = run(places, ["study", "list", "--help"])
    assert "show at most this many studies (default: 100)" in " ".join(result.stdout.split())


# ---- study watch ------------------------------------------------------------------------


def test_watch_counts_its_own_progress_and_says_when_there_is_no_result(
    places: Places,
) -> None:
    """On a study half done (two failed trials of four), `study watch` shows a rate
    measured from its own start (none until a trial finishes while it watches) and "no
    result yet" instead of best=None; then the best value once a trial completes."""
    with Client(places.url, (places.files / "token").read_text().strip()) as client:
        study = client.create_study(
            {
                "name": "watched",
                "objective": "external",
                "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
                "strategy": {"name": "random"},
                "budget": {"max_trials": 4, "max_parallel": 4},
            }
        )
        for trial in client.suggest(study.id, 2):
            client.fail(trial, "on purpose")
        proc = subprocess.Popen(
            cli_command("study", "watch", str(study.id), "--url", places.url),
            env=cli_env(places),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        frames: list[str] = []

        def read() -> None:
            assert proc.stderr is not None
            buffer = b""
            while chunk := proc.stderr.read1(4096):  # type: ignore[attr-defined]
                buffer += chunk
                *done, buffer = re.split(rb"[\r\n]", buffer)
                frames.extend(f.decode() for f in done if f.strip())
            if buffer.strip():
                frames.append(buffer.decode())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            wait_until(lambda: len([f for f in frames if "2/4" in f and "best=" in f]) >= 2,
                       timeout=60, what=f"two frames at 2/4 ({frames})")
            for trial in client.suggest(study.id, 2):
                client.complete(trial, trial.params["x"])
            proc.wait(timeout=60)  # not communicate(): the reader thread owns stderr
        finally:
            if proc.poll() is None:
                proc.kill()
        reader.join(timeout=10)
    half = [f for f in frames if "2/4" in f and "best=" in f]  # tqdm's first frame has none
    assert half and all("best=no result yet" in f for f in half), frames
    assert all("None" not in f for f in frames), frames
    # Nothing finished while it watched: no rate yet (tqdm's "?"), or zero; not thousands.
    assert all(re.search(r"(\?|\b0\.00)trial/s", f) for f in half), half
    assert any("4/4" in f and "best=" in f and "no result" not in f for f in frames), frames
    assert proc.returncode == 0 and proc.stdout is not None
    assert proc.stdout.read().decode().startswith(f"study {study.id} done")


# ---- logs ---------------------------------------------------------------------------------


def test_serve_log_has_no_migration_chatter(places: Places) -> None:
    log = next(places.files.parent.glob("server-*.log")).read_text()
    assert "alembic" not in log, log
    assert "serving on" in log


def test_worker_log_is_quiet_and_names_trials_one_way(places: Places, tmp_path: Path) -> None:
    """A real worker training a Keras trial, with TF_CPP_MIN_LOG_LEVEL left unset by the
    user: none of TensorFlow's C++ error or warning lines (a ~1,000-character one per
    trial), no runpy warning, and every line about the trial names it the same way."""
    token = (places.files / "token").read_text().strip()
    with Client(places.url, token) as client:
        study = client.create_study(
            {
                "name": "quiet-worker",
                "objective": "softmax",
                "objective_args": {"epochs": 1},
                "strategy": {"name": "random"},
                "budget": {"max_trials": 1},
            }
        )
    env = {k: v for k, v in cli_env(places).items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.run(
            cli_command(
                "worker", "--server", places.url, "--cpu-workers", "1", "--max-trials", "1",
                "--objective", "softmax", "--artifact-root", str(tmp_path / "artifacts"),
            ),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    text = log_path.read_text()
    assert worker.returncode == 0, text
    with Client(places.url, token) as client:
        (trial,) = client.trials(study.id)
    assert trial.state.value == "complete", text
    label = f"trial #{trial.number} (id {trial.id}) of study {study.id}"
    for line in (f"starting {label} with", f"{label} trains on", f"{label} epoch 1:",
                 f"{label} complete:"):
        assert line in text, (line, text)
    assert not re.search(rf"trial {trial.id} \(study|trial {trial.number} \(id", text), text
    assert not re.search(r"^[EWF]\d{4} ", text, re.MULTILINE), text
    assert "RuntimeWarning" not in text, text
