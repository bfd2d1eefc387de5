"""Pruning benchmark: epochs saved by the median rule and ASHA, and what it costs in quality.

Every mode sees the same configurations (random strategy, same seed: the sequence does not
depend on results), so the only difference is which trials were stopped early. Decisions go
through the real store and lifecycle (SQLite file, `TrialLifecycle.report`).

    python bench/pruning.py                 # synthetic curves (many seeds) + the VAE on digits
    python bench/pruning.py --skip-vae      # synthetic only (seconds)

Prints a markdown table; --out writes it to a file too.
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.core.lifecycle import TrialLifecycle
from service.core.scheduling import LeasePolicy, Scheduler
from service.core.studies import create_study
from service.schemas import StudyCreate
from service.store.db import Database

MODES: dict[str, dict[str, Any] | None] = {
    "none": None,
    "median": {"rule": "median", "warmup_steps": 1, "min_trials": 3},
    "asha": {"rule": "asha", "min_steps": 1, "reduction_factor": 3},
}

# A trainer: (params, report) -> final value; report(step, value) -> True to stop.
Trainer = Callable[[dict[str, Any], Callable[[int, float], bool]], float]


def run_study(
    mode: str, trainer: Trainer, space: dict[str, Any], n_trials: int, seed: int, workdir: Path
) -> tuple[int, float]:
    """Returns (epochs trained, best final value of the trials that completed)."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = Database(f"sqlite:///{workdir / f'{mode}-{seed}.db'}")
    db.upgrade()
    policy = LeasePolicy(lease_seconds=3600, max_retries=0)
    scheduler, lifecycle = Scheduler(db, policy), TrialLifecycle(db, policy)
    spec = StudyCreate.model_validate(
        {
            "name": f"{mode}-{seed}",
            "objective": "external",
            "space": space,
            "strategy": {"name": "random", "seed": seed},
            "budget": {"max_trials": n_trials, "max_parallel": 1},
            "pruning": MODES[mode],
        }
    )
    study_id = create_study(db, spec, owner_token_id=None)
    epochs = 0
    best = math.inf
    for _ in range(n_trials):
        (trial,) = scheduler.suggest(study_id, 1).trials
        token = trial.lease_token or ""
        pruned = False

        def report(step: int, value: float, trial_id: int = trial.id, token: str = token) -> bool:
            nonlocal epochs, pruned
            epochs += 1
            pruned = lifecycle.report(trial_id, token, step, value).value == "prune"
            return pruned

        value = trainer(dict(trial.params), report)
        if pruned:
            continue
        if math.isfinite(value):
            lifecycle.complete(trial.id, token, value)
            best = min(best, value)
        else:
            lifecycle.fail(trial.id, token, f"diverged: {value}")
    db.dispose()
    return epochs, best


def synthetic_trainer(epochs: int, noise_seed: int) -> Trainer:
    """Curves v_t = final + gap * exp(-t / tau) + noise: bad configurations look bad early."""

    def train(params: dict[str, Any], report: Callable[[int, float], bool]) -> float:
        x, y = params["x"], params["y"]
        final = (x - 0.3) ** 2 + 2 * (y - 0.7) ** 2
        tau = 1.0 + 4.0 * y
        rng = np.random.default_rng(abs(hash((round(x, 9), round(y, 9), noise_seed))) % 2**32)
        value = final
        for t in range(1, epochs + 1):
            value = final + 0.5 * math.exp(-t / tau) + 0.01 * rng.standard_normal()
            if report(t, value):
                break
        return value

    return train


def vae_trainer(epochs: int, seed: int, workdir: Path) -> Trainer:
    from objectives.base import TrialContext
    from objectives.registry import get

    objective = get("vae")

    def train(params: dict[str, Any], report: Callable[[int, float], bool]) -> float:
        ctx = TrialContext(
            trial_id=0,
            study_id=0,
            seed=seed,
            artifact_dir=workdir / "artifacts",
            report_fn=report,
            threads=2,
        )
        try:
            return objective.run(params, {"epochs": epochs}, ctx)
        except Exception as exc:  # pruned or diverged: the last reported value stands
            if type(exc).__name__ == "TrialDiverged":
                return math.inf
            return math.nan

    return train


VAE_SPACE = {
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "latent_dim": {"type": "int", "low": 2, "high": 16},
    "hidden_units": {"type": "int", "low": 32, "high": 256, "log": True},
    "kl_weight": {"type": "float", "low": 0.1, "high": 3.0, "log": True},
    "optimizer": {"type": "categorical", "choices": ["adam", "rmsprop", "sgd"]},
    "batch_size": {"type": "fixed", "value": 128},
}
SYNTH_SPACE = {
    "x": {"type": "float", "low": 0.0, "high": 1.0},
    "y": {"type": "float", "low": 0.0, "high": 1.0},
}


def compare(name: str, runs: dict[str, list[tuple[int, float]]]) -> list[str]:
    base_epochs = [e for e, _ in runs["none"]]
    base_best = [b for _, b in runs["none"]]
    rows = []
    for mode, results in runs.items():
        saved = [1 - e / b for (e, _), b in zip(results, base_epochs, strict=True)]
        gaps = [(best - ref) / abs(ref) for (_, best), ref in zip(results, base_best, strict=True)]
        rows.append(
            f"| {name} | {mode} | {statistics.median(e for e, _ in results):.0f} | "
            f"{100 * statistics.median(saved):.0f}% | "
            f"{statistics.median(b for _, b in results):.4g} | "
            f"{100 * statistics.median(gaps):+.2f}% | {100 * max(gaps):+.2f}% |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="synthetic seeds")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--vae-trials", type=int, default=16)
    parser.add_argument("--vae-epochs", type=int, default=8)
    parser.add_argument("--vae-seeds", type=int, default=1)
    parser.add_argument("--skip-vae", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    lines = [
        "| benchmark | pruning | epochs trained (median) | epochs saved | best value (median) "
        "| best vs unpruned (median) | worst seed |",
        "|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        runs: dict[str, list[tuple[int, float]]] = {m: [] for m in MODES}
        for seed in range(args.seeds):
            trainer = synthetic_trainer(args.epochs, seed)
            for mode in MODES:
                runs[mode].append(
                    run_study(mode, trainer, SYNTH_SPACE, args.trials, seed, work / "synthetic")
                )
        label = (
            f"synthetic curves ({args.seeds} seeds x {args.trials} trials x {args.epochs} epochs)"
        )
        lines += compare(label, runs)
        print(f"synthetic: {time.perf_counter() - started:.0f} s", file=sys.stderr)
        if not args.skip_vae:
            started = time.perf_counter()
            vae_runs: dict[str, list[tuple[int, float]]] = {m: [] for m in MODES}
            for seed in range(args.vae_seeds):
                trainer = vae_trainer(args.vae_epochs, seed, work)
                for mode in MODES:
                    vae_runs[mode].append(
                        run_study(mode, trainer, VAE_SPACE, args.vae_trials, seed, work / "vae")
                    )
            label = (
                f"VAE on digits ({args.vae_seeds} seed(s) x {args.vae_trials} trials "
                f"x {args.vae_epochs} epochs)"
            )
            lines += compare(label, vae_runs)
            print(f"vae: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    table = "\n".join(lines)
    print(table)
    if args.out:
        command = "python bench/pruning.py " + " ".join(sys.argv[1:])
        args.out.write_text(f"Command: `{command.strip()}`\n\n{table}\n")


if __name__ == "__main__":
    main()
