"""What a worker reports about its device (service.device): a CPU slot reads its configured
backend without importing it; a GPU slot's probe decides whether it may lease."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service.device import WorkerDevice, configured_backend, gpu_slot


def test_configured_backend_reads_the_environment_then_keras_json(tmp_path: Path) -> None:
    assert configured_backend({"KERAS_BACKEND": "jax", "KERAS_HOME": str(tmp_path)}) == "jax"
    assert configured_backend({"KERAS_HOME": str(tmp_path)}) == "tensorflow"
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    assert configured_backend({"KERAS_HOME": str(tmp_path)}) == "torch"
    (tmp_path / "keras.json").write_text("not json")
    assert configured_backend({"KERAS_HOME": str(tmp_path)}) == "tensorflow"


def test_a_cpu_slot_imports_no_framework() -> None:
    probe = (
        "import sys\nfrom service.device import cpu_slot\nd = cpu_slot()\n"
        "heavy = [m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules]\n"
        "print(d.device, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "cpu []"


def report(**overrides: Any) -> dict[str, Any]:
    base = {
        "keras_backend": "tensorflow",
        "devices": [{"name": "/physical_device:CPU:0", "kind": "cpu", "memory_bytes": None}],
        "gpu_usable": False,
        "reason": "this TensorFlow is built without CUDA (tensorflow-cpu?)",
    }
    return {**base, **overrides}


def test_a_gpu_slot_without_a_usable_gpu_is_unavailable_unless_allowed() -> None:
    no_gpu = gpu_slot(report(), name="NVIDIA H100", memory_bytes=1, allow_cpu=False)
    assert no_gpu == WorkerDevice(
        backend="tensorflow",
        device="cpu",
        unavailable="no usable GPU: this TensorFlow is built without CUDA (tensorflow-cpu?)",
    )
    allowed = gpu_slot(report(), name="NVIDIA H100", memory_bytes=1, allow_cpu=True)
    assert (allowed.device, allowed.unavailable) == ("cpu", None)
    long = gpu_slot(report(reason="x" * 5000), name=None, memory_bytes=None, allow_cpu=False)
    assert long.unavailable is not None and len(long.unavailable) == 1000


@pytest.mark.parametrize(
    ("name", "memory", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", 85520809984, ("NVIDIA H100 80GB HBM3", 85520809984)),
        (None, None, ("cuda:0 NVIDIA H100", 80)),
    ],
)
def test_a_usable_gpu_is_named_by_nvidia_smi_else_by_the_framework(
    name: str | None, memory: int | None, expected: tuple[str, int]
) -> None:
    gpu = {"name": "cuda:0 NVIDIA H100", "kind": "gpu", "memory_bytes": 80}
    usable = report(keras_backend="torch", gpu_usable=True, reason=None, devices=[gpu])
    device = gpu_slot(usable, name=name, memory_bytes=memory, allow_cpu=False)
    assert (device.device, device.memory_bytes) == expected
    assert (device.backend, device.unavailable) == ("torch", None)
