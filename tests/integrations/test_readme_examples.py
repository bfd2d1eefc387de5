"""The README's examples for Optuna, KerasTuner and Ray Tune run, as written, against a server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.readme import README, examples
from tests.support import ServerProcess, finished

# Three fresh interpreters (TensorFlow, a local Ray cluster): about 70 s at load average 6.
pytestmark = [pytest.mark.slow, pytest.mark.tf, pytest.mark.timeout(900)]



def _examples() -> list[str]:
    return [example.code for example in examples("integrations-").values()]


def test_the_section_has_one_example_per_library() -> None:
    libraries = [re.search(r"from service\.integrations\.(\w+)", e) for e in _examples()]
    assert [m.group(1) for m in libraries if m] == ["optuna", "keras_tuner", "ray_tune"]


def test_the_examples_run_against_a_server(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    for library in ("optuna", "keras_tuner", "ray.tune"):
        pytest.importorskip(library)
    server = start_server()
    env = {
        **server.env(),
        "HOME": str(tmp_path),  # Ray's and Keras's files stay in the test's folder
        "PYTHONPATH": str(README.parent),
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    for i, code in enumerate(_examples()):
        script = tmp_path / f"example_{i}.py"
        script.write_text(code)
        try:
            done = subprocess.run(
                [sys.executable, str(script)],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=400,
            )
        except subprocess.TimeoutExpired as hung:
            pytest.fail(
                f"example {i} ran past {hung.timeout} s\n--- stdout\n{_tail(hung.stdout)}"
                f"\n--- stderr\n{_tail(hung.stderr)}\n--- Ray's logs\n{_ray_log_tail()}"
            )
        assert done.returncode == 0, done.stderr[-3000:]
    client = server.client()
    expected = {"optuna-quad": 30, "digits-mlp": 3, "ray-quad": 6}
    for name, n_trials in expected.items():
        study = client.find_study(name)
        assert study is not None, name
        assert finished(study) == n_trials, (name, study.counts)
    assert os.path.isdir(tmp_path / "digits-mlp")


def _tail(output: str | bytes | None, chars: int = 3000) -> str:
    if isinstance(output, bytes):
        output = output.decode(errors="replace")
    return (output or "")[-chars:]


def _ray_log_tail(chars: int = 1500) -> str:
    """The end of each log of the newest Ray session (under the system temp folder), where
    a trial that never leaves PENDING says why."""
    sessions = sorted(Path(tempfile.gettempdir(), "ray").glob("session_2*"))
    if not sessions:
        return "(no Ray session folder)"
    logs = sorted((sessions[-1] / "logs").glob("*.err")) + sorted(
        (sessions[-1] / "logs").glob("raylet*.out")
    )
    return "\n".join(f"[{p.name}] {_tail(p.read_text(errors='replace'), chars)}" for p in logs[:6])
