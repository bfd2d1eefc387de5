"""A trial's final result judged against its study: how many values it must carry, which
metrics its constraints need, and whether it is feasible.

Rules:
- A study with one objective takes `value`; one with several takes `values`, one finite
  number per objective in the study's order (the first is also stored as `value`, so
  everything that reads one metric, stopping rules included, reads the first objective).
- With constraints, `metrics` must name every constrained metric; the trial is feasible when
  every constraint holds. Without constraints `feasible` stays None.
- `merge_metrics`: reports may send metrics as they go; the latest value of each wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.errors import InvalidRequest
from service.specs import parse_constraints, parse_objectives
from service.store.models import Study, Trial


@dataclass(frozen=True)
class Result:
    """What a completed trial stores."""

    value: float
    values: list[float] | None
    metrics: dict[str, float] | None
    feasible: bool | None


def judge(
    study: Study,
    trial: Trial,
    *,
    value: float | None,
    values: Sequence[float] | None,
    metrics: Mapping[str, float] | None,
) -> Result:
    """The result to store; raises InvalidRequest naming `value`, `values` or `metrics`."""
    objectives = parse_objectives(study.objectives)
    if objectives:
        if value is not None:
            raise InvalidRequest(
                f"value: study {study.id} has {len(objectives)} objectives: send `values`",
                field="value",
            )
        if values is None:
            raise InvalidRequest(
                f"values: study {study.id} has {len(objectives)} objectives "
                f"({', '.join(o.metric for o in objectives)}): send `values`, not `value`",
                field="values",
            )
        if len(values) != len(objectives):
            raise InvalidRequest(
                f"values: expected {len(objectives)} values (one per objective), "
                f"got {len(values)}",
                field="values",
            )
        first = float(values[0])
    else:
        if values is not None:
            raise InvalidRequest(
                f"values: study {study.id} has one objective ({study.metric}): send `value`",
                field="values",
            )
        if value is None:
            raise InvalidRequest(
                f"value: study {study.id} has one objective ({study.metric}): send `value`",
                field="value",
            )
        first = float(value)
    merged = merge_metrics(trial.metrics, metrics)
    constraints = parse_constraints(study.constraints)
    feasible: bool | None = None
    if constraints:
        missing = sorted({c.metric for c in constraints} - set(merged or {}))
        if missing:
            raise InvalidRequest(
                f"metrics: the study's constraints need {', '.join(missing)}",
                field=f"metrics.{missing[0]}",
            )
        assert merged is not None
        feasible = all(c.holds(merged[c.metric]) for c in constraints)
    return Result(
        first, None if values is None else [float(v) for v in values], merged, feasible
    )


def merge_metrics(
    stored: Mapping[str, Any] | None, new: Mapping[str, float] | None
) -> dict[str, float] | None:
    """`stored` updated by `new` (None when both are empty)."""
    if not stored and not new:
        return None
    return {**(stored or {}), **(new or {})}
