"""The local executor: one worker process per GPU (pinned with CUDA_VISIBLE_DEVICES) or CPU slot.

Each process runs `service.worker.Worker`; CUDA_VISIBLE_DEVICES is set in its environment
before Python starts, so a trainer can only see its own GPU. The supervisor restarts a
process that dies (a segfaulting trainer, the OOM killer) unless it is shutting down.
"""

from __future__ import annotations

import argparse
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

from service.worker import EXIT_REFUSED, Worker, WorkerOptions, WorkerRefused, default_worker_id

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
            "service.executors.local",
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

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs.values()]

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


def _stop_when_orphaned(worker: Worker, poll_s: float = 1.0) -> None:
    """A worker process ends with its supervisor: if the supervisor dies (kill -9), the
    worker releases its trial at the next report and leaves instead of running unsupervised."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        log.warning("the supervisor (pid %s) is gone; stopping this worker", parent)
        worker.request_stop()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    """One worker process (started by LocalExecutor)."""
    parser = argparse.ArgumentParser(prog="python -m service.executors.local")
    parser.add_argument("--server", required=True)
    parser.add_argument("--slot", required=True)
    parser.add_argument("--gpu")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--artifact-root", type=Path, default=Path("tunesmith-worker-artifacts"))
    parser.add_argument("--max-trials", type=int)
    parser.add_argument("--idle-timeout", type=float)
    parser.add_argument("--objective", action="append", dest="objectives")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("TUNESMITH_LOG_LEVEL", "INFO").upper(),
        format=f"%(asctime)s %(levelname)s worker[{args.slot}] %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    worker = Worker(
        WorkerOptions(
            server=args.server,
            token=os.environ.get("TUNESMITH_TOKEN"),
            worker_id=default_worker_id(args.slot),
            gpu=args.gpu,
            threads=args.threads,
            artifact_root=args.artifact_root,
            max_trials=args.max_trials,
            idle_timeout=args.idle_timeout,
            objectives=args.objectives,
        )
    )
    # Under the supervisor a stop request may arrive twice (the process group's SIGTERM or
    # Ctrl-C, then the supervisor's own SIGTERM): each one only asks the loop to release its
    # trial and end; a worker that does not end is killed by the supervisor's timeout.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: worker.request_stop())
    signal.signal(signal.SIGINT, lambda _signum, _frame: worker.request_stop())
    _stop_when_orphaned(worker)
    try:
        worker.run()
    except WorkerRefused as exc:
        log.error("%s", exc)
        return EXIT_REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(main())
