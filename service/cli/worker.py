"""`tunesmith worker`: worker processes against a server, one per GPU or CPU slot.

The command supervises the processes (service.executors.local.LocalExecutor); each process
runs this module's `main` (`python -m service.cli.worker --slot ...`), which is one worker
loop. Only the client side is imported: a remote worker machine needs httpx, pydantic and
its trainers, not the server's stack. A GPU worker process probes its Keras backend before
its loop starts (service.device); `tunesmith worker --check` prints `tunesmith doctor`'s
screen for the same flags instead of starting anything.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from service.cli.common import gpu_flags, setup_logging

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("worker", help="run worker processes against a server")
    p.add_argument("--server", help="server URL (default: TUNESMITH_URL)")
    p.add_argument("--token", help="worker token (default: TUNESMITH_TOKEN or the token file)")
    gpu_flags(p)
    p.add_argument("--cpu-workers", type=int, help="CPU worker processes")
    p.add_argument(
        "--allow-cpu",
        action="store_true",
        help="let GPU workers whose backend sees no GPU train on the CPU (default: they wait)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="print the backend, its devices and the worker slots (as `tunesmith doctor`); exit",
    )
    p.add_argument("--max-trials", type=int, help="exit after this many trials (each worker)")
    p.add_argument("--idle-timeout", type=float, help="exit after this many idle seconds")
    p.add_argument("--objective", action="append", dest="objectives", help="only these objectives")
    p.add_argument(
        "--artifact-root",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tunesmith-worker-artifacts",
    )
    p.set_defaults(fn=cmd_worker)


def cmd_worker(args: argparse.Namespace) -> int:
    if args.check:
        from service.cli.doctor import print_report

        print_report(
            gpus=args.gpus, cpu_workers=args.cpu_workers, workers_per_gpu=args.workers_per_gpu
        )
        return 0
    from service.client import default_token
    from service.executors.local import LocalExecutor, plan_slots

    setup_logging(os.environ.get("TUNESMITH_LOG_LEVEL", "info"))
    url = args.server or os.environ.get("TUNESMITH_URL") or "http://127.0.0.1:8000"
    token = args.token or default_token(url)
    slots = plan_slots(
        gpus=args.gpus, cpu_workers=args.cpu_workers, workers_per_gpu=args.workers_per_gpu
    )
    executor = LocalExecutor(
        server=url,
        token=token,
        slots=slots,
        allow_cpu=args.allow_cpu,
        artifact_root=args.artifact_root,
        max_trials=args.max_trials,
        idle_timeout=args.idle_timeout,
        objectives=args.objectives,
        restart=args.max_trials is None and args.idle_timeout is None,
    )

    def terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM to this process alone (`docker stop`, `kill PID`) must stop the workers too,
    # not leave them running without their supervisor.
    signal.signal(signal.SIGTERM, terminate)
    executor.start()
    try:
        return executor.wait()
    except KeyboardInterrupt:
        executor.stop()
        return 130


# ---- one worker process ------------------------------------------------------------------


def _process_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service.cli.worker",
        description="One worker loop (started by a supervisor).",
    )
    parser.add_argument("--server", required=True)
    parser.add_argument("--slot", required=True)
    parser.add_argument("--gpu", help="the GPU pinned in CUDA_VISIBLE_DEVICES: probe it first")
    parser.add_argument("--gpu-name", help="its name, as nvidia-smi lists it")
    parser.add_argument("--gpu-memory-bytes", type=int, help="its memory, as nvidia-smi lists it")
    parser.add_argument("--allow-cpu", action="store_true", help="lease even without a GPU")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--artifact-root", type=Path, default=Path("tunesmith-worker-artifacts"))
    parser.add_argument("--max-trials", type=int)
    parser.add_argument("--idle-timeout", type=float)
    parser.add_argument("--objective", action="append", dest="objectives")
    return parser


def _stop_when_orphaned(request_stop: Callable[[], None], poll_s: float = 1.0) -> None:
    """A worker process ends with its supervisor: if the supervisor dies (kill -9), the
    worker releases its trial at the next report and leaves instead of running unsupervised."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        log.warning("the supervisor (pid %s) is gone; stopping this worker", parent)
        request_stop()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    """One worker process: the loop until stopped; exit status EXIT_REFUSED when the server
    refuses its token (its supervisor then does not restart it). A GPU slot probes its
    backend first (which imports it); a CPU slot does not (service.device)."""
    from service.device import cpu_slot, probe_gpu_slot
    from service.worker import EXIT_REFUSED, Worker, WorkerOptions, WorkerRefused, default_worker_id

    args = _process_parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("TUNESMITH_LOG_LEVEL", "INFO").upper(),
        format=f"%(asctime)s %(levelname)s worker[{args.slot}] %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.gpu is None:
        device = cpu_slot()
    else:
        device = probe_gpu_slot(
            name=args.gpu_name, memory_bytes=args.gpu_memory_bytes, allow_cpu=args.allow_cpu
        )
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
            device=device,
        )
    )
    # SIGTERM or a first Ctrl-C: release the running trial and end (a supervisor and the
    # process group may both send one; repeating it changes nothing). A second Ctrl-C exits
    # at once.
    worker.install_signal_handlers()
    _stop_when_orphaned(worker.request_stop)
    try:
        worker.run()
    except WorkerRefused as exc:
        log.error("%s", exc)
        return EXIT_REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(main())
