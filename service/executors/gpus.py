"""Which GPUs this machine's workers get: nvidia-smi's devices, CUDA_VISIBLE_DEVICES, --gpus.

Rules:
- The devices are those nvidia-smi lists (`--query-gpu=index,uuid,name,memory.total,
  mig.mode.current`; `-L` for the MIG instances of a GPU in MIG mode). nvidia-smi numbers
  GPUs in PCI bus order, and every worker gets CUDA_DEVICE_ORDER=PCI_BUS_ID, so an index
  means the same GPU to nvidia-smi, to tunesmith and to the worker's framework.
- A selector (an entry of CUDA_VISIBLE_DEVICES or of --gpus) is an index ("2"), a GPU UUID
  ("GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77") or a MIG UUID ("MIG-...", also the older
  "MIG-GPU-<uuid>/<gi>/<ci>"). Anything else is an error that quotes it.
- A GPU in MIG mode stands for its MIG instances: one worker each, pinned by its MIG UUID
  (CUDA addresses MIG instances by UUID only).
- CUDA_VISIBLE_DEVICES, when set, is the allocation a scheduler (SLURM, Kubernetes, a user)
  gave this process: only its GPUs are used, in its order. Set but empty, "-1" or
  "NoDevFiles": no GPU.
- --gpus picks among the allowed GPUs: a GPU outside CUDA_VISIBLE_DEVICES, one nvidia-smi
  does not list, or one listed twice is an error. "all", like no --gpus, takes every allowed
  GPU.
- A worker is pinned as its selector was written (an index by its index, a UUID by its
  UUID), except that a GPU in MIG mode pins each of its instances by MIG UUID.
- Without nvidia-smi nothing can be checked: selectors are used as written, the GPUs are
  CUDA_VISIBLE_DEVICES's entries when it is set, and there are none otherwise.
"""

from __future__ import annotations

import csv
import logging
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from service.errors import TunesmithError

log = logging.getLogger(__name__)

ALL: Literal["all"] = "all"
GpuRequest = Sequence[str] | Literal["all"]
"""--gpus: the selectors listed, or every allowed GPU."""

QUERY = "--query-gpu=index,uuid,name,memory.total,mig.mode.current"
NO_GPU = {"", "-1", "NoDevFiles"}
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
SELECTOR = re.compile(rf"\d+|GPU-{_UUID}|MIG-{_UUID}|MIG-GPU-{_UUID}/\d+/\d+")
_GPU_LINE = re.compile(rf"^GPU (\d+): .*\(UUID: (GPU-{_UUID})\)")
_MIG_LINE = re.compile(r"^\s+MIG (\S+)\s+Device\s+(\d+): \(UUID: (MIG-\S+?)\)")
_TIMEOUT_S = 10


class GpuError(TunesmithError):
    """A GPU selection that cannot be honoured; the message quotes the value at fault."""


@dataclass(frozen=True)
class Device:
    """A device a worker can be pinned to: a whole GPU or one MIG instance of a GPU."""

    index: str
    """nvidia-smi's index of the GPU (of its parent GPU, for a MIG instance)."""
    uuid: str
    name: str
    memory_bytes: int | None = None


@dataclass(frozen=True)
class Gpu:
    """A GPU as nvidia-smi lists it, with its MIG instances when it is in MIG mode."""

    device: Device
    mig: tuple[Device, ...] = ()


@dataclass(frozen=True)
class Pin:
    """One GPU worker's device: `visible` is its CUDA_VISIBLE_DEVICES. Two pins with the same
    `key` are the same device. `label` ("2"; "1m0" for GPU 1's first MIG instance), `name` and
    `memory_bytes` come from nvidia-smi (None without it)."""

    visible: str
    key: str
    label: str | None = None
    name: str | None = None
    memory_bytes: int | None = None


# ---- parsing ------------------------------------------------------------------------------


def parse_selectors(text: str) -> list[str]:
    """Comma-separated selectors (see the module rules); ValueError quotes a bad one."""
    entries = [e.strip() for e in text.split(",")]
    for entry in entries:
        if not SELECTOR.fullmatch(entry):
            raise ValueError(
                f"{entry!r} is not a GPU index, a GPU-<uuid> or a MIG-<uuid> (in {text!r})"
            )
    return entries


def visible_devices(environ: Mapping[str, str]) -> list[str] | None:
    """CUDA_VISIBLE_DEVICES's selectors; None when it is unset, [] when it hides every GPU."""
    text = environ.get("CUDA_VISIBLE_DEVICES")
    if text is None:
        return None
    if text.strip() in NO_GPU:
        return []
    try:
        return parse_selectors(text)
    except ValueError as exc:
        raise GpuError(f"CUDA_VISIBLE_DEVICES: {exc}") from None


def parse_query(text: str) -> list[Device]:
    """The GPUs of `nvidia-smi --query-gpu=index,uuid,name,memory.total,... --format=csv,
    noheader,nounits` (memory in MiB; "[N/A]" reads as unknown)."""
    devices = []
    for row in csv.reader(text.splitlines(), skipinitialspace=True):
        if len(row) < 4:
            continue
        index, uuid, name, memory = (cell.strip() for cell in row[:4])
        mib = memory.split()[0] if memory else ""
        devices.append(Device(index, uuid, name, int(mib) * 2**20 if mib.isdigit() else None))
    return devices


def mig_enabled(text: str) -> set[str]:
    """Indices of the GPUs whose mig.mode.current (5th column of the query) is Enabled."""
    rows = csv.reader(text.splitlines(), skipinitialspace=True)
    return {row[0].strip() for row in rows if len(row) >= 5 and row[4].strip() == "Enabled"}


def parse_listing(text: str) -> dict[str, tuple[Device, ...]]:
    """MIG instances by GPU index, from `nvidia-smi -L`: a line per GPU
    ("GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-...)"), indented lines for its MIG instances
    ("  MIG 3g.20gb     Device  0: (UUID: MIG-...)")."""
    found: dict[str, list[Device]] = {}
    gpu: tuple[str, str] | None = None
    for line in text.splitlines():
        if m := _GPU_LINE.match(line):
            gpu = (m.group(1), line.split(":", 1)[1].split("(UUID")[0].strip())
            found.setdefault(gpu[0], [])
        elif (m := _MIG_LINE.match(line)) and gpu is not None:
            profile, _number, uuid = m.groups()
            found[gpu[0]].append(Device(gpu[0], uuid, f"{gpu[1]} MIG {profile}"))
    return {index: tuple(devices) for index, devices in found.items()}


# ---- discovery ------------------------------------------------------------------------------


def _nvidia_smi(exe: str, *args: str) -> str | None:
    try:
        return subprocess.run(
            [exe, *args], capture_output=True, text=True, timeout=_TIMEOUT_S, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("nvidia-smi %s failed: %s", " ".join(args), exc)
        return None


def query_gpus() -> list[Gpu] | None:
    """The GPUs nvidia-smi lists (whatever CUDA_VISIBLE_DEVICES says); None without
    nvidia-smi or when it fails (no driver)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    text = _nvidia_smi(exe, QUERY, "--format=csv,noheader,nounits")
    if text is None:
        return None
    in_mig = mig_enabled(text)
    listing = _nvidia_smi(exe, "-L") if in_mig else None
    instances = parse_listing(listing) if listing else {}
    return [
        Gpu(d, instances.get(d.index, ()) if d.index in in_mig else ()) for d in parse_query(text)
    ]


# ---- choosing -------------------------------------------------------------------------------


def _pins(gpu: Gpu, visible: str) -> list[Pin]:
    """A GPU's pins: the GPU itself, pinned as `visible`; in MIG mode, its instances."""
    if gpu.mig:
        return [_instance(gpu, k) for k in range(len(gpu.mig))]
    d = gpu.device
    return [Pin(visible, d.uuid.lower(), d.index, d.name, d.memory_bytes)]


def _instance(gpu: Gpu, k: int) -> Pin:
    m = gpu.mig[k]
    return Pin(m.uuid, m.uuid.lower(), f"{gpu.device.index}m{k}", m.name, m.memory_bytes)


def resolve(selector: str, gpus: Sequence[Gpu], *, what: str) -> list[Pin]:
    """The devices `selector` names among `gpus` (a GPU in MIG mode: its instances)."""
    wanted = selector.lower()
    for gpu in gpus:
        if wanted in (gpu.device.index, gpu.device.uuid.lower()):
            return _pins(gpu, selector)
        for k, instance in enumerate(gpu.mig):
            if wanted == instance.uuid.lower():
                return [_instance(gpu, k)]
        if wanted.startswith("mig-gpu-") and wanted[4:].split("/")[0] == gpu.device.uuid.lower():
            return [Pin(selector, wanted, None, f"{gpu.device.name} MIG")]
    listed = ", ".join(f"{g.device.index} ({g.device.uuid})" for g in gpus) or "none"
    raise GpuError(f"{what}: no GPU {selector!r} on this machine (nvidia-smi lists {listed})")


def allowed_pins(visible: list[str] | None, gpus: Sequence[Gpu] | None) -> list[Pin]:
    """Every device workers may use, in order: CUDA_VISIBLE_DEVICES's when it is set (as
    `visible_devices` parsed it), else every device nvidia-smi lists."""
    if visible is None:
        return [pin for gpu in gpus or () for pin in _pins(gpu, gpu.device.index)]
    if gpus is None:
        return [Pin(s, s.lower()) for s in visible]
    return [p for s in visible for p in resolve(s, gpus, what="CUDA_VISIBLE_DEVICES")]


def choose_pins(
    request: GpuRequest | None, *, visible: list[str] | None, gpus: Sequence[Gpu] | None
) -> list[Pin]:
    """The devices to start workers on (see the module rules). `request` is --gpus (None:
    not given), `visible` CUDA_VISIBLE_DEVICES (`visible_devices`), `gpus` nvidia-smi's
    (`query_gpus`; None without it)."""
    allowed = allowed_pins(visible, gpus)
    if request is None:
        return allowed
    if request == ALL:
        if not allowed:
            raise GpuError(f"--gpus all: no GPU found ({_why_none(visible, gpus)})")
        return allowed
    allowed_keys = {p.key for p in allowed}
    chosen: list[Pin] = []
    for selector in request:
        pins = (
            [Pin(selector, selector.lower())]
            if gpus is None
            else resolve(selector, gpus, what="--gpus")
        )
        for pin in pins:
            if visible is not None and pin.key not in allowed_keys:
                raise GpuError(
                    f"--gpus: GPU {selector!r} is outside CUDA_VISIBLE_DEVICES="
                    f"{','.join(visible)!r}, the GPUs this process was given"
                )
            if any(pin.key == c.key for c in chosen):
                raise GpuError(f"--gpus: GPU {selector!r} is listed twice")
            chosen.append(pin)
    return chosen


def _why_none(visible: list[str] | None, gpus: Sequence[Gpu] | None) -> str:
    if visible == []:
        return "CUDA_VISIBLE_DEVICES hides every GPU"
    return "nvidia-smi is not installed or fails" if gpus is None else "nvidia-smi lists none"
