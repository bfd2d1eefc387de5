"""What a worker sends for a trainer's return: one value or named metrics, matched to the
study's objectives and constraints (service/trial_result.py)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from service.schemas import LeasePublic
from service.specs import ConstraintSpec, ObjectiveSpec
from service.trial_result import complete_fields
from tests.faults.test_oom import _lease


def lease(**extra: Any) -> LeasePublic:
    return _lease("zdt").model_copy(update=extra)


TWO = [ObjectiveSpec.model_validate({"metric": m, "direction": "minimize"}) for m in ("f1", "f2")]
LIMIT = [ConstraintSpec(metric="n_params", max=10)]


def test_one_value_for_one_objective() -> None:
    assert complete_fields(0.5, lease()) == {"value": 0.5}
    assert complete_fields(math.nan, lease()).startswith("diverged")  # type: ignore[union-attr]


def test_named_metrics_give_values_in_the_objectives_order() -> None:
    metrics = {"f2": 2.0, "f1": 1.0, "n_params": 7, "note": "x"}
    fields = complete_fields(metrics, lease(objectives=TWO))  # type: ignore[arg-type]
    assert fields == {"values": [1.0, 2.0], "metrics": {"f2": 2.0, "f1": 1.0, "n_params": 7.0}}


def test_one_objective_study_takes_its_metric_from_the_dict() -> None:
    fields = complete_fields({"loss": 0.3, "n_params": 4}, lease(constraints=LIMIT))
    assert fields == {"value": 0.3, "metrics": {"loss": 0.3, "n_params": 4.0}}


@pytest.mark.parametrize(
    ("result", "extra", "reason"),
    [
        (0.5, {"objectives": TWO}, "the study has several objectives"),
        (0.5, {"constraints": LIMIT}, "the study's constraints need metrics"),
        ({"f1": 1.0}, {"objectives": TWO}, "the trainer's metrics lack 'f2'"),
        ({"f1": 1.0, "f2": math.inf}, {"objectives": TWO}, "diverged: f2 is inf"),
    ],
)
def test_results_that_do_not_fit_fail_with_the_reason(
    result: Any, extra: dict[str, Any], reason: str
) -> None:
    out = complete_fields(result, lease(**extra))
    assert isinstance(out, str) and out.startswith(reason), out
