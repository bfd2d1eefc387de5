"""`tunesmith doctor` (and `tunesmith worker --check`): what workers here would train on.

One screen: the Keras backend and its versions, CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER,
the GPUs nvidia-smi lists, the worker slots `tunesmith worker` would start with the same flags,
the devices the backend sees, and whether a GPU is usable (with the reason when not). The
backend is probed in this process (objectives.devices.backend_report), with the environment
as it is and CUDA_DEVICE_ORDER=PCI_BUS_ID as workers get it; Keras and its framework are
imported only when the command runs. Exit status 0 whatever it finds: it reports, it does
not judge.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from service.cli.common import gpu_flags

if TYPE_CHECKING:
    from service.executors.gpus import Gpu, GpuRequest
    from service.executors.local import Slot

WIDTH = 22


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("doctor", help="show the Keras backend, its devices and the GPU slots")
    gpu_flags(p)
    p.set_defaults(fn=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    print_report(gpus=args.gpus, cpu_workers=None, workers_per_gpu=args.workers_per_gpu)
    return 0


def print_report(*, gpus: GpuRequest | None, cpu_workers: int | None, workers_per_gpu: int) -> None:
    """Collects everything (runs nvidia-smi, probes the backend) and prints the screen."""
    from objectives.devices import backend_report
    from service.executors.gpus import GpuError, query_gpus
    from service.executors.local import plan_slots

    order = os.environ.get("CUDA_DEVICE_ORDER")
    try:
        slots: list[Slot] | str = plan_slots(
            gpus=gpus, cpu_workers=cpu_workers, workers_per_gpu=workers_per_gpu
        )
    except GpuError as exc:
        slots = f"none: {exc}"
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    report = backend_report()
    versions = [f"Keras {report['keras_version'] or '?'}"]
    if report["framework_version"]:
        versions.append(f"{report['keras_backend']} {report['framework_version']}")
    devices = [f"{d['name']} ({d['kind']}{_gib(d['memory_bytes'])})" for d in report["devices"]]
    lines = [
        _row("Keras backend", f"{report['keras_backend']} ({', '.join(versions)})"),
        _row("CUDA_VISIBLE_DEVICES", _quoted(os.environ.get("CUDA_VISIBLE_DEVICES"))),
        _row("CUDA_DEVICE_ORDER", f"{_quoted(order)} (workers get PCI_BUS_ID)"),
        *_nvidia(query_gpus()),
        *_slots(slots),
        *_listed("Backend devices", devices),
        _row("GPU usable", "yes" if report["gpu_usable"] else f"no ({report['reason']})"),
    ]
    if not report["gpu_usable"]:
        lines.append(_row("Hint", HINT))
    print("\n".join(lines))


HINT = (
    "a CUDA build: pip install 'tunesmith[gpu]'. Until a GPU is usable, workers on GPU slots\n"
    + " " * WIDTH
    + "lease no trials (they are listed with the reason), unless --allow-cpu."
)


def _row(label: str, value: str) -> str:
    return f"{label + ':':<{WIDTH}}{value}"


def _listed(label: str, items: Sequence[str]) -> list[str]:
    """The first item on the label's line, the others under it."""
    if not items:
        return [_row(label, "none")]
    return [_row(label, items[0]), *(" " * WIDTH + item for item in items[1:])]


def _quoted(value: str | None) -> str:
    return "not set" if value is None else repr(value)


def _gib(memory_bytes: int | None) -> str:
    return "" if memory_bytes is None else f", {memory_bytes / 2**30:.1f} GiB"


def _nvidia(gpus: Sequence[Gpu] | None) -> list[str]:
    if gpus is None:
        return [_row("nvidia-smi", "not found, or failing (no NVIDIA driver?)")]
    items = []
    for gpu in gpus:
        d = gpu.device
        items.append(f"{d.index}: {d.name}{_gib(d.memory_bytes)}, {d.uuid}")
        items += [f"   MIG {m.uuid}: {m.name}" for m in gpu.mig]
    return _listed("nvidia-smi GPUs", items)


def _slots(slots: list[Slot] | str) -> list[str]:
    if isinstance(slots, str):
        return [_row("Worker slots", slots)]
    cpu = [s.name for s in slots if s.pin is None]
    items = [
        f"{s.name}: CUDA_VISIBLE_DEVICES={s.pin.visible}"
        + (f" ({s.pin.name}{_gib(s.pin.memory_bytes)})" if s.pin.name else "")
        for s in slots
        if s.pin is not None
    ]
    if cpu:
        items.append(f"{', '.join(cpu)}: CPU")
    return _listed("Worker slots", items)
