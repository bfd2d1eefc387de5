"""Study-level stopping and warm start, measured on the GP engine's benchmark functions.

Both run real studies through the scheduler and lifecycle on a SQLite file (ask/tell path),
with the default strategy (gp, auto):

    python bench/study_policies.py stop   # stop rule vs full budget: trials saved, regret
    python bench/study_policies.py warm   # warm start from a shifted/rescaled earlier study

stop: the same study twice, with and without `stopping` (EI-based rule plus patience); the
suggestion sequence is identical until the rule fires, so the difference is what stopping
early cost. warm: a source study on a shifted (3% of the box) and rescaled (2f + 1) version of
the function, then a cold and a warm-started study on the function itself; the table gives
how many trials the warm study needed to reach the cold study's final best, each seed's
ratio, and both studies' final log10 regret.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from optimizer import Problem, problems

from service.core.lifecycle import TrialLifecycle
from service.core.scheduling import LeasePolicy, Scheduler
from service.core.studies import create_study
from service.params import FloatParam, IntParam
from service.schemas import StudyCreate
from service.store import repository as repo
from service.store.db import Database

STOP_RULE = {"ei_threshold": 0.01, "ei_patience": 3, "patience": 25, "min_trials": 15}
DEFAULT_STOP_PROBLEMS = "branin,camel6,hartmann3,mixed,lr_log,hartmann6"
DEFAULT_WARM_PROBLEMS = "branin,camel6,hartmann3,hartmann6,rosenbrock4"


class Runner:
    def __init__(self, workdir: Path) -> None:
        self.db = Database(f"sqlite:///{workdir / 'policies.db'}")
        self.db.upgrade()
        policy = LeasePolicy(lease_seconds=3600, max_retries=0)
        self.scheduler = Scheduler(self.db, policy)
        self.lifecycle = TrialLifecycle(self.db, policy)
        self.n = 0

    def study(
        self,
        problem: Problem,
        f: Callable[[dict[str, Any]], float],
        seed: int,
        **extra: Any,
    ) -> tuple[int, list[float]]:
        """Runs a study to its end; returns (id, best-so-far after each trial)."""
        self.n += 1
        spec = StudyCreate.model_validate(
            {
                "name": f"{problem.name}-{seed}-{self.n}",
                "objective": "external",
                "space": problem.space.to_spec(),
                "strategy": {"name": "gp", "seed": seed},
                "budget": {"max_trials": problem.budget, "max_parallel": 1},
                "seed": seed,
                **extra,
            }
        )
        study_id = create_study(self.db, spec, owner_token_id=None)
        best: list[float] = []
        while True:
            try:
                batch = self.scheduler.suggest(study_id, 1).trials
            except Exception:  # the study ended (stopping rule): Conflict
                break
            if not batch:
                break
            trial = batch[0]
            value = f(dict(trial.params))
            self.lifecycle.complete(trial.id, trial.lease_token or "", value)
            best.append(min(value, best[-1]) if best else value)
        return study_id, best

    def reason(self, study_id: int) -> str:
        with self.db.read() as session:
            return repo.get_study(session, study_id).stop_reason or ""


def _shifted(problem: Problem) -> Callable[[dict[str, Any]], float]:
    """f evaluated 3% of each box width away, then rescaled: 2 f + 1."""

    def g(c: dict[str, Any]) -> float:
        moved = dict(c)
        for name, p in problem.space.params.items():
            if isinstance(p, FloatParam | IntParam) and not p.log:
                width = p.high - p.low
                v = min(max(c[name] + 0.03 * width, p.low), p.high)
                moved[name] = round(v) if isinstance(p, IntParam) else v
        return 2.0 * problem.f(moved) + 1.0

    return g


def log_regret(best: float, f_opt: float) -> float:
    return math.log10(max(best - f_opt, 1e-8))


def bench_stop(problem_names: list[str], seeds: int, workdir: Path) -> list[str]:
    rows = [
        "| function | budget | trials used (median) | trials saved | log10 regret full | "
        "log10 regret stopped | regret gap (median, log10) | improvement kept (median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    table = problems()
    for name in problem_names:
        problem = table[name]
        used, full_r, stop_r, kept = [], [], [], []
        for seed in range(seeds):
            runner = Runner(workdir / f"stop-{name}-{seed}")
            _, full = runner.study(problem, problem.f, seed)
            _, stopped = runner.study(problem, problem.f, seed, stopping=STOP_RULE)
            used.append(len(stopped))
            kept.append((full[0] - stopped[-1]) / max(full[0] - full[-1], 1e-12))
            full_r.append(log_regret(full[-1], problem.f_opt))
            stop_r.append(log_regret(stopped[-1], problem.f_opt))
            runner.db.dispose()
        gaps = [s - f for s, f in zip(stop_r, full_r, strict=True)]
        rows.append(
            f"| {name} | {problem.budget} | {statistics.median(used):.0f} | "
            f"{100 * (1 - statistics.median(used) / problem.budget):.0f}% | "
            f"{statistics.median(full_r):.2f} | {statistics.median(stop_r):.2f} | "
            f"{statistics.median(gaps):+.2f} | {100 * statistics.median(kept):.1f}% |"
        )
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def bench_warm(problem_names: list[str], seeds: int, workdir: Path) -> list[str]:
    rows = [
        "| function | budget | cold: trials to its final best (median) | warm: trials to the "
        "cold final best (median) | ratio warm/cold (median) | warm reached it | ratio per seed "
        "| log10 regret at the end, cold / warm (median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    table = problems()
    for name in problem_names:
        problem = table[name]
        cold_n, warm_n, ratios, reached = [], [], [], 0
        cold_r, warm_r = [], []
        for seed in range(seeds):
            runner = Runner(workdir / f"warm-{name}-{seed}")
            source, _ = runner.study(problem, _shifted(problem), seed + 100)
            _, cold = runner.study(problem, problem.f, seed)
            _, warm = runner.study(problem, problem.f, seed, warm_start={"studies": [source]})
            target = cold[-1]
            cold_first = next(i for i, b in enumerate(cold, 1) if b <= target)
            hit = next((i for i, b in enumerate(warm, 1) if b <= target), None)
            warm_first = hit if hit is not None else problem.budget
            reached += hit is not None
            cold_n.append(cold_first)
            warm_n.append(warm_first)
            ratios.append(warm_first / cold_first)
            cold_r.append(log_regret(cold[-1], problem.f_opt))
            warm_r.append(log_regret(warm[-1], problem.f_opt))
            runner.db.dispose()
        rows.append(
            f"| {name} | {problem.budget} | {statistics.median(cold_n):.0f} | "
            f"{statistics.median(warm_n):.0f} | {statistics.median(ratios):.2f} | "
            f"{reached}/{seeds} | {' '.join(f'{r:.2f}' for r in ratios)} | "
            f"{statistics.median(cold_r):.2f} / {statistics.median(warm_r):.2f} |"
        )
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["stop", "warm"])
    parser.add_argument("--problems")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    default = DEFAULT_STOP_PROBLEMS if args.which == "stop" else DEFAULT_WARM_PROBLEMS
    names = (args.problems or default).split(",")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dirs = [work / f"{args.which}-{n}-{s}" for n in names for s in range(args.seeds)]
        for d in dirs:
            d.mkdir()
        fn = bench_stop if args.which == "stop" else bench_warm
        rows = fn(names, args.seeds, work)
    table = "\n".join(rows)
    elapsed = time.perf_counter() - started
    print(table)
    print(f"({elapsed:.0f} s)", file=sys.stderr)
    if args.out:
        command = "python bench/study_policies.py " + " ".join(sys.argv[1:])
        rule = f"\n\nStop rule: `{STOP_RULE}`" if args.which == "stop" else ""
        args.out.write_text(f"Command: `{command.strip()}`{rule}\n\n{table}\n")


if __name__ == "__main__":
    main()
