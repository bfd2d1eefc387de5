"""The local executor: one worker process per GPU slot (pinned with CUDA_VISIBLE_DEVICES) or
CPU slot.

Each process runs one worker loop (`python -m service.cli.worker_process`), with
CUDA_VISIBLE_DEVICES (its GPU, or "" on a CPU slot) and CUDA_DEVICE_ORDER=PCI_BUS_ID set in
its environment before Python starts, so a trainer can only see its own GPU, numbered as
nvidia-smi numbers it; TensorFlow's C++ logging is quiet there unless the user set it
(`service.worker.quiet_framework_logs`). Which
GPUs get workers is `service.executors.gpus`'s business. The supervisor restarts a process that
dies (a segfaulting trainer, the OOM killer) unless it is shutting down.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from service.executors.gpus import GpuError, GpuRequest, Pin, choose_pins, query_gpus
from service.executors.gpus import visible_devices as parse_visible
from service.worker import EXIT_REFUSED, quiet_framework_logs

log = logging.getLogger(__name__)

RESTART_DELAY_S = 2.0
_NOT_IN_ID = re.compile(r"[^A-Za-z0-9_.:@-]")


@dataclass(frozen=True)
class Slot:
    """Where one worker runs: a GPU (`pin`) or, with no pin, a CPU slot. `name` is unique
    among the slots and part of the worker's id."""

    name: str
    pin: Pin | None = None

    @property
    def gpu(self) -> str | None:
        """The worker's CUDA_VISIBLE_DEVICES (None on a CPU slot)."""
        return self.pin.visible if self.pin is not None else None


def _gpu_slots(pins: list[Pin], per_gpu: int) -> list[Slot]:
    slots = []
    for pin in pins:
        base = "gpu" + (pin.label or _NOT_IN_ID.sub("_", pin.visible))
        names = [base] if per_gpu == 1 else [f"{base}-w{k}" for k in range(per_gpu)]
        slots += [Slot(name, pin) for name in names]
    return slots


def plan_slots(
    *,
    gpus: GpuRequest | None,
    cpu_workers: int | None,
    workers_per_gpu: int = 1,
    environ: Mapping[str, str] = os.environ,
) -> list[Slot]:
    """--gpus wins, then --workers N (CPU), then one per allowed GPU, else CPU slots (one per
    two cores). `workers_per_gpu` workers share each GPU. Which GPUs are allowed and what
    --gpus may name: service.executors.gpus; raises GpuError (quoting the value at fault)."""
    if workers_per_gpu < 1:
        raise GpuError(f"--workers-per-gpu must be at least 1; got {workers_per_gpu}")
    if gpus is None and cpu_workers is not None:
        return [Slot(f"cpu{i}") for i in range(cpu_workers)]
    pins = choose_pins(gpus, visible=parse_visible(environ), gpus=query_gpus())
    if pins:
        return _gpu_slots(pins, workers_per_gpu)
    return [Slot(f"cpu{i}") for i in range(max(1, (os.cpu_count() or 2) // 2))]


@dataclass
class LocalExecutor:
    server: str
    token: str | None
    slots: list[Slot]
    artifact_root: Path = Path("tunesmith-worker-artifacts")
    max_trials: int | None = None
    idle_timeout: float | None = None
    objectives: list[str] | None = None
    restart: bool = True
    allow_cpu: bool = False
    """GPU slots whose framework sees no GPU lease trials anyway (on the CPU)."""
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _supervisor: threading.Thread | None = None

    def threads_per_worker(self) -> int:
        return max(1, (os.cpu_count() or 1) // max(len(self.slots), 1))

    def _spawn(self, slot: Slot) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["CUDA_VISIBLE_DEVICES"] = slot.gpu if slot.gpu is not None else ""
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        threads = str(self.threads_per_worker())
        env.setdefault("OMP_NUM_THREADS", threads)
        quiet_framework_logs(env)
        if self.token:
            env["TUNESMITH_TOKEN"] = self.token
        cmd = [
            sys.executable,
            "-m",
            "service.cli.worker_process",
            "--server",
            self.server,
            "--slot",
            slot.name,
            "--threads",
            threads,
            "--artifact-root",
            str(self.artifact_root),
        ]
        if slot.pin is not None:
            cmd += ["--gpu", slot.pin.visible]
            if slot.pin.name:
                cmd += ["--gpu-name", slot.pin.name]
            if slot.pin.memory_bytes is not None:
                cmd += ["--gpu-memory-bytes", str(slot.pin.memory_bytes)]
            if self.allow_cpu:
                cmd.append("--allow-cpu")
        if self.max_trials is not None:
            cmd += ["--max-trials", str(self.max_trials)]
        if self.idle_timeout is not None:
            cmd += ["--idle-timeout", str(self.idle_timeout)]
        for name in self.objectives or []:
            cmd += ["--objective", name]
        proc = subprocess.Popen(cmd, env=env)
        log.info(
            "started worker %s (pid %s, CUDA_VISIBLE_DEVICES=%r)",
            slot.name,
            proc.pid,
            env["CUDA_VISIBLE_DEVICES"],
        )
        return proc

    def start(self) -> None:
        for slot in self.slots:
            self._procs[slot.name] = self._spawn(slot)
        if self.restart:
            self._supervisor = threading.Thread(
                target=self._supervise, name="supervisor", daemon=True
            )
            self._supervisor.start()

    def _supervise(self) -> None:
        by_name = {s.name: s for s in self.slots}
        while not self._stopping.wait(RESTART_DELAY_S):
            for name, proc in list(self._procs.items()):
                code = proc.poll()
                if code is None or code == 0 or self._stopping.is_set():
                    continue
                if code == EXIT_REFUSED:
                    log.error("worker %s: the server refused its token; not restarting it", name)
                    del self._procs[name]
                    continue
                log.warning("worker %s exited with %s; restarting it", name, code)
                self._procs[name] = self._spawn(by_name[name])

    def wait(self) -> int:
        """Blocks until every worker has exited for good; returns the first non-zero exit code
        or 0. A worker that died and is being restarted is waited for in its new process."""
        while True:
            codes = [proc.poll() for proc in list(self._procs.values())]
            if all(code is not None for code in codes):
                restarting = (
                    self._supervisor is not None
                    and not self._stopping.is_set()
                    and any(code != 0 for code in codes)
                )
                if not restarting:
                    return next((c for c in codes if c), 0)
            time.sleep(0.2)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every worker (each releases its trial), then SIGKILL those still alive."""
        self._stopping.set()
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self._procs.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
