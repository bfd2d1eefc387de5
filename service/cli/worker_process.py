"""One worker process: `python -m service.cli.worker_process --server URL --slot NAME ...`,
started by a supervisor (service.executors.local.LocalExecutor) with CUDA_VISIBLE_DEVICES,
the token (TUNESMITH_TOKEN) and quiet framework logging (`service.worker.quiet_framework_logs`)
in its environment. A GPU slot probes its Keras backend before the loop starts
(service.device); a CPU slot does not.

A module of its own, not `tunesmith worker`'s: `python -m` runs a module that its package's
`__init__` has not imported already (service.cli imports every command's module).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def _process_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service.cli.worker_process",
        description="One worker loop (started by a supervisor; the token in TUNESMITH_TOKEN).",
    )
    parser.add_argument("--server", required=True, help="the server's URL")
    parser.add_argument("--slot", required=True, help="the slot's name, part of the worker id")
    parser.add_argument("--gpu", help="the GPU pinned in CUDA_VISIBLE_DEVICES: probe it first")
    parser.add_argument("--gpu-name", help="its name, as nvidia-smi lists it")
    parser.add_argument("--gpu-memory-bytes", type=int, help="its memory, as nvidia-smi lists it")
    parser.add_argument("--allow-cpu", action="store_true", help="lease even without a GPU")
    parser.add_argument("--threads", type=int, help="CPU threads a trainer may use")
    parser.add_argument(
        "--artifact-root",
        type=Path,
        default=Path("tunesmith-worker-artifacts"),
        help="where trainers write their files before they are uploaded",
    )
    parser.add_argument("--max-trials", type=int, help="exit after this many trials")
    parser.add_argument("--idle-timeout", type=float, help="exit after this many idle seconds")
    parser.add_argument(
        "--objective", action="append", dest="objectives", help="train only these objectives"
    )
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
    from service.worker import quiet_framework_logs

    # Before any framework is imported, for a process not started by an executor.
    quiet_framework_logs(os.environ)
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
