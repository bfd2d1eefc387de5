"""Stepped and conditional search spaces: our strategies against Optuna, in the same run.

Two sets, every problem minimized, best value at the budget over `--seeds` seeds:
- conditional: spaces with `condition`s (branches with their own parameters, two levels deep)
  against Optuna's TPESampler asked define-by-run (each trial suggests only the parameters
  its branch uses, parents first), the way Optuna users write conditional spaces;
- step: spaces with stepped floats and ints against Optuna's GPSampler on the same stepped
  distributions (`FloatDistribution(step=...)`, `IntDistribution(step=...)`).
Random search runs on both as the floor. Ours: `gp` (the default, acquisition `auto`) and
`tpe` (Optuna's TPE behind our seam, define-by-run as well).

Each (problem, strategy, seed) run is one JSON line in bench/results/spaces_runs.jsonl as
soon as it finishes; `--report` (also run at the end) writes bench/results/spaces.md: per
problem the median best value and each strategy's rank (1 = best median), then the mean rank
per set. On this shared 2-core machine use small budgets:

    nice python bench/spaces.py --seeds 5 --budget-scale 0.75 --fresh
    nice python bench/spaces.py --seeds 5 --budget-scale 0.5 --only hartmann6,widths
    python bench/spaces.py --report

(Optuna's GPSampler takes most of the time: about 100 s for one 26-trial run of the 6-D
problem here, against 3 s for ours.)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.optimizer import Observation, StrategySpec, SuggestRequest, get_strategy
from service.optimizer.peers import optuna_distributions, suggest_by_run
from service.space import SearchSpace

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = RESULTS / "spaces_runs.jsonl"
REPORT = RESULTS / "spaces.md"


@dataclass(frozen=True)
class Problem:
    name: str
    kind: str  # "conditional" | "step"
    space: SearchSpace
    f: Callable[[dict[str, Any]], float]
    budget: int


def _branin(x1: float, x2: float) -> float:
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array(
    [[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]
)
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def _hartmann(x: np.ndarray, A: np.ndarray, P: np.ndarray) -> float:
    return float(-(_H_ALPHA * np.exp(-(A * (x - P) ** 2).sum(1))).sum())


def _branches(c: dict[str, Any]) -> float:
    """Three branches with their own parameters: Branin (min 0.398), Hartmann-3 shifted
    (min -3.86 + 2.5 = -1.36) and a bowl whose centre depends on an int (min -1.0)."""
    if c["fn"] == "branin":
        return _branin(c["b1"], c["b2"])
    if c["fn"] == "hartmann3":
        return _hartmann(np.array([c["h1"], c["h2"], c["h3"]]), _H3_A, _H3_P) + 2.5
    centre = 0.1 * c["q_k"]
    return (c["q_x"] - centre) ** 2 + (c["q_y"] - 0.5) ** 2 - 1.0


def _mlp(c: dict[str, Any]) -> float:
    """A synthetic validation loss of a network with an architecture and an optimizer choice,
    each with its own parameters (nested: sgd's nesterov only matters with momentum)."""
    if c["arch"] == "dense":
        size = (math.log2(c["units"]) - 7.5) ** 2 / 6 + 0.05 * abs(c["layers"] - 3)
    else:
        size = ((c["filters"] - 48) / 40) ** 2 + 0.3 * (c["kernel"] == 5) - 0.15
    lr = math.log10(c["lr"])
    if c["optimizer"] == "adam":
        opt = (lr + 3.0) ** 2 / 4 + (c["beta_1"] - 0.85) ** 2
    else:
        opt = (lr + 1.7) ** 2 / 4 + 2 * (c["momentum"] - 0.9) ** 2 - 0.1
        if c["momentum"] > 0.5:
            opt -= 0.08 * (c["nesterov"] == "yes")
    return size + opt + 0.5 * (c["dropout"] - 0.2) ** 2


def _steps(c: dict[str, Any]) -> float:
    """Three layer widths in multiples of 8 and two rates in steps of 0.05 (min 0)."""
    widths = sum(((c[f"w{i}"] - t) / 64) ** 2 for i, t in ((1, 96), (2, 184), (3, 40)))
    return widths + 4 * (c["drop"] - 0.35) ** 2 + 2 * (c["decay"] + 0.45) ** 2


def problems() -> dict[str, Problem]:
    branches = SearchSpace.from_spec(
        {
            "fn": {"type": "categorical", "choices": ["branin", "hartmann3", "bowl"]},
            "b1": {"type": "float", "low": -5, "high": 10, "condition": {"fn": ["branin"]}},
            "b2": {"type": "float", "low": 0, "high": 15, "condition": {"fn": ["branin"]}},
            **{
                f"h{i}": {"type": "float", "low": 0, "high": 1, "condition": {"fn": ["hartmann3"]}}
                for i in (1, 2, 3)
            },
            "q_k": {"type": "int", "low": 1, "high": 9, "condition": {"fn": ["bowl"]}},
            "q_x": {"type": "float", "low": 0, "high": 1, "condition": {"fn": ["bowl"]}},
            "q_y": {"type": "float", "low": 0, "high": 1, "condition": {"fn": ["bowl"]}},
        }
    )
    mlp = SearchSpace.from_spec(
        {
            "arch": {"type": "categorical", "choices": ["dense", "conv"]},
            "units": {
                "type": "int",
                "low": 16,
                "high": 1024,
                "log": True,
                "condition": {"arch": ["dense"]},
            },
            "layers": {"type": "int", "low": 1, "high": 6, "condition": {"arch": ["dense"]}},
            "filters": {
                "type": "int",
                "low": 8,
                "high": 128,
                "step": 8,
                "condition": {"arch": ["conv"]},
            },
            "kernel": {"type": "categorical", "choices": [3, 5], "condition": {"arch": ["conv"]}},
            "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
            "lr": {"type": "float", "low": 1e-5, "high": 1.0, "log": True},
            "beta_1": {
                "type": "float",
                "low": 0.5,
                "high": 0.999,
                "condition": {"optimizer": ["adam"]},
            },
            "momentum": {
                "type": "float",
                "low": 0.0,
                "high": 0.99,
                "condition": {"optimizer": ["sgd"]},
            },
            "nesterov": {
                "type": "categorical",
                "choices": ["no", "yes"],
                "condition": {"optimizer": ["sgd"]},
            },
            "dropout": {"type": "float", "low": 0.0, "high": 0.6, "step": 0.05},
        }
    )
    branin_grid = SearchSpace.from_spec(
        {
            "x1": {"type": "float", "low": -5, "high": 10, "step": 0.25},
            "x2": {"type": "float", "low": 0, "high": 15, "step": 0.25},
        }
    )
    h6_grid = SearchSpace.from_spec(
        {f"x{i}": {"type": "float", "low": 0, "high": 1, "step": 0.05} for i in range(6)}
    )
    widths = SearchSpace.from_spec(
        {
            **{f"w{i}": {"type": "int", "low": 8, "high": 256, "step": 8} for i in (1, 2, 3)},
            "drop": {"type": "float", "low": 0, "high": 0.8, "step": 0.05},
            "decay": {"type": "float", "low": -1, "high": 1, "step": 0.05},
        }
    )
    return {
        p.name: p
        for p in [
            Problem("branches (3 functions)", "conditional", branches, _branches, 40),
            Problem("mlp (arch x optimizer)", "conditional", mlp, _mlp, 40),
            Problem(
                "branin, step 0.25", "step", branin_grid, lambda c: _branin(c["x1"], c["x2"]), 25
            ),
            Problem(
                "hartmann6, step 0.05",
                "step",
                h6_grid,
                lambda c: _hartmann(np.array([c[f"x{i}"] for i in range(6)]), _H6_A, _H6_P),
                35,
            ),
            Problem("widths x8 + rates x0.05", "step", widths, _steps, 30),
        ]
    }


STRATEGIES = {
    "conditional": ["gp", "tpe (ours)", "optuna-tpe", "random"],
    "step": ["gp", "optuna-gp", "random"],
}


def run_ours(problem: Problem, strategy: str, seed: int) -> list[float]:
    """One suggestion at a time, the strategy state kept between calls (as the scheduler)."""
    name = {"gp": "gp", "tpe (ours)": "tpe", "random": "random"}[strategy]
    spec = StrategySpec(name=name, seed=seed)  # type: ignore[arg-type]
    impl, _ = get_strategy(spec.name)
    observations: list[Observation] = []
    state: dict[str, Any] = {}
    values: list[float] = []
    while len(values) < problem.budget:
        result = impl.suggest(
            SuggestRequest(
                space=problem.space,
                direction="minimize",
                spec=spec,  # type: ignore[arg-type]
                observations=observations,
                pending=[],
                count=1,
                seed=hash((seed, len(values))) % 2**31,
                state=state,
            )
        )
        state = json.loads(json.dumps(result.state))
        config = problem.space.validate(result.suggestions[0].params)
        value = problem.f(config)
        observations.append(Observation(config, value, "complete"))
        values.append(value)
    return values


def _define_by_run(trial: Any, space: SearchSpace, dists: dict[str, Any]) -> dict[str, Any]:
    """The active parameters only, parents first: how Optuna users write a conditional
    space."""
    return space.validate(suggest_by_run(trial, space, dists))


def run_optuna(problem: Problem, strategy: str, seed: int) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = optuna_distributions(problem.space)
    values: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = (
            optuna.samplers.GPSampler(seed=seed, deterministic_objective=True)
            if strategy == "optuna-gp"
            else optuna.samplers.TPESampler(seed=seed)
        )
        study = optuna.create_study(sampler=sampler)
        while len(values) < problem.budget:
            trial = study.ask()
            value = problem.f(_define_by_run(trial, problem.space, dists))
            study.tell(trial, value)
            values.append(value)
    return values


def run_one(problem: Problem, strategy: str, seed: int) -> dict[str, Any]:
    start = time.perf_counter()
    if strategy.startswith("optuna"):
        values = run_optuna(problem, strategy, seed)
    else:
        values = run_ours(problem, strategy, seed)
    return {
        "problem": problem.name,
        "kind": problem.kind,
        "strategy": strategy,
        "seed": seed,
        "budget": problem.budget,
        "best": float(min(values)),
        "seconds": round(time.perf_counter() - start, 2),
    }


def _load() -> list[dict[str, Any]]:
    if not RUNS.exists():
        return []
    return [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]


def report() -> str:
    runs = _load()
    lines = [
        "# Stepped and conditional spaces (bench/spaces.py)",
        "",
        "Best value at the budget (minimized), median over seeds; rank 1 = best median. "
        "Conditional spaces against Optuna's TPE asked define-by-run, stepped spaces against "
        "Optuna's GPSampler on the same stepped distributions; random search as the floor.",
        "",
    ]
    for kind, strategies in STRATEGIES.items():
        names = sorted({r["problem"] for r in runs if r["kind"] == kind})
        if not names:
            continue
        ranks: dict[str, list[float]] = {s: [] for s in strategies}
        lines += [
            f"## {kind}",
            "",
            "| problem | budget | seeds | " + " | ".join(strategies) + " |",
            "|---" * (3 + len(strategies)) + "|",
        ]
        for name in names:
            rows = [r for r in runs if r["problem"] == name]
            medians = {
                s: float(np.median([r["best"] for r in rows if r["strategy"] == s]))
                for s in strategies
                if any(r["strategy"] == s for r in rows)
            }
            order = sorted(medians, key=lambda s: medians[s])
            rank = {s: 1 + sum(medians[t] < medians[s] for t in medians) for s in order}
            for s in medians:
                ranks[s].append(rank[s])
            seeds = len({r["seed"] for r in rows})
            cells = [f"{medians[s]:.4g} ({rank[s]})" if s in medians else "-" for s in strategies]
            lines.append(f"| {name} | {rows[0]['budget']} | {seeds} | " + " | ".join(cells) + " |")
        mean = {s: float(np.mean(v)) for s, v in ranks.items() if v}
        lines += ["", "Mean rank: " + ", ".join(f"{s} {v:.2f}" for s, v in mean.items()), ""]
        seconds = {
            s: float(
                np.median([r["seconds"] for r in runs if r["kind"] == kind and r["strategy"] == s])
            )
            for s in strategies
            if any(r["kind"] == kind and r["strategy"] == s for r in runs)
        }
        lines += [
            "Median seconds per run: " + ", ".join(f"{s} {v:.1f}" for s, v in seconds.items()),
            "",
        ]
    text = "\n".join(lines)
    REPORT.write_text(text + "\n")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--budget-scale",
        type=float,
        default=1.0,
        help="multiply every problem's budget (e.g. 0.6 for a quick run)",
    )
    parser.add_argument(
        "--only", default="", help="comma-separated substrings: run only the problems named so"
    )
    parser.add_argument("--report", action="store_true", help="only write the report")
    parser.add_argument("--fresh", action="store_true", help="discard earlier runs")
    args = parser.parse_args()
    if not args.report:
        RESULTS.mkdir(exist_ok=True)
        if args.fresh and RUNS.exists():
            RUNS.unlink()
        done = {(r["problem"], r["strategy"], r["seed"], r["budget"]) for r in _load()}
        only = [w for w in args.only.split(",") if w]
        for problem in problems().values():
            if only and not any(w in problem.name for w in only):
                continue
            budget = max(5, round(problem.budget * args.budget_scale))
            problem = Problem(problem.name, problem.kind, problem.space, problem.f, budget)
            for seed in range(args.seeds):
                for strategy in STRATEGIES[problem.kind]:
                    if (problem.name, strategy, seed, budget) in done:
                        continue
                    result = run_one(problem, strategy, seed)
                    with RUNS.open("a") as fh:
                        fh.write(json.dumps(result) + "\n")
                    print(json.dumps(result), flush=True)
    print(report())


if __name__ == "__main__":
    main()
