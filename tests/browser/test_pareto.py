"""The Pareto tab of a study with several objectives, in headless Chromium: the scatter
(pairs for three objectives) with the server's front highlighted and infeasible trials
marked, and the hypervolume over trials; a study with one objective has no such tab."""

from __future__ import annotations

from typing import Any

import pytest

from service.optimizer.pareto import hypervolume
from tests.browser.conftest import screenshot
from tests.support import ServerProcess

SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}
# loss (minimize), accuracy (maximize), n_params (constraint: at most 100).
RESULTS = [
    ([0.1, 0.50], 10),
    ([0.3, 0.70], 20),
    ([0.6, 0.85], 50),
    ([0.4, 0.60], 30),  # dominated by (0.3, 0.7)
    ([0.05, 0.99], 500),  # the best trade-off, but infeasible
    ([0.9, 0.90], 40),
    ([0.8, 0.80], 10),  # dominated by (0.6, 0.85)
    ([0.3, 0.70], 60),  # a duplicate of a front point: on the front too
]


def _study(live_server: ServerProcess, name: str, **spec: Any) -> Any:
    body = {
        "name": name,
        "objective": "external",
        "space": SPACE,
        "strategy": {"name": "random"},
        "budget": {"max_trials": 20, "max_parallel": 20},
        **spec,
    }
    return live_server.client().create_study(body)


@pytest.fixture(scope="module")
def two_objectives(live_server: ServerProcess) -> Any:
    client = live_server.client()
    study = _study(
        live_server,
        "pareto-two",
        objectives=[
            {"metric": "loss", "direction": "minimize"},
            {"metric": "accuracy", "direction": "maximize"},
        ],
        constraints=[{"metric": "n_params", "max": 100}],
    )
    for trial, (values, n_params) in zip(
        client.suggest(study.id, len(RESULTS)), RESULTS, strict=True
    ):
        client.complete(trial, values=values, metrics={"n_params": n_params})
    return client.get_study(study.id)


def test_pareto_tab_highlights_the_feasible_front(page: Any, two_objectives: Any) -> None:
    front = sorted(p.values for p in two_objectives.pareto)
    assert front == [[0.1, 0.5], [0.3, 0.7], [0.3, 0.7], [0.6, 0.85], [0.9, 0.9]]
    page.goto(f"/studies/{two_objectives.id}#pareto")
    page.wait_for_function("document.querySelector('#pareto-plot-0')?.dataset.points == '8'")
    plot = page.locator("#pareto-plot-0")
    assert plot.get_attribute("data-front") == "5"
    traces = {
        t["name"]: list(zip(t["x"], t["y"], strict=True))
        for t in page.evaluate(
            "document.querySelector('#pareto-plot-0').data"
            ".map(t => ({name: t.name, x: t.x, y: t.y}))"
        )
    }
    assert sorted(traces["Pareto front"]) == [tuple(v) for v in front]
    assert traces["infeasible"] == [(0.05, 0.99)]
    assert sorted(traces["trials"]) == [(0.4, 0.6), (0.8, 0.8)]
    assert "5 trials on the front of 8 complete; 1 infeasible" in page.inner_text(
        "#pareto-summary"
    )
    page.wait_for_function("document.querySelector('#hypervolume-plot')?.dataset.points == '8'")
    curve = page.evaluate("document.querySelector('#hypervolume-plot').data[0].y")
    assert curve == sorted(curve), "the hypervolume never decreases"
    # The same reference point as the page: worst feasible value + a tenth of the range.
    feasible = [[v[0], -v[1]] for v, n in RESULTS if n <= 100]
    ref = [max(c) + 0.1 * (max(c) - min(c)) for c in zip(*feasible, strict=True)]
    assert curve[-1] == pytest.approx(hypervolume(feasible, ref))
    screenshot(page, "pareto")


def test_three_objectives_show_the_three_pairs(page: Any, live_server: ServerProcess) -> None:
    client = live_server.client()
    study = _study(
        live_server,
        "pareto-three",
        objectives=[
            {"metric": f"f{i}", "direction": "minimize"} for i in range(3)
        ],
    )
    for i, trial in enumerate(client.suggest(study.id, 6)):
        client.complete(trial, values=[i, 5 - i, (i - 2) ** 2])
    page.goto(f"/studies/{study.id}#pareto")
    page.wait_for_function("document.querySelector('#pareto-plot-2')?.dataset.points == '6'")
    assert page.locator("#pareto-plots .plot").count() == 3
    page.wait_for_function("document.querySelector('#hypervolume-plot')?.dataset.points == '6'")


def test_a_study_with_one_objective_has_no_pareto_tab(
    page: Any, live_server: ServerProcess
) -> None:
    study = _study(live_server, "pareto-none")
    page.goto(f"/studies/{study.id}")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("a.tab[data-tab=gp]").count() == 1
    assert page.locator("a.tab[data-tab=pareto]").count() == 0
