"""The store's reader: read-only queries that return plain records (service.records).

The scheduler, the policies (pruning, stopping, warm start) and the dashboard's insights get
their data here, as Vizier's designers get theirs through `PolicySupporter.GetTrials`; none
of them runs SQL of its own. Each function is one query that reads only the columns its
callers need. Writes and row access for the state machine stay in `repository`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, ColumnElement, func, literal, select
from sqlalchemy.orm import Session

from service.domain import FINISHED_STATES, TrialState
from service.records import CompletedTrial, FinishedTrial, StudyRef, StudyTally, TrialRecord
from service.store.models import Study, Trial, TrialValue


def trial_history(
    session: Session, study_id: int, *, with_suggestion: bool = False
) -> list[TrialRecord]:
    """Every trial of the study by number. `with_suggestion` also reads why each was
    suggested (the dashboard's columns; a strategy does not need it)."""
    suggestion = Trial.suggestion if with_suggestion else literal(None, JSON)
    rows = session.execute(
        select(
            Trial.id,
            Trial.number,
            Trial.state,
            Trial.params,
            Trial.value,
            Trial.step,
            suggestion,
            Trial.values,
            Trial.feasible,
            Trial.metrics,
        )
        .where(Trial.study_id == study_id)
        .order_by(Trial.number)
    ).all()
    return [
        TrialRecord(i, n, s, p or {}, v, st, g or {}, vs, f, m)
        for i, n, s, p, v, st, g, vs, f, m in rows
    ]


def trial_params(session: Session, study_id: int, *, min_number: int) -> list[dict[str, Any]]:
    """The configurations of the study's trials numbered `min_number` and up."""
    stmt = select(Trial.params).where(Trial.study_id == study_id, Trial.number >= min_number)
    return [p or {} for p in session.scalars(stmt).all()]


def study_tally(session: Session, study_id: int) -> StudyTally:
    """A `StudyTally` from one aggregate query (the lease path reads it under the study lock,
    where every statement saved shortens the time other leases wait)."""
    running, queued, total, highest = session.execute(
        select(
            func.count().filter(Trial.state == TrialState.RUNNING),
            func.count().filter(Trial.state == TrialState.QUEUED),
            func.count(),
            func.max(Trial.number),
        ).where(Trial.study_id == study_id)
    ).one()
    return StudyTally(
        int(running), int(queued), int(total), 0 if highest is None else int(highest) + 1
    )


def values_at_step(
    session: Session, study_id: int, step: int, states: Sequence[TrialState]
) -> list[float]:
    """The finite values that the study's trials in `states` reported at `step`."""
    rows = session.scalars(
        select(TrialValue.value)
        .join(Trial, Trial.id == TrialValue.trial_id)
        .where(Trial.study_id == study_id, Trial.state.in_(states), TrialValue.step == step)
    ).all()
    return [v for v in rows if math.isfinite(v)]


def trial_values(session: Session, trial_id: int, *, up_to: int) -> list[tuple[int, float]]:
    """The trial's (step, value) pairs up to `up_to`, in step order."""
    rows = session.execute(
        select(TrialValue.step, TrialValue.value)
        .where(TrialValue.trial_id == trial_id, TrialValue.step <= up_to)
        .order_by(TrialValue.step)
    ).all()
    return [(int(s), float(v)) for s, v in rows]


def finished_values(session: Session, study_id: int) -> list[float | None]:
    """Finished trials' values in the order they finished (None for pruned and failed
    trials): what the target and patience rules read."""
    rows = session.execute(
        select(Trial.state, Trial.value)
        .where(Trial.study_id == study_id, Trial.state.in_(FINISHED_STATES))
        .order_by(func.coalesce(Trial.finished_at, Trial.created_at), Trial.number)
    ).all()
    return [value if state == TrialState.COMPLETE else None for state, value in rows]


def completed_trials(session: Session, study_ids: Sequence[int]) -> dict[int, list[CompletedTrial]]:
    """Completed trials with finite values per study, in `study_ids` order, each study's in
    trial order (the model subsamples large studies with a seeded generator, so the order
    must not vary between calls). Only the columns needed are read: this runs on every
    suggestion of a warm-started study."""
    out: dict[int, list[CompletedTrial]] = {i: [] for i in study_ids}
    if not study_ids:
        return out
    rows = session.execute(
        select(Trial.study_id, Trial.params, Trial.value, Trial.values)
        .where(
            Trial.study_id.in_(list(study_ids)),
            Trial.state == TrialState.COMPLETE,
            Trial.value.is_not(None),
        )
        .order_by(Trial.study_id, Trial.number)
    ).all()
    for study_id, params, value, values in rows:
        if value is not None and math.isfinite(value):
            vector = tuple(float(v) for v in values) if values else None
            out[study_id].append(CompletedTrial(params, float(value), vector))
    return out


def study_ref(session: Session, ref: int | str) -> StudyRef | None:
    """A study named by id (an int) or by name (a string)."""
    column: ColumnElement[bool] = Study.id == ref if isinstance(ref, int) else Study.name == ref
    row = session.execute(select(Study.id, Study.objective, Study.direction).where(column)).first()
    return None if row is None else StudyRef(row[0], row[1], row[2])


def curve_trial_ids(session: Session, study_id: int, *, recent: int) -> list[int]:
    """Every running trial of the study and the `recent` latest others that reported a
    value: whose learning curves the dashboard draws."""
    running = session.scalars(
        select(Trial.id).where(Trial.study_id == study_id, Trial.state == TrialState.RUNNING)
    ).all()
    latest = session.scalars(
        select(Trial.id)
        .where(
            Trial.study_id == study_id,
            Trial.step.is_not(None),
            Trial.state != TrialState.RUNNING,
        )
        .order_by(Trial.number.desc())
        .limit(recent)
    ).all()
    return sorted({*running, *latest})


def trials_by_id(session: Session, trial_ids: Sequence[int]) -> list[TrialRecord]:
    """The trials with these ids, by number."""
    if not trial_ids:
        return []
    rows = session.execute(
        select(Trial.id, Trial.number, Trial.state, Trial.params, Trial.value, Trial.step)
        .where(Trial.id.in_(list(trial_ids)))
        .order_by(Trial.number)
    ).all()
    return [TrialRecord(i, n, s, p or {}, v, st) for i, n, s, p, v, st in rows]


def last_finished(session: Session, study_id: int, n: int) -> list[FinishedTrial]:
    """The study's `n` most recently finished trials, newest first."""
    rows = session.execute(
        select(Trial.state, Trial.error)
        .where(Trial.study_id == study_id, Trial.state.in_(FINISHED_STATES))
        .order_by(func.coalesce(Trial.finished_at, Trial.created_at).desc(), Trial.number.desc())
        .limit(n)
    ).all()
    return [FinishedTrial(state, error) for state, error in rows]
