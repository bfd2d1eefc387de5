"""The `tunesmith` CLI and the Python client against a live server.

CLI errors must be one line on stderr with exit status 1, never a traceback.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.cli import main
from service.client import Client
from tests.support import ServerProcess, cli_command, free_port

pytestmark = pytest.mark.slow

SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("cli")
    server = ServerProcess(
        database_url=f"sqlite:///{workdir / 'cli.db'}", workdir=workdir, lease_seconds=30
    ).start()
    yield server
    server.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with server.client() as c:
        yield c


def run_cli(
    capsys: pytest.CaptureFixture[str], server: ServerProcess | None, *args: str
) -> tuple[int, str, str]:
    flags = ["--url", server.url, "--token", server.token] if server is not None else []
    code = main([*args, *flags])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tunesmith: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# ---- CLI ------------------------------------------------------------------------------------


def test_bad_spec_files_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.yaml"
    code, _, err = run_cli(capsys, None, "study", "create", "-f", str(missing))
    assert_one_line_error(code, err, "cannot read", "missing.yaml")

    not_a_mapping = tmp_path / "list.yaml"
    not_a_mapping.write_text("- 1\n- 2\n")
    code, _, err = run_cli(capsys, None, "study", "create", "-f", str(not_a_mapping))
    assert_one_line_error(code, err, "must hold an object")

    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    code, _, err = run_cli(capsys, None, "study", "create", "-f", str(broken))
    assert code == 1 and "not valid YAML" in err and "Traceback" not in err


def test_unreachable_server_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "x", "objective": "synthetic"}))
    url = f"http://127.0.0.1:{free_port()}"
    code = main(["study", "create", "-f", str(spec), "--url", url, "--token", "t"])
    _, err = capsys.readouterr()
    assert_one_line_error(code, err, "cannot reach", url, "tunesmith serve")


def test_study_create_show_list(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "from-cli",
                "objective": "synthetic",
                "objective_args": {"steps": 2},
                "strategy": {"name": "random"},
                "budget": {"max_trials": 7},
            }
        )
    )
    code, out, _ = run_cli(capsys, server, "study", "create", "-f", str(spec))
    assert code == 0
    assert out.startswith("created study ") and "(from-cli): synthetic, 7 trials" in out
    study_id = int(out.split()[2])

    code, out, _ = run_cli(capsys, server, "study", "show", str(study_id))
    assert code == 0
    assert out.splitlines()[0] == f"study {study_id}: from-cli [running]"
    assert "objective synthetic (loss, minimize), strategy random" in out

    code, out, _ = run_cli(capsys, server, "study", "show", str(study_id), "--json")
    shown = json.loads(out)
    assert (shown["name"], shown["objective_args"]["steps"], shown["budget"]["max_trials"]) == (
        "from-cli",
        2,
        7,
    )

    code, out, _ = run_cli(capsys, server, "study", "list")
    assert code == 0
    rows = [line for line in out.splitlines() if "from-cli" in line]
    assert len(rows) == 1 and rows[0].split()[:3] == [str(study_id), "from-cli", "running"]
    assert "0/7" in rows[0]

    code, out, _ = run_cli(capsys, server, "study", "stop", str(study_id))
    assert (code, out.strip()) == (0, f"study {study_id} is stopped")


def test_cli_server_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, tmp_path: Path
) -> None:
    code, _, err = run_cli(capsys, server, "study", "show", "99999")
    assert_one_line_error(code, err, "HTTP 404", "study 99999 not found")

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "bad", "objective": "synthetic", "budget": {"max": 3}}))
    code, _, err = run_cli(capsys, server, "study", "create", "-f", str(bad))
    assert_one_line_error(code, err, "budget.max: Extra inputs are not permitted")

    code = main(["study", "list", "--url", server.url, "--token", "wrong-token"])
    _, err = capsys.readouterr()
    assert_one_line_error(code, err, "HTTP 401")


def test_objectives_list_names_the_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, None, "objectives", "list")
    assert code == 0
    names = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert {"synthetic", "branin"} <= names
    (synthetic,) = [line for line in out.splitlines() if line.startswith("synthetic")]
    assert "loss (minimize)" in synthetic


def test_cli_runs_as_a_command(server: ServerProcess) -> None:
    """The real entry point: `python -m service.cli`, its exit status and one-line errors."""
    ok = subprocess.run(
        cli_command("study", "list", "--url", server.url, "--token", server.token),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0 and ok.stdout.split()[:2] == ["ID", "NAME"], ok.stderr
    bad = subprocess.run(
        cli_command("study", "show", "424242", "--url", server.url, "--token", server.token),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line_error(bad.returncode, bad.stderr, "HTTP 404")


# ---- Python client --------------------------------------------------------------------------


def external(client: Client, name: str, max_trials: int, **extra: Any) -> int:
    study = client.create_study(
        {
            "name": name,
            "objective": "external",
            "space": SPACE,
            "strategy": {"name": "random"},
            "budget": {"max_trials": max_trials, "max_parallel": 4},
            **extra,
        }
    )
    return study.id


def test_optimize_finishes_the_budget(client: Client) -> None:
    study_id = external(client, "optimize", 8)
    seen: list[float] = []

    def fn(params: dict[str, Any]) -> float:
        seen.append(params["x"])
        return (params["x"] - 0.25) ** 2

    study = client.optimize(fn, study_id, n_trials=8, n_jobs=2)
    assert (study.state.value, study.stop_reason) == ("done", "budget of 8 trials used")
    assert study.counts["complete"] == 8 and study.n_trials == 8
    assert len(seen) == 8
    assert study.best is not None and study.best.value == min((x - 0.25) ** 2 for x in seen)
    # the budget is used: a second run finds nothing to do and returns at once
    assert client.optimize(fn, study_id, n_jobs=2).n_trials == 8


def test_optimize_stops_after_n_trials(client: Client) -> None:
    study_id = external(client, "optimize-partial", 10)
    study = client.optimize(lambda p: p["x"], study_id, n_trials=3, n_jobs=2)
    assert study.state.value == "running"
    assert study.counts["complete"] == 3 and study.n_trials == 3


def test_optimize_fails_a_trial_whose_fn_raises(client: Client) -> None:
    configs = [{"x": 0.9}, {"x": 0.1}, {"x": 0.8}, {"x": 0.2}]
    study_id = external(client, "optimize-raises", 4, enqueue=configs)

    def fn(params: dict[str, Any]) -> float:
        if params["x"] > 0.5:
            raise ValueError(f"x too large: {params['x']}")
        if params["x"] == 0.2:
            return float("nan")
        return params["x"]

    study = client.optimize(fn, study_id, n_jobs=2)
    assert study.state.value == "done"
    by_x = {t.params["x"]: t for t in client.trials(study_id)}
    assert by_x[0.9].state.value == by_x[0.8].state.value == "failed"
    assert by_x[0.9].error == "ValueError: x too large: 0.9"
    assert by_x[0.2].state.value == "failed" and "diverged" in (by_x[0.2].error or "")
    assert (by_x[0.1].state.value, by_x[0.1].value) == ("complete", 0.1)
    assert study.best is not None and study.best.value == 0.1
