"""Several objectives and constraints: tunesmith's gp strategy against Optuna's samplers.

Multi-objective set (every objective minimized): ZDT1, ZDT2, ZDT3 (4 parameters), DTLZ2
with 2 and 3 objectives (6 parameters), and a tuning task, accuracy against cost: PCA +
logistic regression on scikit-learn's digits (C, log scale, and the number of components),
3-fold cross-validated error against the number of components. Strategies: ours (`gp`:
one GP per objective and log expected hypervolume improvement, service/optimizer/mo_gp.py;
`random`), Optuna's GPSampler (log EHVI), NSGA-II (population 10, so that it evolves within
the budget) and TPE. Score: the hypervolume of all evaluated points at the budget against a
fixed reference point; ranks per (problem, seed), averaged.

Constrained set: constrained Branin (Branin subject to (x1 - 2.5)^2 + (x2 - 7.5)^2 <= 25,
so every unconstrained minimum is infeasible and the optimum lies on the boundary) and
OOM-Branin (Branin whose region x1 > 1.5, x2 < 9 "runs out of memory": no value at all;
the feasible optimum is the minimum at (-pi, 12.275)). Ours gets the constraint as a
metric (`feasible` False) and out-of-memory trials as infeasible failures; Optuna's
GPSampler gets `constraints_func` (c(x) <= 0 feasible). An out-of-memory trial has no value:
Optuna is told FAIL (what a plain objective that raises gives; GPSampler ignores failed
trials) and, as a second variant (`optuna-gp-oomc`), COMPLETE with the worst value seen so
far and a violated constraint, which lets its constraint model learn the region. Score:
feasible regret (best feasible value minus the feasible optimum) and the number of
infeasible trials (violations plus out-of-memory).

    python bench/multiobjective.py --quick            # 5 seeds, smaller budgets (minutes)
    python bench/multiobjective.py --seeds 10         # the full set

Each run is a JSON line in bench/results/multiobjective_runs.jsonl (a rerun skips the runs
the file holds); the tables go to bench/results/multiobjective.md. `--runs NAME` keeps a
separate set instead (bench/results/NAME_runs.jsonl and NAME.md), for example more seeds of
the constrained problems:

    python bench/multiobjective.py --quick --only constrained --seeds 20 --runs constrained20
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
from functools import cache
from multiprocessing import Pool
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.domain import Direction, TrialState
from service.optimizer import Observation, StrategySpec, SuggestRequest, get_strategy
from service.optimizer.pareto import hypervolume
from service.optimizer.peers import optuna_distributions
from service.space import SearchSpace
from service.specs import ConstraintSpec

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = RESULTS / "multiobjective_runs.jsonl"
REPORT = RESULTS / "multiobjective.md"
REGRET_FLOOR = 1e-6


# ---- problems --------------------------------------------------------------------------------


def _box(d: int) -> SearchSpace:
    return SearchSpace.from_spec(
        {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(d)}
    )


def _vec(c: dict[str, Any], d: int) -> np.ndarray:
    return np.array([c[f"x{i}"] for i in range(d)], dtype=float)


def _zdt(kind: int) -> Callable[[np.ndarray], list[float]]:
    def f(x: np.ndarray) -> list[float]:
        g = 1.0 + 9.0 * x[1:].sum() / (len(x) - 1)
        f1 = x[0]
        h = {
            1: 1.0 - math.sqrt(f1 / g),
            2: 1.0 - (f1 / g) ** 2,
            3: 1.0 - math.sqrt(f1 / g) - (f1 / g) * math.sin(10 * math.pi * f1),
        }[kind]
        return [f1, g * h]

    return f


def _dtlz2(m: int) -> Callable[[np.ndarray], list[float]]:
    def f(x: np.ndarray) -> list[float]:
        g = float(((x[m - 1 :] - 0.5) ** 2).sum())
        out = []
        for i in range(m):
            v = 1.0 + g
            for xj in x[: m - 1 - i]:
                v *= math.cos(xj * math.pi / 2)
            if i > 0:
                v *= math.sin(x[m - 1 - i] * math.pi / 2)
            out.append(v)
        return out

    return f


@dataclass(frozen=True)
class MultiProblem:
    space: SearchSpace
    values: Callable[[dict[str, Any]], list[float]]
    ref: tuple[float, ...]
    budget: int


def _on_box(d: int, f: Callable[[np.ndarray], list[float]]) -> Callable[..., list[float]]:
    return lambda c: f(_vec(c, d))


TUNING_SPACE = SearchSpace.from_spec(
    {
        "C": {"type": "float", "low": 1e-4, "high": 1e2, "log": True},
        "components": {"type": "int", "low": 2, "high": 64},
    }
)


@cache
def _digits_error(c_value: float, components: int) -> float:
    """3-fold cross-validated error of PCA + logistic regression on scikit-learn's digits."""
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline

    X, y = load_digits(return_X_y=True)
    model = make_pipeline(
        PCA(n_components=components, svd_solver="full"),
        LogisticRegression(C=c_value, max_iter=300),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return 1.0 - float(cross_val_score(model, X / 16.0, y, cv=3).mean())


def _tuning(c: dict[str, Any]) -> list[float]:
    """Accuracy against cost: the classifier's error and its number of PCA components."""
    return [_digits_error(float(c["C"]), int(c["components"])), float(c["components"])]


def multi_problems(budget: int) -> dict[str, MultiProblem]:
    return {
        "zdt1": MultiProblem(_box(4), _on_box(4, _zdt(1)), (1.1, 11.0), budget),
        "zdt2": MultiProblem(_box(4), _on_box(4, _zdt(2)), (1.1, 11.0), budget),
        "zdt3": MultiProblem(_box(4), _on_box(4, _zdt(3)), (1.1, 11.0), budget),
        "dtlz2-2": MultiProblem(_box(6), _on_box(6, _dtlz2(2)), (1.1, 1.1), budget),
        "dtlz2-3": MultiProblem(_box(6), _on_box(6, _dtlz2(3)), (1.1, 1.1, 1.1), budget),
        "digits-logreg": MultiProblem(TUNING_SPACE, _tuning, (1.0, 65.0), budget),
    }


def _branin(x1: float, x2: float) -> float:
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


BRANIN_SPACE = SearchSpace.from_spec(
    {
        "x1": {"type": "float", "low": -5.0, "high": 10.0},
        "x2": {"type": "float", "low": 0.0, "high": 15.0},
    }
)


def _disc(c: dict[str, Any]) -> float:
    """The constraint of constrained Branin: <= 0 is feasible."""
    return (c["x1"] - 2.5) ** 2 + (c["x2"] - 7.5) ** 2 - 25.0


def _oom(c: dict[str, Any]) -> bool:
    return c["x1"] > 1.5 and c["x2"] < 9.0


@dataclass(frozen=True)
class ConstrainedProblem:
    """`constraint(c) <= 0` is feasible (None: no constraint); `oom(c)`: no value at all."""

    constraint: Callable[[dict[str, Any]], float] | None
    oom: Callable[[dict[str, Any]], bool] | None
    budget: int

    @property
    def space(self) -> SearchSpace:
        return BRANIN_SPACE

    def f(self, c: dict[str, Any]) -> float:
        return _branin(c["x1"], c["x2"])

    def feasible(self, c: dict[str, Any]) -> bool:
        if self.oom is not None and self.oom(c):
            return False
        return self.constraint is None or self.constraint(c) <= 0

    def f_opt(self) -> float:
        """The feasible optimum: a dense grid, then SLSQP from its best feasible points."""
        g = np.linspace(0, 1, 301)
        pts = [{"x1": -5 + 15 * a, "x2": 15 * b} for a in g for b in g]
        best = sorted((p for p in pts if self.feasible(p)), key=self.f)[:20]
        out = min(self.f(p) for p in best)
        cons: list[dict[str, Any]] = []
        if self.constraint is not None:
            constraint = self.constraint
            cons = [{"type": "ineq", "fun": lambda z: -constraint({"x1": z[0], "x2": z[1]})}]
        for p in best:
            res = minimize(
                lambda z: _branin(z[0], z[1]),
                [p["x1"], p["x2"]],
                method="SLSQP",
                bounds=[(-5, 10), (0, 15)],
                constraints=cons,
            )
            z = {"x1": float(res.x[0]), "x2": float(res.x[1])}
            if res.success and self.feasible(z):
                out = min(out, self.f(z))
        return out


def constrained_problems(budget: int) -> dict[str, ConstrainedProblem]:
    return {
        "constrained-branin": ConstrainedProblem(_disc, None, budget),
        "oom-branin": ConstrainedProblem(None, _oom, budget),
    }


@cache
def feasible_optimum(name: str) -> float:
    return constrained_problems(1)[name].f_opt()


# ---- runners ---------------------------------------------------------------------------------

MULTI_STRATEGIES = ("ours-gp", "ours-random", "optuna-gp", "optuna-nsga2", "optuna-tpe")
CONSTRAINED_STRATEGIES = ("ours-gp", "optuna-gp", "optuna-gp-oomc")


def _ours(
    space: SearchSpace,
    budget: int,
    seed: int,
    strategy: str,
    evaluate: Callable[[dict[str, Any]], Observation | None],
    directions: tuple[Direction, ...] = (),
    constraints: tuple[ConstraintSpec, ...] = (),
) -> list[dict[str, Any]]:
    """Emulates the scheduler one trial at a time: state kept, seed = f(study seed, n).
    `evaluate` gives the observation, or None for an infeasible failure."""
    spec = StrategySpec.model_validate({"name": strategy})
    impl, _ = get_strategy(spec.name)
    observations: list[Observation] = []
    infeasible: list[dict[str, Any]] = []
    state: dict[str, Any] = {}
    configs: list[dict[str, Any]] = []
    while len(configs) < budget:
        result = impl.suggest(
            SuggestRequest(
                space=space,
                direction=Direction.MINIMIZE,
                spec=spec,
                observations=observations,
                pending=[],
                count=1,
                seed=hash((seed, len(configs))) % 2**31,
                state=state,
                directions=directions,
                constraints=constraints,
                infeasible=list(infeasible),
            )
        )
        state = json.loads(json.dumps(result.state))
        c = result.suggestions[0].params
        configs.append(c)
        obs = evaluate(c)
        if obs is None:
            infeasible.append(c)
        else:
            observations.append(obs)
    return configs


def _sampler(strategy: str, seed: int, constraints: Callable[[Any], Any] | None = None) -> Any:
    import optuna

    if strategy.startswith("optuna-gp"):
        return optuna.samplers.GPSampler(
            seed=seed, deterministic_objective=True, constraints_func=constraints
        )
    if strategy == "optuna-nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=10)
    return optuna.samplers.TPESampler(seed=seed)


def run_multi(name: str, strategy: str, seed: int, budget: int) -> dict[str, Any]:
    problem = multi_problems(budget)[name]
    k = len(problem.ref)
    directions = (Direction.MINIMIZE,) * k
    t0 = time.perf_counter()
    if strategy.startswith("ours"):

        def evaluate(c: dict[str, Any]) -> Observation:
            v = problem.values(c)
            return Observation(c, v[0], TrialState.COMPLETE, values=tuple(v))

        configs = _ours(
            problem.space, budget, seed, strategy.removeprefix("ours-"), evaluate, directions
        )
    else:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        dists = optuna_distributions(problem.space)
        configs = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study = optuna.create_study(
                directions=["minimize"] * k, sampler=_sampler(strategy, seed)
            )
            while len(configs) < budget:
                t = study.ask(dists)
                c = problem.space.validate(t.params)
                study.tell(t, problem.values(c))
                configs.append(c)
    values = np.array([problem.values(c) for c in configs])
    return {
        "set": "multi",
        "problem": name,
        "strategy": strategy,
        "seed": seed,
        "budget": budget,
        "hypervolume": hypervolume(values, problem.ref),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def run_constrained(name: str, strategy: str, seed: int, budget: int) -> dict[str, Any]:
    problem = constrained_problems(budget)[name]
    t0 = time.perf_counter()
    if strategy == "ours-gp":

        def evaluate(c: dict[str, Any]) -> Observation | None:
            if problem.oom is not None and problem.oom(c):
                return None
            if problem.constraint is None:
                return Observation(c, problem.f(c), TrialState.COMPLETE)
            value = problem.constraint(c)
            return Observation(
                c, problem.f(c), TrialState.COMPLETE, feasible=value <= 0, metrics={"c": value}
            )

        limits = () if problem.constraint is None else (ConstraintSpec(metric="c", max=0.0),)
        configs = _ours(problem.space, budget, seed, "gp", evaluate, constraints=limits)
    else:
        configs = _optuna_constrained(problem, strategy, seed, budget)
    seconds = round(time.perf_counter() - t0, 2)
    f_opt = feasible_optimum(name)
    feasible = [problem.f(c) for c in configs if problem.feasible(c)]
    regret = math.log10(max(min(feasible) - f_opt, REGRET_FLOOR)) if feasible else None
    return {
        "set": "constrained",
        "problem": name,
        "strategy": strategy,
        "seed": seed,
        "budget": budget,
        "log10_regret": regret,
        "infeasible": sum(not problem.feasible(c) for c in configs),
        "seconds": seconds,
    }


def _optuna_constrained(
    problem: ConstrainedProblem, strategy: str, seed: int, budget: int
) -> list[dict[str, Any]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = optuna_distributions(problem.space)

    def constraints(trial: Any) -> list[float]:
        return list(trial.user_attrs["c"])

    configs: list[dict[str, Any]] = []
    worst = -math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(sampler=_sampler(strategy, seed, constraints))
        while len(configs) < budget:
            t = study.ask(dists)
            c = problem.space.validate(t.params)
            configs.append(c)
            if problem.oom is not None and problem.oom(c):
                if strategy == "optuna-gp-oomc" and math.isfinite(worst):
                    t.set_user_attr("c", [1.0])
                    study.tell(t, worst)
                else:
                    study.tell(t, state=optuna.trial.TrialState.FAIL)
                continue
            value = problem.f(c)
            worst = max(worst, value)
            t.set_user_attr("c", [problem.constraint(c) if problem.constraint else -1.0])
            study.tell(t, value)
    return configs


def run_task(task: tuple[str, str, str, int, int]) -> dict[str, Any]:
    kind, name, strategy, seed, budget = task
    runner = run_multi if kind == "multi" else run_constrained
    return runner(name, strategy, seed, budget)


# ---- report ----------------------------------------------------------------------------------


def _load() -> list[dict[str, Any]]:
    if not RUNS.exists():
        return []
    return [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]


def _ranks(rows: list[dict[str, Any]], strategies: tuple[str, ...]) -> dict[str, float]:
    """Mean rank (1 = largest hypervolume) over (problem, seed) with every strategy; ties
    share their mean rank."""
    by: dict[tuple[str, int], dict[str, float]] = {}
    for r in rows:
        by.setdefault((r["problem"], r["seed"]), {})[r["strategy"]] = r["hypervolume"]
    ranks: dict[str, list[float]] = {s: [] for s in strategies}
    for scores in by.values():
        if set(scores) != set(strategies):
            continue
        order = sorted(strategies, key=lambda s: -scores[s])
        for s in strategies:
            tied = [i + 1 for i, o in enumerate(order) if scores[o] == scores[s]]
            ranks[s].append(float(np.mean(tied)))
    return {s: float(np.mean(v)) if v else math.nan for s, v in ranks.items()}


def _multi_table(rows: list[dict[str, Any]]) -> list[str]:
    names = sorted({r["problem"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    budgets = sorted({r["budget"] for r in rows})
    lines = [
        f"## Hypervolume at the budget ({budgets} evaluations, seeds {seeds})",
        "",
        "Mean (standard deviation) of the hypervolume of all evaluated points; larger is "
        "better. Reference points: ZDT (1.1, 11), DTLZ2 (1.1, ...), digits-logreg (1, 65). "
        "Mean rank over "
        "(problem, seed), 1 is best.",
        "",
        "| strategy | " + " | ".join(names) + " | mean rank |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    ranks = _ranks(rows, MULTI_STRATEGIES)
    for s in MULTI_STRATEGIES:
        cells = []
        for n in names:
            hv = [r["hypervolume"] for r in rows if r["problem"] == n and r["strategy"] == s]
            cells.append(f"{np.mean(hv):.4g} ({np.std(hv):.2g})" if hv else "-")
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {ranks[s]:.2f} |")
    secs = {
        s: float(np.median([r["seconds"] for r in rows if r["strategy"] == s] or [math.nan]))
        for s in MULTI_STRATEGIES
    }
    lines += ["", "Median seconds per run: " + ", ".join(f"{s} {v:.1f}" for s, v in secs.items())]
    return [*lines, ""]


def _constrained_table(rows: list[dict[str, Any]]) -> list[str]:
    names = sorted({r["problem"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    budgets = sorted({r["budget"] for r in rows})
    lines = [
        f"## Constrained problems ({budgets} evaluations, seeds {seeds})",
        "",
        "Median log10 feasible regret (lower is better; -6 is the floor) and mean number of "
        "infeasible trials (constraint violations plus out-of-memory).",
        "",
        "| strategy | " + " | ".join(f"{n} regret | {n} infeasible" for n in names) + " |",
        "|---|" + "---|---|" * len(names),
    ]
    for s in CONSTRAINED_STRATEGIES:
        cells = []
        for n in names:
            rs = [r for r in rows if r["problem"] == n and r["strategy"] == s]
            if not rs:
                cells += ["-", "-"]
                continue
            regrets = [math.inf if r["log10_regret"] is None else r["log10_regret"] for r in rs]
            infeasible = float(np.mean([r["infeasible"] for r in rs]))
            cells += [f"{np.median(regrets):.2f}", f"{infeasible:.1f}"]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def report(command: str) -> str:
    rows = _load()
    multi = [r for r in rows if r["set"] == "multi"]
    cons = [r for r in rows if r["set"] == "constrained"]
    lines = ["# Several objectives and constraints", "", f"Command: `{command}`", ""]
    if multi:
        lines += _multi_table(multi)
    if cons:
        lines += _constrained_table(cons)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller budgets (minutes)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--only", choices=["multi", "constrained"], default=None)
    parser.add_argument("--report", action="store_true", help="only write the report")
    parser.add_argument("--problem", action="append", help="only these problems (repeatable)")
    parser.add_argument(
        "--runs", default="multiobjective", help="results/NAME_runs.jsonl and results/NAME.md"
    )
    args = parser.parse_args()
    global RUNS, REPORT
    RUNS, REPORT = RESULTS / f"{args.runs}_runs.jsonl", RESULTS / f"{args.runs}.md"
    command = "python bench/multiobjective.py " + " ".join(sys.argv[1:])
    if not args.report:
        multi_budget, cons_budget = (24, 25) if args.quick else (50, 40)
        tasks: list[tuple[str, str, str, int, int]] = []
        if args.only in (None, "multi"):
            tasks += [
                ("multi", n, s, seed, multi_budget)
                for seed in range(args.seeds)
                for n in multi_problems(multi_budget)
                for s in MULTI_STRATEGIES
            ]
        if args.only in (None, "constrained"):
            tasks += [
                ("constrained", n, s, seed, cons_budget)
                for seed in range(args.seeds)
                for n in constrained_problems(cons_budget)
                for s in CONSTRAINED_STRATEGIES
            ]
        done = {(r["set"], r["problem"], r["strategy"], r["seed"], r["budget"]) for r in _load()}
        tasks = [t for t in tasks if t not in done and (not args.problem or t[1] in args.problem)]
        RESULTS.mkdir(exist_ok=True)
        with Pool(args.jobs) as pool, RUNS.open("a") as out:
            for row in pool.imap_unordered(run_task, tasks):
                out.write(json.dumps(row) + "\n")
                out.flush()
                print(json.dumps(row), flush=True)
    text = report(command)
    REPORT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
