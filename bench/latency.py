"""Lease/complete round-trip latency of a real server, on SQLite and on PostgreSQL.

For each backend this starts `tunesmith serve --workers 0` on a fresh database, creates a
`branin` study (seconds=0, random strategy) and runs N worker processes that each loop
lease -> complete through `service.client.Client`, timing every call with
time.perf_counter. It prints p50/p99 of lease, complete and the whole round trip, and writes
the table with the exact command to bench/results/latency.md.

    python bench/latency.py                       # 4 processes x 200 round trips, both backends
    python bench/latency.py --quick               # 4 x 50
    python bench/latency.py --backends sqlite     # PostgreSQL skipped
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from servers import branin, fresh_database, running_server

from service.client import Client

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latency.md"
ADMIN_TOKEN = "bench-latency-token"
WARMUP = 5


def worker_loop(
    url: str, worker_id: str, iterations: int, out: mp.Queue[list[tuple[float, float]]]
) -> None:
    """One worker process: lease -> complete, `iterations` times; sends (lease, complete) s."""
    timings: list[tuple[float, float]] = []
    with Client(url, ADMIN_TOKEN, retry_seconds=0) as client:
        for _ in range(iterations):
            t0 = time.perf_counter()
            lease = client.lease(worker_id, {"host": "bench", "pid": os.getpid()})
            t1 = time.perf_counter()
            if lease is None:
                break
            value = branin(lease.trial.params["x1"], lease.trial.params["x2"])
            t2 = time.perf_counter()
            client.complete(lease.trial, value)
            t3 = time.perf_counter()
            timings.append((t1 - t0, t3 - t2))
    out.put(timings)


def run_backend(backend: str, procs: int, iterations: int) -> dict[str, np.ndarray]:
    with (
        tempfile.TemporaryDirectory(prefix=f"tunesmith-latency-{backend}-") as tmp,
        fresh_database(backend, Path(tmp)) as db_url,
        running_server(db_url, Path(tmp), ADMIN_TOKEN) as url,
    ):
        with Client(url, ADMIN_TOKEN) as client:
            client.create_study(
                {
                    "name": "latency",
                    "objective": "branin",
                    "objective_args": {"seconds": 0},
                    "strategy": {"name": "random"},
                    "budget": {"max_trials": procs * iterations, "max_parallel": procs},
                    "seed": 0,
                }
            )
        ctx = mp.get_context("spawn")
        queue: mp.Queue[list[tuple[float, float]]] = ctx.Queue()
        workers = [
            ctx.Process(target=worker_loop, args=(url, f"bench-{i}", iterations, queue))
            for i in range(procs)
        ]
        started = time.perf_counter()
        for w in workers:
            w.start()
        results = [queue.get(timeout=600) for _ in workers]
        elapsed = time.perf_counter() - started
        for w in workers:
            w.join()
    kept = [t for per_proc in results for t in per_proc[WARMUP:]]
    lease = np.array([t[0] for t in kept]) * 1000
    complete = np.array([t[1] for t in kept]) * 1000
    done = sum(len(r) for r in results)
    print(f"{backend}: {done} round trips by {procs} processes in {elapsed:.1f} s", flush=True)
    return {
        "lease": lease,
        "complete": complete,
        "round trip": lease + complete,
        "throughput": np.array([done / elapsed]),
    }


def table(results: dict[str, dict[str, np.ndarray]], procs: int) -> str:
    lines = [
        f"| backend | call ({procs} processes) | n | p50 ms | p99 ms | mean ms |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for backend, res in results.items():
        for name in ("lease", "complete", "round trip"):
            ms = res[name]
            lines.append(
                f"| {backend} | {name} | {len(ms)} | {np.percentile(ms, 50):.1f} | "
                f"{np.percentile(ms, 99):.1f} | {ms.mean():.1f} |"
            )
    lines.append("")
    for backend, res in results.items():
        lines.append(f"- {backend}: {res['throughput'][0]:.0f} trials/s leased and completed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=200, help="round trips per process")
    parser.add_argument("--quick", action="store_true", help="50 round trips per process")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--no-write", action="store_true", help="do not write results/latency.md")
    args = parser.parse_args(argv)
    iterations = 50 if args.quick else args.iterations
    load_before = os.getloadavg()[0]
    results: dict[str, dict[str, np.ndarray]] = {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        try:
            results[backend] = run_backend(backend, args.procs, iterations)
        except Exception as exc:
            if backend == "sqlite":
                raise
            print(f"{backend}: skipped ({type(exc).__name__}: {exc})", file=sys.stderr)
    text = table(results, args.procs)
    print(text)
    if not args.no_write:
        command = "python bench/latency.py " + shlex.join(sys.argv[1:] if argv is None else argv)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            "# Lease/complete latency\n\n"
            f"Command: `{command.strip()}`\n\n"
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
            f"({os.cpu_count()} CPUs, load average {load_before:.1f} at the start, Python "
            f"{platform.python_version()}); a real "
            "`tunesmith serve --workers 0` per backend, a `branin` study (seconds=0, random "
            f"strategy), {args.procs} worker processes each looping lease -> complete through "
            "`service.client.Client`, every call timed with time.perf_counter; the first "
            f"{WARMUP} round trips of each process are left out.\n\n{text}\n"
        )
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
