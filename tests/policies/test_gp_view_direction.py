"""The dashboard's GP view (service.insight.model_view) shows the study's model in the
study's own units and direction: its mean ranks the trials as their values do, and its
optimum is where the objective's is, for a minimized and for a maximized study. A constant
surrogate or a flipped sign fails here."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from service.core.studies import enqueue_configuration
from service.insight import model_view
from tests.policies.conftest import Service

XS = [0.0, 0.1, 0.2, 0.45, 0.6, 0.75, 0.9, 1.0]


def _bowl(x: float) -> float:
    return (x - 0.3) ** 2


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_the_gp_view_ranks_trials_and_finds_the_optimum_in_the_studys_direction(
    service: Service, direction: str
) -> None:
    sign = 1.0 if direction == "minimize" else -1.0
    study = service.create(
        name=f"view-{direction}",
        objective="external",
        direction=direction,
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
        strategy={"name": "gp", "acquisition": "ei"},
        budget={"max_trials": 20, "max_parallel": 20},
    )
    for x in XS:
        enqueue_configuration(service.db, study, {"x": x})
    for trial in service.scheduler.suggest(study, len(XS)).trials:
        value = sign * _bowl(trial.params["x"])
        service.lifecycle.complete(trial.id, trial.lease_token or "", value)
    with service.db.read() as session:
        view = model_view(
            session, study, param="x", param2=None, points=101, acquisition=None
        )
    assert view.curve is not None and view.incumbent is not None
    xs = np.array(view.x.values)
    mean = np.array(view.curve.mean)
    optimum = xs[np.argmin(sign * mean)]
    assert abs(optimum - 0.3) < 0.1, optimum
    assert np.all(np.array(view.curve.lower) <= mean + 1e-9)
    assert np.all(mean <= np.array(view.curve.upper) + 1e-9)
    values = [p.value for p in view.observed]
    means = [p.mean for p in view.observed]
    assert spearmanr(values, means).statistic > 0.9
    assert view.incumbent.value == pytest.approx(sign * _bowl(0.2))
    assert view.incumbent.mean == pytest.approx(view.incumbent.value, abs=0.02)
    # The acquisition is highest where improvement is expected: near the optimum, not at
    # the worst observed point.
    acquisition = np.array(view.curve.acquisition)
    assert abs(xs[np.argmax(acquisition)] - 0.3) < 0.15
