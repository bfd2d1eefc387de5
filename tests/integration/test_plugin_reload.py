"""A plugin installed, then upgraded, while the server and a worker run: neither restarts.

The plugin package (tests/plugin_pkg, copied) is installed with pip into a folder on the
processes' PYTHONPATH (`pip install --target`, offline). Before it is installed the server
refuses a study of it; once installed the study runs; after an upgrade (version 0.2.0,
whose trainer adds 1000 to the metric) the same worker process trains the new code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from service.client import ApiError
from tests.support import ServerProcess, WorkerGroup, wait_until

PLUGIN = Path(__file__).resolve().parents[1] / "plugin_pkg"


def pip_install(source: Path, target: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--upgrade", "--target", str(target), str(source)],
        check=True, capture_output=True, timeout=300,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )


def upgraded_copy(source: Path, folder: Path) -> Path:
    """The plugin at version 0.2.0, its trainer's metric raised by 1000."""
    shutil.copytree(source, folder)
    toml = folder / "pyproject.toml"
    toml.write_text(toml.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    trainer = folder / "tunesmith_demo_plugin" / "trainer.py"
    text = trainer.read_text()
    assert "value = target + 1.0 / epoch" in text
    trainer.write_text(text.replace("value = target + 1.0 / epoch",
                                    "value = 1000 + target + 1.0 / epoch"))
    return folder


def run_study(server: ServerProcess, name: str) -> list[tuple[float, str]]:
    client = server.client()
    study = client.create_study({"name": name, "objective": "demo_plugin",
                                 "objective_args": {"epochs": 2},
                                 "strategy": {"name": "random"},
                                 "budget": {"max_trials": 2, "max_parallel": 1}})
    wait_until(lambda: client.get_study(study.id).state == "done", timeout=240,
               what=f"study {name} ({server.log_tail()})")
    out = []
    for trial in client.trials(study.id):
        detail = client.trial(trial.id)
        assert trial.state == "complete", detail
        out.append((float(trial.value or 0.0), str(detail.attempts[-1].worker_id)))
    return out


@pytest.mark.timeout(900)
def test_install_and_upgrade_without_restart(
    tmp_path: Path,
    start_server: Callable[..., ServerProcess],
    start_workers: Callable[..., WorkerGroup],
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    source = tmp_path / "plugin-0.1.0"
    shutil.copytree(PLUGIN, source)
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    server = start_server(extra_env={"PYTHONPATH": path})
    start_workers(server, "--cpu-workers", "1")

    with pytest.raises(ApiError) as refused:
        server.client().create_study({"name": "early", "objective": "demo_plugin"})
    assert refused.value.status == 422 and "demo_plugin" in str(refused.value)

    pip_install(source, site)
    first = run_study(server, "v1")
    assert all(value < 100 for value, _ in first)

    pip_install(upgraded_copy(PLUGIN, tmp_path / "plugin-0.2.0"), site)
    assert (site / "tunesmith_demo_plugin-0.2.0.dist-info").is_dir()
    second = run_study(server, "v2")
    assert all(value > 1000 for value, _ in second)
    # The same worker process (its id ends with its pid) ran both versions.
    assert {w for _, w in first} == {w for _, w in second}
