"""What a worker tells the server about where it trains: its Keras backend and its device.

Rules:
- A CPU slot never imports a framework to find out (many CPU workers start at once on a
  small machine): its backend is the configured one (`configured_backend`) and its device
  "cpu".
- A GPU slot probes its backend once, at start (`objectives.devices.backend_report`, which
  imports Keras and its framework and tries a small computation on the GPU). A usable GPU:
  the device is the slot's GPU, named as nvidia-smi names it when the supervisor passed that
  on, else as the framework does. No usable GPU: the device is "cpu" and, unless `allow_cpu`,
  `unavailable` says why; such a worker registers with the server but leases no trial.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_BACKEND = "tensorflow"
MAX_REASON = 1000


@dataclass(frozen=True)
class WorkerDevice:
    """A worker's backend and device, as sent with each lease request."""

    backend: str | None
    device: str
    memory_bytes: int | None = None
    unavailable: str | None = None
    """Why this worker leases no trial (None: it does)."""

    def lease_fields(self) -> dict[str, Any]:
        """The LeaseRequest fields that carry it."""
        return {
            "backend": self.backend,
            "device": self.device,
            "device_memory_bytes": self.memory_bytes,
            "unavailable": self.unavailable,
        }


def configured_backend(environ: dict[str, str] | None = None) -> str:
    """The Keras backend a trainer in this environment will get, without importing Keras:
    KERAS_BACKEND, else "backend" in keras.json ($KERAS_HOME or ~/.keras), else tensorflow."""
    env = os.environ if environ is None else environ
    if env.get("KERAS_BACKEND"):
        return env["KERAS_BACKEND"]
    home = Path(env.get("KERAS_HOME") or Path.home() / ".keras")
    try:
        backend = json.loads((home / "keras.json").read_text()).get("backend")
    except (OSError, ValueError, AttributeError):
        return DEFAULT_BACKEND
    return backend if isinstance(backend, str) and backend else DEFAULT_BACKEND


def cpu_slot() -> WorkerDevice:
    return WorkerDevice(backend=configured_backend(), device="cpu")


def gpu_slot(
    report: dict[str, Any], *, name: str | None, memory_bytes: int | None, allow_cpu: bool
) -> WorkerDevice:
    """The device of a GPU slot from its `backend_report()`; `name` and `memory_bytes` are
    nvidia-smi's for the slot's GPU (None when unknown)."""
    backend = report.get("keras_backend")
    if report.get("gpu_usable"):
        gpus: list[dict[str, Any]] = [
            d for d in report.get("devices", []) if d.get("kind") == "gpu"
        ]
        gpu = gpus[0] if gpus else {}
        return WorkerDevice(
            backend=backend,
            device=name or gpu.get("name") or "gpu",
            memory_bytes=memory_bytes if memory_bytes is not None else gpu.get("memory_bytes"),
        )
    reason = f"no usable GPU: {report.get('reason') or 'the backend sees no GPU'}"[:MAX_REASON]
    return WorkerDevice(backend=backend, device="cpu", unavailable=None if allow_cpu else reason)


def probe_gpu_slot(*, name: str | None, memory_bytes: int | None, allow_cpu: bool) -> WorkerDevice:
    """Probes the backend (imports it) and logs, in one line, what the slot will do."""
    from objectives.devices import backend_report

    report = backend_report()
    device = gpu_slot(report, name=name, memory_bytes=memory_bytes, allow_cpu=allow_cpu)
    where = f"CUDA_VISIBLE_DEVICES={report.get('cuda_visible_devices')!r}"
    if device.unavailable:
        log.error(
            "%s: %s; leasing no trials (install a GPU build: pip install 'tunesmith[gpu]'; "
            "or --allow-cpu to train on the CPU)",
            where,
            device.unavailable,
        )
    elif device.device == "cpu":
        log.warning(
            "%s: no usable GPU (%s); training on the CPU (--allow-cpu)", where, report.get("reason")
        )
    else:
        log.info("%s: %s on %s", where, device.backend, device.device)
    return device
