"""`tunesmith worker`: worker processes against a server, one per GPU or CPU slot.

The command supervises the processes (service.executors.local.LocalExecutor); each process
runs this module's `main` (`python -m service.cli.worker --slot ...`), which is one worker
loop. Only the client side is imported: a remote worker machine needs httpx, pydantic and
its trainers, not the server's stack.
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

from service.cli.common import gpu_list, setup_logging

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("worker", help="run worker processes against a server")
    p.add_argument("--server", help="server URL (default: TUNESMITH_URL)")
    p.add_argument("--token", help="worker token (default: TUNESMITH_TOKEN or the token file)")
    p.add_argument("--gpus", type=gpu_list, help="one worker per listed GPU, e.g. 0,1")
    p.add_argument("--cpu-workers", type=int, help="CPU worker processes")
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
    from service.client import default_token
    from service.executors.local import LocalExecutor, plan_slots

    setup_logging(os.environ.get("TUNESMITH_LOG_LEVEL", "info"))
    url = args.server or os.environ.get("TUNESMITH_URL") or "http://127.0.0.1:8000"
    token = args.token or os.environ.get("TUNESMITH_TOKEN") or default_token()
    executor = LocalExecutor(
        server=url,
        token=token,
        slots=plan_slots(gpus=args.gpus, cpu_workers=args.cpu_workers),
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
    parser.add_argument("--gpu")
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
    refuses its token (its supervisor then does not restart it)."""
    from service.worker import EXIT_REFUSED, Worker, WorkerOptions, WorkerRefused, default_worker_id

    args = _process_parser().parse_args(argv)
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
