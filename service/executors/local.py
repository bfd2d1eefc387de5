"""The local executor: one worker process per GPU (pinned with CUDA_VISIBLE_DEVICES) or CPU slot.

Each process runs one worker loop (`python -m service.cli.worker`), with CUDA_VISIBLE_DEVICES
set in its environment before Python starts, so a trainer can only see its own GPU. The
supervisor restarts a process that dies (a segfaulting trainer, the OOM killer) unless it is
shutting down.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from service.worker import EXIT_REFUSED

log = logging.getLogger(__name__)

RESTART_DELAY_S = 2.0


@dataclass(frozen=True)
class Slot:
    """Where one worker runs: a GPU index (as CUDA_VISIBLE_DEVICES sees it) or a CPU slot."""

    name: str
    gpu: str | None


def detect_gpus() -> list[str]:
    """GPU indices reported by nvidia-smi; empty without NVIDIA GPUs or driver."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def plan_slots(*, gpus: list[str] | None, cpu_workers: int | None) -> list[Slot]:
    """--gpus wins, then --workers N (CPU), then one per detected GPU, else CPU slots."""
    if gpus:
        return [Slot(f"gpu{g}", g) for g in gpus]
    if cpu_workers is not None:
        return [Slot(f"cpu{i}", None) for i in range(cpu_workers)]
    detected = detect_gpus()
    if detected:
        return [Slot(f"gpu{g}", g) for g in detected]
    return [Slot(f"cpu{i}", None) for i in range(max(1, (os.cpu_count() or 2) // 2))]


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
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _supervisor: threading.Thread | None = None

    def threads_per_worker(self) -> int:
        return max(1, (os.cpu_count() or 1) // max(len(self.slots), 1))

    def _spawn(self, slot: Slot) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["CUDA_VISIBLE_DEVICES"] = slot.gpu if slot.gpu is not None else ""
        threads = str(self.threads_per_worker())
        env.setdefault("OMP_NUM_THREADS", threads)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if self.token:
            env["TUNESMITH_TOKEN"] = self.token
        cmd = [
            sys.executable,
            "-m",
            "service.cli.worker",
            "--server",
            self.server,
            "--slot",
            slot.name,
            "--threads",
            threads,
            "--artifact-root",
            str(self.artifact_root),
        ]
        if slot.gpu is not None:
            cmd += ["--gpu", slot.gpu]
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
