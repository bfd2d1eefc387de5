"""Presenters: stored rows to the public schemas, through `from_row`.

Each response model reads the row's attributes (`schemas.from_row`); only the fields that are
not columns (counts, the best trial, durations, URLs, busy fractions) are computed here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from service.core.advice import study_advice
from service.policies.pareto import pareto_front
from service.schemas import (
    ArtifactPublic,
    AttemptPublic,
    BestTrial,
    ParetoTrial,
    StudyPublic,
    TokenPublic,
    TrialDetail,
    TrialLeased,
    TrialPublic,
    TrialValuePublic,
    WorkerPublic,
    from_row,
)
from service.specs import parse_objectives
from service.store import reader
from service.store import repository as repo
from service.store.models import ApiToken, Artifact, Study, Trial, Worker, utcnow

API_PREFIX = "/api/v1"


def study_public(
    session: Session, study: Study, counts: dict[str, int] | None = None
) -> StudyPublic:
    if counts is None:
        counts = repo.trial_counts(session, [study.id])[study.id]
    pareto: list[ParetoTrial] | None = None
    if study.objectives:
        best = None
        directions = [o.direction for o in parse_objectives(study.objectives)]
        front = pareto_front(reader.trial_history(session, study.id), directions)
        pareto = [
            ParetoTrial(trial_id=t.id, number=t.number, values=t.values or [], params=t.params)
            for t in front
        ]
    else:
        best = repo.best_trial(session, study)
    return from_row(
        StudyPublic,
        study,
        counts=counts,
        n_trials=sum(counts.values()),
        owner=study.owner_name,
        warnings=[*study.warnings, *study_advice(study)],
        best=None if best is None else from_row(BestTrial, best, trial_id=best.id),
        pareto=pareto,
    )


def duration_seconds(trial: Trial) -> float | None:
    """Started to finished (or to now while it runs); None before it starts."""
    if trial.started_at is None:
        return None
    end: datetime = trial.finished_at or utcnow()
    return max((end - trial.started_at).total_seconds(), 0.0)


def trial_public(trial: Trial) -> TrialPublic:
    return from_row(
        TrialPublic, trial, duration_seconds=duration_seconds(trial), objective_values=trial.values
    )


def trial_leased(trial: Trial) -> TrialLeased:
    assert trial.lease_token is not None
    return from_row(
        TrialLeased, trial, duration_seconds=duration_seconds(trial), objective_values=trial.values
    )


def artifact_public(artifact: Artifact) -> ArtifactPublic:
    url = f"{API_PREFIX}/trials/{artifact.trial_id}/artifacts/{artifact.name}"
    return from_row(ArtifactPublic, artifact, url=url)


def trial_detail(session: Session, trial: Trial) -> TrialDetail:
    values = repo.values_of(session, [trial.id])[trial.id]
    return from_row(
        TrialDetail,
        trial,
        duration_seconds=duration_seconds(trial),
        objective_values=trial.values,
        values=[TrialValuePublic(step=s, value=v) for s, v in values],
        attempts=[AttemptPublic.model_validate(a) for a in repo.attempts(session, trial.id)],
        artifacts=[artifact_public(a) for a in repo.artifacts_of(session, trial.id)],
    )


def worker_public(worker: Worker) -> WorkerPublic:
    now = utcnow()
    busy = worker.busy_seconds
    if worker.busy_since is not None:
        busy += max((now - worker.busy_since).total_seconds(), 0.0)
    alive = max((now - worker.started_at).total_seconds(), 1e-9)
    return from_row(
        WorkerPublic, worker, busy_seconds=busy, busy_fraction=min(busy / alive, 1.0)
    )


def token_public(token: ApiToken) -> TokenPublic:
    return TokenPublic.model_validate(token)
