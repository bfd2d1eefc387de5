"""The README is executed: its quick start, study specification and CLI commands, Python
client and plugin guide run as written against real servers and workers (offline, on
127.0.0.1), so the README cannot drift from the code. The examples are the blocks the README
marks with `<!-- readme-test: NAME -->` (tests/readme.py); `tunesmith` is this checkout's
CLI. The integrations' examples run in tests/integrations/test_readme_examples.py.

What cannot run here is replaced by its equivalent, and only that: `make run` by the command
its recipe runs (`make -n run`; making the virtualenv is not this test's business), and the
plugin's `pip install .` by `pip install --target` into a folder on the processes' path (the
test's interpreter is shared).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.readme import README, Example, examples
from tests.support import ServerProcess, WorkerGroup, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.tf, pytest.mark.timeout(1200)]

REPO = README.parent
EXPECTED = {
    "quickstart", "study-spec", "cli", "client",
    "integrations-optuna", "integrations-keras-tuner", "integrations-ray-tune",
    "plugin-declaration", "plugin-trainer", "plugin-pyproject", "plugin-study", "plugin-run",
}


def shim(folder: Path) -> Path:
    """A `tunesmith` command on PATH that runs this checkout's CLI."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tunesmith"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m service.cli "$@"\n')
    path.chmod(0o755)
    return folder


def with_cli(env: dict[str, str], bin_dir: Path, *paths: Path) -> dict[str, str]:
    pythonpath = os.pathsep.join([*map(str, paths), str(REPO)])
    return {**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}", "PYTHONPATH": pythonpath,
            "TF_CPP_MIN_LOG_LEVEL": "3"}


def save(example: Example, folder: Path) -> Path:
    assert example.file is not None, example.name
    path = folder / example.file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(example.code)
    return path


def run(example: Example, folder: Path, env: dict[str, str], timeout: float = 600) -> str:
    """Runs a bash or python example as its reader would; fails with its output."""
    if example.lang == "bash":
        command = ["bash", "-euo", "pipefail", "-c", example.code]
    else:
        assert example.lang == "python", example.name
        command = [sys.executable, "-c", example.code]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, (
        f"README example {example.name!r} failed ({done.returncode}):\n"
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


def test_every_guide_section_marks_its_examples() -> None:
    assert set(examples()) == EXPECTED


@pytest.fixture
def quickstart(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    """`make run`'s command, as a new user's first run: no TUNESMITH_* variables, an empty
    HOME."""
    code = examples()["quickstart"].code
    assert re.search(r"^make run\b", code, re.M), code
    port = free_port()
    recipe = subprocess.run(["make", "-n", "run", f"VENV={tmp_path / 'venv'}", f"PORT={port}"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    serve = next(line for line in recipe.splitlines() if "tunesmith serve" in line)
    args = serve.split("tunesmith", 1)[1].split()
    assert args == ["serve", "--example", "--port", str(port)]
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNESMITH_")}
    env = with_cli({**env, "HOME": str(home)}, shim(tmp_path / "bin"))
    folder = tmp_path / "clone"
    folder.mkdir()
    log = folder / "run.log"
    proc = subprocess.Popen(["tunesmith", *args], cwd=folder, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc, log, port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)


def test_quickstart_serves_prints_the_token_and_starts_the_example(
    quickstart: tuple[subprocess.Popen[bytes], Path, int], tmp_path: Path
) -> None:
    proc, log, port = quickstart

    def serving() -> bool:
        assert proc.poll() is None, log.read_text()
        return "serving on" in log.read_text()

    wait_until(serving, timeout=120, what="make run's server")
    output = log.read_text()
    url = f"http://127.0.0.1:{port}"
    assert f"serving on {url}" in output
    token = output.split("created the admin token", 1)[1].splitlines()[1].strip()
    home = tmp_path / "home" / ".tunesmith"
    # What the quick start says: the token is saved to the server's own file and the default.
    assert (home / "tokens" / f"127.0.0.1-{port}").read_text().strip() == token
    assert (home / "token").read_text().strip() == token
    headers = {"Authorization": f"Bearer {token}"}

    def first_trial_done() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            studies = httpx.get(f"{url}/api/v1/studies", headers=headers, timeout=5).json()
        except httpx.TransportError:
            return False
        return any(s["counts"].get("complete", 0) >= 1 for s in studies["data"])

    wait_until(first_trial_done, timeout=300, interval=1, what="the example study's first trial")


def test_the_user_guide_runs_against_a_server(
    tmp_path: Path,
    start_server: Callable[..., ServerProcess],
    start_workers: Callable[..., WorkerGroup],
) -> None:
    guide = examples()
    site = tmp_path / "site"  # where the plugin is installed; on every process's path
    site.mkdir()
    server = start_server(extra_env={"PYTHONPATH": os.pathsep.join([str(site), str(REPO)])})
    other = start_server(database_url=f"sqlite:///{tmp_path / 'other.db'}")
    start_workers(server, "--cpu-workers", "1")
    user = tmp_path / "user"
    user.mkdir()
    env = with_cli({**server.env(), "HOME": str(tmp_path / "home"), "OTHER": other.url},
                   shim(tmp_path / "bin"), site)
    client = server.client()

    # A study and the CLI: the specification saved as spec.yaml, then each command.
    save(guide["study-spec"], user)
    out = run(guide["cli"], user, env)
    assert "created study 1 (vae-digits)" in out
    assert other.client().find_study("vae-digits") is not None
    assert client.find_study("vae-digits") is None  # deleted by the last study command

    # The Python client, twice: a second run finds its study and adds two trials by hand.
    for runs in (1, 2):
        run(guide["client"], user, env)
        quad = client.find_study("quad")
        assert quad is not None and quad.n_trials == 30 + 2 * runs, quad
        assert quad.counts.get("running", 0) == 0 and quad.counts.get("queued", 0) == 0

    # The plugin guide: the package's files, installed, its study run by the worker.
    for name in ("plugin-declaration", "plugin-trainer", "plugin-pyproject"):
        save(guide[name], user)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(site), str(user / "my-trainers")],
        check=True, capture_output=True, timeout=300,
    )
    save(guide["plugin-study"], user)
    out = run(guide["plugin-run"], user, env)
    assert "  units: int [16, 512], log; default 64" in out
    study = client.find_study("mlp-lr")
    assert study is not None
    wait_until(lambda: client.get_study(study.id).state == "done", timeout=600, interval=1,
               what=f"the plugin study ({server.log_tail()})")
    trials = client.trials(study.id)
    assert [t.state for t in trials] == ["complete"] * 4, [t.error for t in trials]
    assert all(t.params["units"] == 64 and t.params["optimizer"] == "adam" for t in trials)
    assert all(0.0 <= float(t.value or -1) <= 1.0 for t in trials)
