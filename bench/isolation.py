"""Another study's leases while one study's suggestion computes for half a minute.

A real `tunesmith serve` (SQLite by default: one database writer for everything). Study
"slow" asks for a batch of scikit-optimize suggestions that takes about `--seconds` (the
batch size is calibrated first); meanwhile a worker loop leases and completes trials of
study "fast" (random strategy, trivial objective) and records each lease's latency.
Before suggestions were computed outside the write transaction, every one of these leases
waited for the slow suggestion to finish.

    python bench/isolation.py [--backend sqlite|postgresql] [--seconds 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import fresh_database, running_server

TOKEN = "bench-isolation-token"
SPACE = {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(6)}


def _study(api: httpx.Client, body: dict[str, object]) -> int:
    response = api.post("/api/v1/studies", json=body)
    response.raise_for_status()
    return int(response.json()["id"])


def _ask_tell(api: httpx.Client, study_id: int, n: int) -> float:
    """Asks for `n` trials and completes them; returns the seconds the ask took."""
    started = time.perf_counter()
    response = api.post(f"/api/v1/studies/{study_id}/suggestions", json={"count": n}, timeout=600)
    took = time.perf_counter() - started
    response.raise_for_status()
    for trial in response.json()["data"]:
        value = sum((v - 0.3) ** 2 for v in trial["params"].values())
        done = {"lease_token": trial["lease_token"], "value": value}
        api.post(f"/api/v1/trials/{trial['id']}/complete", json=done).raise_for_status()
    return took


def run(backend: str, seconds: float) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        fresh_database(backend, Path(tmp)) as url,
        running_server(url, Path(tmp), TOKEN) as server,
    ):
        api = httpx.Client(
            base_url=server, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        )
        slow = _study(
            api,
            {
                "name": "slow",
                "objective": "external",
                "space": SPACE,
                "strategy": {"name": "skopt", "n_initial": 5},
                "budget": {"max_trials": 5000, "max_parallel": 64},
            },
        )
        _study(
            api,
            {
                "name": "fast",
                "objective": "branin",
                "objective_args": {"seconds": 0},
                "strategy": {"name": "random"},
                "budget": {"max_trials": 100000, "max_parallel": 4},
            },
        )
        for _ in range(10):
            _ask_tell(api, slow, 5)
        per_trial = _ask_tell(api, slow, 2) / 2
        batch = max(2, min(64, round(seconds / max(per_trial, 1e-3))))
        print(f"calibration: {per_trial:.2f} s per suggestion; asking for {batch}")
        latencies: list[float] = []
        done = threading.Event()
        took: list[float] = []

        def ask() -> None:
            took.append(_ask_tell(api, slow, batch))
            done.set()

        asking = threading.Thread(target=ask)
        asking.start()
        worker = httpx.Client(
            base_url=server, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120
        )
        while not done.is_set():
            started = time.perf_counter()
            response = worker.post("/api/v1/workers/bench-worker/lease", json={})
            latencies.append(time.perf_counter() - started)
            if response.status_code == 200:
                trial = response.json()["trial"]
                done_body = {"lease_token": trial["lease_token"], "value": 1.0}
                worker.post(f"/api/v1/trials/{trial['id']}/complete", json=done_body)
        asking.join()
        ms = sorted(1000 * v for v in latencies)
        p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
        print(
            f"| {backend} | {took[0]:.1f} | {len(ms)} | {statistics.median(ms):.1f} "
            f"| {p99:.1f} | {ms[-1]:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    print("| backend | slow suggestion s | leases of the other study | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|")
    run(args.backend, args.seconds)


if __name__ == "__main__":
    main()
