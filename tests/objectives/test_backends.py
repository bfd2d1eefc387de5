"""Every trainer's short test on every Keras 3 backend: tensorflow, jax and torch.

Keras fixes its backend when first imported, so each backend runs
tests/objectives/keras_cases.py in its own pytest child process with KERAS_BACKEND set. A
backend whose framework is not installed is skipped; `make test` installs all three (the
`dev` extra: tensorflow, jax[cpu], torch).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "tests" / "objectives" / "keras_cases.py"
FRAMEWORK = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}

pytestmark = [pytest.mark.tf, pytest.mark.slow]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("backend", list(FRAMEWORK))
def test_trainers_on_backend(backend: str, tmp_path: Path) -> None:
    for module in (FRAMEWORK[backend], "keras"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[dev]')")
    env = {**os.environ, "KERAS_BACKEND": backend, "TUNESMITH_OFFLINE": "1",
           "TUNESMITH_CACHE_DIR": str(tmp_path / "cache")}
    started = time.monotonic()
    child = subprocess.run(
        [sys.executable, "-m", "pytest", str(CASES), "-q", "-p", "no:cacheprovider",
         "-W", "ignore::DeprecationWarning", "--basetemp", str(tmp_path / "child")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=850,
    )
    tail = "\n".join((child.stdout + child.stderr).splitlines()[-60:])
    print(f"{backend}: {time.monotonic() - started:.0f} s\n{tail}")
    assert child.returncode == 0, f"keras_cases.py failed on {backend}:\n{tail}"
