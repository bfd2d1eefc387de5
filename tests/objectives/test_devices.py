"""`objectives.devices.backend_report` on each installed Keras backend, in child processes
(the backend is fixed at `import keras`). CUDA_VISIBLE_DEVICES is emptied, so even a GPU
machine takes the CPU path: no usable GPU, and a reason."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REPORT = (
    "import json, sys\n"
    "from objectives.devices import backend_report\n"
    "assert 'keras' not in sys.modules\n"
    "print(json.dumps(backend_report()))\n"
)


def report(backend: str, prelude: str = "") -> dict[str, object]:
    env = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, "-c", prelude + REPORT], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=240, check=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_cpu_only_report(backend: str) -> None:
    if importlib.util.find_spec(backend) is None or importlib.util.find_spec("keras") is None:
        pytest.skip(f"{backend} is not installed")
    result = report(backend)
    assert result["keras_backend"] == backend and result["keras_version"]
    assert result["framework_version"] and result["cuda_visible_devices"] == ""
    assert result["gpu_usable"] is False and isinstance(result["reason"], str)
    devices = result["devices"]
    assert isinstance(devices, list) and devices
    assert {d["kind"] for d in devices} == {"cpu"}


def test_missing_framework_is_a_reason_not_a_crash() -> None:
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    result = report("jax", prelude="import sys\nsys.modules['jax'] = None\n")
    assert result["gpu_usable"] is False and result["devices"] == []
    assert str(result["reason"]).startswith("keras failed to import")
