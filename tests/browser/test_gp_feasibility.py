"""The GP tab of a constrained study, in headless Chromium: the modelled probability feasible
drawn along the slice (a dashed line on a 0-1 axis under the mean) and over two parameters
(labelled contour lines on the mean); a study without constraints or infeasible failures has
no such trace."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.support import ServerProcess

SPACE = {
    "x": {"type": "float", "low": 0.0, "high": 1.0},
    "y": {"type": "float", "low": 0.0, "high": 1.0},
}
FEASIBLE = "probability feasible"
TRACES = "document.querySelector('#gp-plot')?.data"


def _loss(params: dict[str, Any]) -> float:
    return (params["x"] - 0.7) ** 2 + (params["y"] - 0.4) ** 2


def _study(live_server: ServerProcess, name: str, **spec: Any) -> int:
    """A Sobol study (its design does not depend on the values) with 12 complete trials;
    each reports its `size` metric, x."""
    client = live_server.client()
    study = client.create_study(
        {
            "name": name,
            "objective": "external",
            "metric": "loss",
            "space": SPACE,
            "strategy": {"name": "sobol"},
            "budget": {"max_trials": 20, "max_parallel": 20},
            "seed": 3,
            **spec,
        }
    )
    for trial in client.suggest(study.id, 12):
        client.complete(trial, _loss(trial.params), metrics={"size": trial.params["x"]})
    return int(study.id)


@pytest.fixture(scope="module")
def constrained(live_server: ServerProcess) -> int:
    return _study(live_server, "gp-feasible", constraints=[{"metric": "size", "max": 0.5}])


def _traces(page: Any) -> dict[str, Any]:
    rows = page.evaluate(f"{TRACES}.map(t => ({{name: t.name, x: t.x, y: t.y, z: t.z}}))")
    return {t["name"]: t for t in rows}


def test_gp_view_draws_the_probability_feasible(page: Any, constrained: int) -> None:
    page.goto(f"/studies/{constrained}#gp")
    page.wait_for_function(f"{TRACES}?.some(t => t.name === '{FEASIBLE}')")
    line = _traces(page)[FEASIBLE]
    by_x = list(zip(line["x"], line["y"], strict=True))
    assert max(p for x, p in by_x if x > 0.75) < 0.1
    assert min(p for x, p in by_x if x < 0.25) > 0.9
    axis = page.evaluate("document.querySelector('#gp-plot').layout.yaxis3")
    assert axis["title"]["text"] == "P(feasible)" and axis["range"] == [0, 1.05]
    assert "probability feasible" in page.inner_text("#gp-info")
    screenshot(page, "gp-view-feasibility")

    page.select_option("#gp-param2", "y")
    page.wait_for_function(
        f"{TRACES}?.some(t => t.type === 'contour' && t.name === '{FEASIBLE}')"
    )
    surface = _traces(page)[FEASIBLE]
    assert len(surface["z"]) == len(surface["y"]) and len(surface["z"][0]) == len(surface["x"])
    screenshot(page, "gp-view-feasibility-2d")


def test_gp_view_of_an_unconstrained_study_has_no_feasibility(
    page: Any, live_server: ServerProcess
) -> None:
    study = _study(live_server, "gp-unconstrained")
    page.goto(f"/studies/{study}#gp")
    page.wait_for_function("Number(document.querySelector('#gp-plot')?.dataset.points) >= 50")
    assert FEASIBLE not in _traces(page)
    assert page.evaluate("document.querySelector('#gp-plot').layout.yaxis3") is None
    assert "probability feasible" not in page.inner_text("#gp-info")
    page.select_option("#gp-param2", "y")
    page.wait_for_function(f"{TRACES}?.some(t => t.type === 'contour')")
    assert FEASIBLE not in _traces(page)
