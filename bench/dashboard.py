"""Dashboard benchmark: how fast the study page of a 10,000-trial study loads in a real browser.

Setup: a SQLite file gets one study with `--trials` trials, written through the ORM models
before the server starts (bulk INSERTs: seconds, where 10,000 ask/tell round trips would
take minutes): a 4-parameter space, mostly complete trials with 5 intermediate values each,
some pruned and failed, a few running; after a Sobol-like start every trial carries a GP
suggestion record (acquisition value, predicted mean and std) as the `gp` strategy stores
it. Then a real `tunesmith serve` serves it and headless Chromium opens /studies/{id}.

A load is measured from navigation start to the moment the page marks itself ready
(`body[data-ready=true]`: header, optimization history plot and the first trials page
drawn). Cold loads use a fresh browser context (empty cache, Plotly's 4.8 MB script fetched
again); warm loads reload in the same context. The medians are printed as a markdown table,
with the server-side time of the JSON endpoints the page and its tabs use.

    python bench/dashboard.py                       # 10,000 trials, 7 cold + 7 warm loads
    python bench/dashboard.py --trials 2000 --loads 3
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.store.db import Database
from service.store.models import Study, Trial, TrialValue, utcnow

TOKEN = "bench-dashboard-token"
CHROMIUM = os.environ.get("TUNESMITH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SPACE = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.6, "log": False},
    "width": {"type": "int", "low": 16, "high": 512, "log": False},
    "optimizer": {"type": "categorical", "choices": ["adam", "sgd", "rmsprop"]},
}
STEPS = 5


def _loss(p: dict[str, Any], rng: random.Random) -> float:
    return (
        0.05
        + 0.08 * (math.log10(p["lr"]) + 2.5) ** 2
        + 0.4 * (p["dropout"] - 0.2) ** 2
        + 0.1 * (math.log2(p["width"]) - 7) ** 2 / 4
        + {"adam": 0.0, "sgd": 0.06, "rmsprop": 0.02}[p["optimizer"]]
        + rng.gauss(0, 0.01)
    )


def build_database(path: Path, n_trials: int, seed: int = 0) -> int:
    """Writes one study with `n_trials` trials into a fresh SQLite file; returns its id."""
    rng = random.Random(seed)
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    start = utcnow() - timedelta(hours=30)
    with db.write() as session:
        study = Study(
            name="ten-thousand",
            objective="softmax",
            objective_args={},
            metric="val_loss",
            direction="minimize",
            space=SPACE,
            strategy={"name": "gp", "acquisition": "auto"},
            budget={"max_trials": n_trials + 100, "max_parallel": 8, "max_retries": None},
            seed=seed,
            state="running",
            created_at=start,
        )
        session.add(study)
        session.flush()
        trials: list[dict[str, Any]] = []
        for number in range(n_trials):
            params = {
                "lr": 10 ** rng.uniform(-5, -1),
                "dropout": rng.uniform(0, 0.6),
                "width": rng.randint(16, 512),
                "optimizer": rng.choice(["adam", "sgd", "rmsprop"]),
            }
            final = _loss(params, rng)
            roll = rng.random()
            running = number >= n_trials - 4
            state = (
                "running"
                if running
                else ("failed" if roll < 0.02 else "pruned" if roll < 0.15 else "complete")
            )
            began = start + timedelta(seconds=10 * number)
            gp = number >= 10
            trials.append(
                {
                    "study_id": study.id,
                    "number": number,
                    "params": params,
                    "state": state,
                    "value": None if state in ("failed", "running") else final,
                    "step": None if state == "failed" else (2 if state == "pruned" else STEPS),
                    "seed": rng.randrange(2**31),
                    "attempt": 1,
                    "source": "gp" if gp else "sobol",
                    "suggestion": {
                        "source": "gp",
                        "acquisition": rng.choice(["ei", "pi", "ucb"]),
                        "acquisition_value": rng.random(),
                        "mean": final + rng.gauss(0, 0.02),
                        "std": abs(rng.gauss(0.03, 0.01)),
                    }
                    if gp
                    else {"source": "sobol"},
                    "worker_id": f"bench-{number % 8}",
                    "error": "RuntimeError: diverged" if state == "failed" else None,
                    "created_at": began,
                    "started_at": began,
                    "finished_at": None if running else began + timedelta(seconds=9),
                    "updated_at": began + timedelta(seconds=9),
                }
            )
        session.execute(insert(Trial), trials)
        ids = dict(
            session.execute(
                Trial.__table__.select()
                .with_only_columns(Trial.number, Trial.id)
                .where(Trial.study_id == study.id)
            ).all()
        )
        values = [
            {
                "trial_id": ids[t["number"]],
                "step": step,
                "value": t["value"] + 0.5 / step if t["value"] is not None else 1.0 / step,
                "created_at": t["started_at"],
            }
            for t in trials
            if t["step"] is not None
            for step in range(1, t["step"] + 1)
        ]
        session.execute(insert(TrialValue), values)
        study_id = study.id
    db.dispose()
    return study_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db_path: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "TUNESMITH_ADMIN_TOKEN": TOKEN, "TUNESMITH_TOKEN_FILE": str(workdir / "t")}
    command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", "0"]
    command += ["--database-url", f"sqlite:///{db_path}", "--artifact-dir", str(workdir / "a")]
    proc = subprocess.Popen(
        command,
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("the server did not start within 60 s")


def endpoint_times(url: str, study_id: int, repeats: int = 3) -> dict[str, float]:
    """Median wall time (ms) of each JSON view the study page and its tabs request."""
    base = f"/api/v1/studies/{study_id}"
    paths = {
        "GET /studies/{id}": base,
        "GET /studies/{id}/history (1000 points)": f"{base}/history?max_points=1000",
        "GET /studies/{id}/trials (page of 50)": f"{base}/trials?limit=50&descending=true",
        "GET /studies/{id}/trials (by a parameter, page of 50)": (
            f"{base}/trials?limit=50&order=params.lr"
        ),
        "GET /studies/{id}/trials (a parameter range, page of 50)": (
            f"{base}/trials?limit=50&where=params.lr>=0.001&where=params.lr<=0.01"
        ),
        "GET /studies/{id}/trials.csv (every trial)": f"{base}/trials.csv",
        "GET /studies/{id}/curves": f"{base}/curves?limit=200",
        "GET /studies/{id}/importance": f"{base}/importance",
        "GET /studies/{id}/model?param=lr": f"{base}/model?param=lr",
        "GET /studies/{id}/model (2-D, 25 x 25)": f"{base}/model?param=lr&param2=dropout",
    }
    out: dict[str, float] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as c:
        for name, path in paths.items():
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                c.get(path).raise_for_status()
                times.append((time.perf_counter() - t0) * 1000)
            out[name] = statistics.median(times)
    return out


TIMINGS = """() => {
  const end = (part) => {
    const entry = performance.getEntriesByType('resource').find((e) => e.name.includes(part));
    return entry ? Math.round(entry.responseEnd) : null;
  };
  return {
    ready: Math.round(performance.getEntriesByName('tunesmith-ready')[0].startTime),
    plotly: end('plotly.min.js'),
    history: end('/history'),
  };
}"""


def page_loads(url: str, study_id: int, loads: int) -> tuple[list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    cold: list[float] = []
    warm: list[float] = []
    init = f"sessionStorage.setItem('tunesmith.token', {TOKEN!r})"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for i in range(loads + 1):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.add_init_script(init)
            page = context.new_page()
            page.goto(f"{url}/studies/{study_id}")
            page.wait_for_selector("body[data-ready=true]", timeout=60_000)
            first = page.evaluate(TIMINGS)
            page.reload()
            page.wait_for_selector("body[data-ready=true]", timeout=60_000)
            second = page.evaluate(TIMINGS)
            points = page.locator("#history-plot").get_attribute("data-points")
            context.close()
            if i == 0:
                continue  # the first load warms the server's caches and the OS page cache
            cold.append(first["ready"])
            warm.append(second["ready"])
            print(f"load {i} ({points} points drawn): cold {first}, warm {second} (ms)")
        browser.close()
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--loads", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        db_path = workdir / "dashboard.db"
        t0 = time.perf_counter()
        study_id = build_database(db_path, args.trials)
        print(f"wrote {args.trials} trials in {time.perf_counter() - t0:.1f} s")
        proc, url = start_server(db_path, workdir)
        try:
            cold, warm = page_loads(url, study_id, args.loads)
            endpoints = endpoint_times(url, study_id)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    print()
    print(f"| study page, {args.trials} trials | median | min | max |")
    print("|---|---|---|---|")
    for name, xs in (("cold load (new context)", cold), ("warm load (reload)", warm)):
        print(f"| {name} | {statistics.median(xs):.0f} ms | {min(xs):.0f} ms | {max(xs):.0f} ms |")
    print()
    print("| endpoint | median |")
    print("|---|---|")
    for name, ms in endpoints.items():
        print(f"| {name} | {ms:.0f} ms |")


if __name__ == "__main__":
    main()
