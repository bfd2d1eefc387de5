"""A study's trials as CSV (GET /studies/{id}/trials.csv): one row per trial, one column per
parameter (`params_NAME`, as optuna's trials_dataframe names them), then the value, state,
error and, for pruned trials, the step at which they were pruned."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from service.api.views import duration_seconds
from service.domain import TrialState
from service.store.models import Trial
from service.trialquery import as_text

FIRST = ["number", "trial_id", "state", "value"]
LAST = [
    "step",
    "pruned_step",
    "error",
    "worker_id",
    "source",
    "created_at",
    "started_at",
    "finished_at",
    "duration_seconds",
]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return as_text(value)


def trials_csv(names: Sequence[str], trials: Iterable[Trial]) -> str:
    """The CSV text, trials in the given order; empty cells for missing values."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*FIRST, *(f"params_{n}" for n in names), *LAST])
    for t in trials:
        pruned_step = t.step if t.state == TrialState.PRUNED else None
        writer.writerow(
            [
                t.number,
                t.id,
                t.state.value,
                _cell(t.value),
                *(_cell(t.params.get(n)) for n in names),
                _cell(t.step),
                _cell(pruned_step),
                _cell(t.error),
                _cell(t.worker_id),
                t.source,
                t.created_at.isoformat(),
                _cell(t.started_at.isoformat() if t.started_at else None),
                _cell(t.finished_at.isoformat() if t.finished_at else None),
                _cell(duration_seconds(t)),
            ]
        )
    return out.getvalue()
