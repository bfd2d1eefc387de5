"""Service throughput: tunesmith against Optuna's RDB storage, on SQLite and PostgreSQL.

For each backend and each number of worker processes N (1, 4, 16):
- tunesmith: a real `tunesmith serve --workers 0` on a fresh database, one study (random
  strategy, branin with seconds=0), and N bench worker processes, each a loop of
  `Client.lease` -> branin -> `Client.complete` that times both calls (the worker side of
  the protocol, without the heartbeat thread of the full worker);
- Optuna: N processes on another fresh database of the same backend, each running
  `study.optimize` (RandomSampler) on the same branin through `RDBStorage`.
All processes start together on a barrier; trials per second = trials / (last finish -
start). A fresh PostgreSQL database (CREATE DATABASE / DROP DATABASE ... WITH (FORCE)) or
SQLite file is used for every run.

Busy share: 4 real worker processes (`tunesmith worker --cpu-workers 4`) on a GP study of
branin with seconds=1. Two measures: the server's `busy_fraction` (GET /api/v1/workers,
read as the study finishes) and the stricter objective share = 1 s x trials done / (first
lease -> own last finish), which also counts the lease (suggestion), report and complete
round trips as idle.

    python bench/throughput.py --quick      # 1/4/16 workers, 150 trials per run
    python bench/throughput.py              # 1000 trials per run
    python bench/throughput.py --profile    # cProfile of lease + complete in-process

The table goes to bench/results/throughput.md with the command that produced it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import logging
import math
import multiprocessing as mp
import os
import platform
import pstats
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servers import branin, fresh_database, pg_available, running_server

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "throughput.md"
TOKEN = "bench-admin-token"
BUSY_SECONDS = 1.0
MAX_OPTUNA_ERRORS = 50

log = logging.getLogger("bench.throughput")


# ---- worker processes -------------------------------------------------------------------------


def _tunesmith_worker(url: str, index: int, piggyback: bool, barrier: Any, out: Any) -> None:
    """With `piggyback`, each value rides on the next lease request, as `tunesmith worker`
    sends it (the lease latency then includes recording the previous result)."""
    from service.client import Client

    client = Client(url, TOKEN, retry_seconds=30)
    leases: list[float] = []
    completes: list[float] = []
    done: Any = None
    info = {"host": "bench", "pid": os.getpid()}
    barrier.wait()
    while True:
        t0 = time.perf_counter()
        lease = client.lease(f"bench-{index}", info, complete=done)
        t1 = time.perf_counter()
        if lease is None:
            break
        leases.append(t1 - t0)
        value = branin(float(lease.trial.params["x1"]), float(lease.trial.params["x2"]))
        if piggyback:
            done = (lease.trial, value)
            continue
        t2 = time.perf_counter()
        client.complete(lease.trial, value)
        completes.append(time.perf_counter() - t2)
    client.close()
    out.put({"lease": leases, "complete": completes, "end": time.time()})


def _optuna_worker(
    url: str, study_name: str, n_trials: int, index: int, barrier: Any, out: Any
) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(url)
    study = optuna.load_study(
        study_name=study_name,
        storage=storage,
        sampler=optuna.samplers.RandomSampler(seed=index),
    )

    def objective(trial: optuna.Trial) -> float:
        return branin(trial.suggest_float("x1", -5.0, 10.0), trial.suggest_float("x2", 0.0, 15.0))

    done = 0
    errors = 0

    def count(_study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        nonlocal done
        done += 1

    barrier.wait()
    while done < n_trials and errors <= MAX_OPTUNA_ERRORS:
        try:
            study.optimize(objective, n_trials=n_trials - done, callbacks=[count])
        except Exception as exc:  # e.g. "database is locked" on SQLite: count it, go on
            errors += 1
            log.warning("optuna worker %s: %s", index, exc)
    out.put({"lease": [], "complete": [], "end": time.time(), "errors": errors})


def _run_processes(
    target: Any, args_for: list[tuple[Any, ...]]
) -> tuple[float, list[dict[str, Any]]]:
    """Starts one process per args tuple, releases them together; returns (start, results)."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(args_for) + 1)
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, barrier, out)) for a in args_for]
    for p in procs:
        p.start()
    barrier.wait(timeout=300)
    start = time.time()
    results = [out.get(timeout=900) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return start, results


# ---- runs -------------------------------------------------------------------------------------


@dataclass
class Row:
    system: str
    backend: str
    workers: int
    trials: int
    seconds: float
    lease_ms: list[float] = field(default_factory=list)
    complete_ms: list[float] = field(default_factory=list)
    errors: int = 0
    http_workers: int = 0
    piggyback: bool = False

    @property
    def label(self) -> str:
        if self.system != "tunesmith":
            return self.system
        return f"tunesmith {'1 call' if self.piggyback else '2 calls'}"

    @property
    def per_second(self) -> float:
        return self.trials / self.seconds

    @staticmethod
    def pct(values: list[float], q: float) -> str:
        if not values:
            return "-"
        ordered = sorted(values)
        return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))]:.1f}"


def run_tunesmith(
    backend: str, workers: int, trials: int, workdir: Path, http_workers: int, piggyback: bool
) -> Row:
    from service.client import Client

    with (
        fresh_database(backend, workdir) as url,
        running_server(url, workdir, TOKEN, http_workers) as server,
    ):
        with Client(server, TOKEN) as client:
            study = client.create_study(
                {
                    "name": "throughput",
                    "objective": "branin",
                    "objective_args": {"seconds": 0},
                    "strategy": {"name": "random", "seed": 0},
                    "budget": {"max_trials": trials, "max_parallel": 1024},
                }
            )
            start, results = _run_processes(
                _tunesmith_worker, [(server, i, piggyback) for i in range(workers)]
            )
            final = client.get_study(study.id)
        done = final.counts.get("complete", 0)
        if done != trials:
            raise RuntimeError(f"tunesmith finished {done} of {trials} trials: {final.counts}")
    return Row(
        "tunesmith",
        backend,
        workers,
        trials,
        max(r["end"] for r in results) - start,
        [1000 * x for r in results for x in r["lease"]],
        [1000 * x for r in results for x in r["complete"]],
        http_workers=http_workers,
        piggyback=piggyback,
    )


def run_optuna(backend: str, workers: int, trials: int, workdir: Path) -> Row:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with fresh_database(backend, workdir) as url:
        storage = optuna.storages.RDBStorage(url)
        optuna.create_study(study_name="throughput", storage=storage, direction="minimize")
        storage.engine.dispose()
        shares = [trials // workers + (1 if i < trials % workers else 0) for i in range(workers)]
        start, results = _run_processes(
            _optuna_worker, [(url, "throughput", shares[i], i) for i in range(workers)]
        )
        storage = optuna.storages.RDBStorage(url)
        study = optuna.load_study(study_name="throughput", storage=storage)
        done = sum(1 for t in study.get_trials(deepcopy=False) if t.state.is_finished())
        storage.engine.dispose()
    return Row(
        "optuna",
        backend,
        workers,
        done,
        max(r["end"] for r in results) - start,
        errors=sum(r.get("errors", 0) for r in results),
    )


@dataclass
class BusyResult:
    backend: str
    trials: int
    server_fraction: list[float]
    objective_share: list[float]
    lease_ms_median: float
    gap_ms: list[float]


def run_busy_share(backend: str, trials: int, workdir: Path) -> BusyResult:
    """4 real workers on a GP study of 1-second trials; see the module docstring."""
    from service.client import Client

    with (
        fresh_database(backend, workdir) as url,
        running_server(url, workdir, TOKEN) as server,
        Client(server, TOKEN) as client,
    ):
        study = client.create_study(
            {
                "name": "busy",
                "objective": "branin",
                "objective_args": {"seconds": BUSY_SECONDS},
                "strategy": {"name": "gp", "seed": 0},
                "budget": {"max_trials": trials, "max_parallel": 4},
            }
        )
        env = {**os.environ, "TUNESMITH_TOKEN": TOKEN, "TUNESMITH_LOG_LEVEL": "warning"}
        logfile = (workdir / "busy-workers.log").open("wb")
        cmd = [sys.executable, "-m", "service.cli", "worker", "--server", server]
        cmd += ["--cpu-workers", "4", "--idle-timeout", "5"]
        proc = subprocess.Popen(
            cmd, env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            while client.get_study(study.id).state != "done":
                time.sleep(0.1)
            workers = client.workers().data
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
            logfile.close()
        finished = client.trials(study.id)
    last_finish: dict[str, float] = {}
    durations: list[float] = []
    by_worker: dict[str, list[Any]] = {}
    for t in finished:
        if t.worker_id and t.started_at and t.finished_at:
            by_worker.setdefault(t.worker_id, []).append(t)
    gaps: list[float] = []
    for runs in by_worker.values():
        runs.sort(key=lambda t: t.started_at)
        gaps += [
            1000 * (b.started_at.timestamp() - a.finished_at.timestamp())
            for a, b in itertools.pairwise(runs)
        ]
    for t in finished:
        if t.worker_id and t.finished_at:
            end = t.finished_at.timestamp()
            last_finish[t.worker_id] = max(last_finish.get(t.worker_id, 0.0), end)
        if t.started_at and t.finished_at:
            durations.append(t.finished_at.timestamp() - t.started_at.timestamp())
    shares = [
        BUSY_SECONDS * w.trials_done / (last_finish[w.id] - w.started_at.timestamp())
        for w in workers
        if w.id in last_finish
    ]
    return BusyResult(
        backend,
        trials,
        [w.busy_fraction for w in workers],
        shares,
        1000 * (statistics.median(durations) - BUSY_SECONDS) if durations else math.nan,
        gaps,
    )


# ---- profile ----------------------------------------------------------------------------------


def profile(backend: str, trials: int, workdir: Path) -> str:
    """cProfile of Scheduler.lease + TrialLifecycle.complete called in-process (no HTTP)."""
    from service.config import Settings
    from service.core.lifecycle import TrialLifecycle
    from service.core.scheduling import LeasePolicy, Scheduler
    from service.core.studies import create_study
    from service.schemas import StudyCreate
    from service.store.db import Database

    with fresh_database(backend, workdir) as url:
        db = Database(url)
        db.upgrade()
        policy = LeasePolicy(lease_seconds=Settings().lease_seconds, max_retries=3)
        scheduler, lifecycle = Scheduler(db, policy), TrialLifecycle(db, policy)
        spec = StudyCreate.model_validate(
            {
                "name": "profile",
                "objective": "branin",
                "strategy": {"name": "random", "seed": 0},
                "budget": {"max_trials": trials, "max_parallel": 1024},
            }
        )
        create_study(db, spec, owner_token_id=None)
        prof = cProfile.Profile()
        started = time.perf_counter()
        prof.enable()
        for _ in range(trials):
            lease = scheduler.lease("profile-worker")
            assert lease is not None
            trial = lease.trial
            value = branin(float(trial.params["x1"]), float(trial.params["x2"]))
            lifecycle.complete(trial.id, trial.lease_token or "", value)
        prof.disable()
        elapsed = time.perf_counter() - started
        db.dispose()
    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text).sort_stats("cumulative")
    stats.print_stats(r"service/", 30)
    return (
        f"{trials} lease+complete cycles on {backend} in-process: {elapsed:.2f} s "
        f"({1000 * elapsed / trials:.1f} ms per trial)\n{text.getvalue()}"
    )


# ---- report -----------------------------------------------------------------------------------


def markdown(rows: list[Row], busy: BusyResult | None, command: str, seconds: float) -> str:
    lines = [
        "# Service throughput",
        "",
        f"Command: `{command}` ({seconds / 60:.1f} min; {platform.node()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load average at the end "
        f"{os.getloadavg()[0]:.1f}).",
        "",
        "Trivial objective (branin, no sleep), random strategy. tunesmith: "
        "`tunesmith serve --workers 0 --http-workers N` (N server processes on one port, "
        "the `server procs` column); latency measured by each worker around "
        "`Client.lease` and `Client.complete` (HTTP round trip included). `tunesmith 1 call`: "
        "each value rides on the next lease request, as `tunesmith worker` sends it (so its "
        "lease latency includes recording the previous result); `tunesmith 2 calls`: lease, "
        "then complete. Optuna: RDBStorage, RandomSampler, `study.optimize` in each process.",
        "",
        "| backend | workers | system | server procs | trials | trials/s | lease p50 ms "
        "| lease p99 ms | complete p50 ms | complete p99 ms | errors |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.backend} | {r.workers} | {r.label} | {r.http_workers or '-'} | {r.trials} "
            f"| {r.per_second:.1f} "
            f"| {Row.pct(r.lease_ms, 0.5)} | {Row.pct(r.lease_ms, 0.99)} "
            f"| {Row.pct(r.complete_ms, 0.5)} | {Row.pct(r.complete_ms, 0.99)} | {r.errors} |"
        )
    lines += ["", "Ratio tunesmith / Optuna (trials per second):", ""]
    for r in rows:
        if r.system != "tunesmith":
            continue
        other = next(
            (
                o
                for o in rows
                if o.system == "optuna" and (o.backend, o.workers) == (r.backend, r.workers)
            ),
            None,
        )
        if other is not None:
            lines.append(
                f"- {r.backend}, {r.workers} workers, {r.label}, {r.http_workers} server "
                f"process(es): "
                f"{r.per_second / other.per_second:.2f}x"
            )
    if busy is not None:
        lines += [
            "",
            f"## Busy share: 4 workers, GP strategy, {BUSY_SECONDS:.0f}-second trials "
            f"({busy.trials} trials, {busy.backend})",
            "",
            "| measure | per worker | mean |",
            "|---|---|---:|",
            "| server busy_fraction (GET /api/v1/workers at study end) | "
            + ", ".join(f"{x:.3f}" for x in busy.server_fraction)
            + f" | {statistics.fmean(busy.server_fraction):.3f} |",
            "| objective share (1 s x trials / first lease -> own last finish) | "
            + ", ".join(f"{x:.3f}" for x in busy.objective_share)
            + f" | {statistics.fmean(busy.objective_share):.3f} |",
            "",
            f"Median trial overhead on the server clock (started -> finished, minus the "
            f"objective's {BUSY_SECONDS:.0f} s): {busy.lease_ms_median:.0f} ms. Gap between a "
            f"worker's trials (finished -> next started, server clock): median "
            f"{Row.pct(busy.gap_ms, 0.5)} ms, p90 {Row.pct(busy.gap_ms, 0.9)} ms, "
            f"max {Row.pct(busy.gap_ms, 1.0)} ms.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="150 trials per run, 16 GP trials")
    parser.add_argument("--trials", type=int, help="trials per run (default 1000; quick 150)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--systems", nargs="+", default=["tunesmith", "optuna"])
    parser.add_argument(
        "--calls",
        type=int,
        nargs="+",
        choices=[1, 2],
        default=[1, 2],
        help="tunesmith protocol: 1 (value on the next lease) and/or 2 (lease, complete)",
    )
    parser.add_argument(
        "--http-workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="server processes for tunesmith (one row each)",
    )
    parser.add_argument("--busy-trials", type=int, help="GP trials for the busy share (0: skip)")
    parser.add_argument("--profile", action="store_true", help="profile lease+complete only")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    trials = args.trials or (150 if args.quick else 1000)
    busy_trials = args.busy_trials if args.busy_trials is not None else (16 if args.quick else 60)
    backends = list(args.backends)
    if "postgresql" in backends and (reason := pg_available()) is not None:
        log.warning("skipping PostgreSQL: %s", reason)
        backends.remove("postgresql")
    with tempfile.TemporaryDirectory(prefix="tunesmith-bench-") as tmp:
        workdir = Path(tmp)
        if args.profile:
            for backend in backends:
                print(profile(backend, trials, workdir))
            return 0
        began = time.monotonic()
        rows: list[Row] = []
        for backend in backends:
            for workers in args.workers:
                for system in args.systems:
                    if system == "tunesmith":
                        runs = [
                            run_tunesmith(backend, workers, trials, workdir, n, calls == 1)
                            for calls in args.calls
                            for n in args.http_workers
                        ]
                    else:
                        runs = [run_optuna(backend, workers, trials, workdir)]
                    for row in runs:
                        log.info(
                            "%s %s %d workers (%s server procs): %.1f trials/s (lease p99 %s ms)",
                            row.label,
                            backend,
                            workers,
                            row.http_workers or "-",
                            row.per_second,
                            Row.pct(row.lease_ms, 0.99),
                        )
                    rows += runs
        busy = None
        if busy_trials:
            backend = "postgresql" if "postgresql" in backends else backends[0]
            busy = run_busy_share(backend, busy_trials, workdir)
            log.info("busy share: %s", json.dumps(busy.__dict__))
        given = sys.argv[1:] if argv is None else argv
        command = " ".join(["python bench/throughput.py", *map(shlex.quote, given)])
        text = markdown(rows, busy, command, time.monotonic() - began)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
