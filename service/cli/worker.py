"""`tunesmith worker`: worker processes against a server, one per GPU or CPU slot.

The command supervises the processes (service.executors.local.LocalExecutor); each process
is one worker loop (`python -m service.cli.worker_process --slot ...`). Only the client side
is imported: a remote worker machine needs httpx, pydantic and its trainers, not the
server's stack. `tunesmith worker --check` prints `tunesmith doctor`'s screen for the same
flags instead of starting anything.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
from pathlib import Path

from service.cli.common import (
    CliError,
    gpu_flags,
    resolve_token,
    setup_logging,
    token_flags,
    url_source,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("worker", help="run worker processes against a server")
    p.add_argument(
        "--server", help="server URL (default: TUNESMITH_URL, else http://127.0.0.1:8000)"
    )
    token_flags(p)
    gpu_flags(p)
    p.add_argument(
        "--cpu-workers",
        type=int,
        help="CPU worker processes (default: a worker per GPU; with no GPU, one per two cores)",
    )
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
    p.add_argument(
        "--max-trials", type=int, help="exit after this many trials (each worker; default: never)"
    )
    p.add_argument(
        "--idle-timeout", type=float, help="exit after this many idle seconds (default: never)"
    )
    p.add_argument(
        "--objective",
        action="append",
        dest="objectives",
        metavar="NAME",
        help="train only this objective (repeat for several; default: every one installed)",
    )
    p.add_argument(
        "--artifact-root",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tunesmith-worker-artifacts",
        help="where trainers write their files before they are uploaded",
    )
    p.set_defaults(fn=cmd_worker)


def cmd_worker(args: argparse.Namespace) -> int:
    if args.check:
        from service.cli.doctor import print_report

        print_report(
            gpus=args.gpus, cpu_workers=args.cpu_workers, workers_per_gpu=args.workers_per_gpu
        )
        return 0
    from service.client import DEFAULT_URL, InvalidUrl, normalise_url
    from service.executors.local import LocalExecutor, plan_slots

    setup_logging(os.environ.get("TUNESMITH_LOG_LEVEL", "info"))
    slots = plan_slots(
        gpus=args.gpus, cpu_workers=args.cpu_workers, workers_per_gpu=args.workers_per_gpu
    )
    try:
        url = normalise_url(args.server or os.environ.get("TUNESMITH_URL") or DEFAULT_URL)
    except InvalidUrl as exc:
        raise CliError(f"{url_source(args)} {exc}") from None
    token, _ = resolve_token(args, url)
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
