"""A GP study run end to end through the REST ask/tell routes beats random search."""

from __future__ import annotations

import math
import statistics

import pytest

from tests.support import ServerProcess

pytestmark = pytest.mark.slow

BRANIN_SPACE = {
    "x1": {"type": "float", "low": -5.0, "high": 10.0},
    "x2": {"type": "float", "low": 0.0, "high": 15.0},
}
BRANIN_MIN = 0.397887
SEEDS = (0, 1, 2)
TRIALS = 25


def branin(params: dict[str, float]) -> float:
    x1, x2 = params["x1"], params["x2"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def best_after(server: ServerProcess, strategy: str, seed: int) -> float:
    with server.client() as client:
        study = client.create_study(
            {
                "name": f"branin-{strategy}-{seed}",
                "objective": "external",
                "space": BRANIN_SPACE,
                "strategy": {"name": strategy, "seed": seed},
                "budget": {"max_trials": TRIALS, "max_parallel": 1},
                "seed": seed,
            }
        )
        done = client.optimize(branin, study.id, n_jobs=1)
        assert done.state.value == "done"
        assert done.counts["complete"] == TRIALS
        assert done.best is not None
        trials = client.trials(study.id)
        assert len({(t.params["x1"], t.params["x2"]) for t in trials}) == TRIALS
        return done.best.value


def test_gp_beats_random_search_on_branin_through_ask_tell(server: ServerProcess) -> None:
    gp = [best_after(server, "gp", seed) for seed in SEEDS]
    random = [best_after(server, "random", seed) for seed in SEEDS]
    print(f"best after {TRIALS} trials: gp {gp}, random {random}")
    assert statistics.median(gp) < statistics.median(random), (gp, random)
    assert all(g - BRANIN_MIN < 0.5 for g in gp), gp
    assert sum(g < r for g, r in zip(gp, random, strict=True)) >= 2, (gp, random)
