"""A study's Pareto front: its feasible completed trials that no other one dominates."""

from __future__ import annotations

import math
from collections.abc import Sequence

from service.domain import Direction, TrialState
from service.optimizer.pareto import nondominated, to_minimized
from service.records import TrialRecord


def front_candidates(trials: Sequence[TrialRecord], n_objectives: int) -> list[TrialRecord]:
    """Completed, feasible trials with one finite value per objective, in trial order."""
    return [
        t
        for t in trials
        if t.state == TrialState.COMPLETE
        and t.feasible is not False
        and t.values is not None
        and len(t.values) == n_objectives
        and all(isinstance(v, int | float) and math.isfinite(v) for v in t.values)
    ]


def pareto_front(
    trials: Sequence[TrialRecord], directions: Sequence[Direction]
) -> list[TrialRecord]:
    """The non-dominated trials among `front_candidates`, by trial number; equal value
    vectors all stay on the front."""
    rows = front_candidates(trials, len(directions))
    if not rows:
        return []
    keep = nondominated(to_minimized([t.values or [] for t in rows], directions))
    return [t for t, k in zip(rows, keep, strict=True) if k]
