"""Presenters: ORM rows to the public schemas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from service.schemas import (
    ArtifactPublic,
    AttemptPublic,
    BestTrial,
    StudyPublic,
    TrialDetail,
    TrialLeased,
    TrialPublic,
    TrialValuePublic,
    WorkerPublic,
)
from service.store import repository as repo
from service.store.models import Study, Trial, Worker, utcnow

API_PREFIX = "/api/v1"


def study_public(
    session: Session, study: Study, counts: dict[str, int] | None = None
) -> StudyPublic:
    if counts is None:
        counts = repo.trial_counts(session, [study.id])[study.id]
    best = repo.best_trial(session, study)
    return StudyPublic(
        id=study.id,
        name=study.name,
        objective=study.objective,
        objective_args=study.objective_args,
        metric=study.metric,
        direction=study.direction,  # type: ignore[arg-type]
        space=study.space,
        strategy=study.strategy,
        budget=study.budget,
        pruning=study.pruning,
        stopping=study.stopping,
        warm_start=study.warm_start,
        seed=study.seed,
        state=study.state,  # type: ignore[arg-type]
        stop_reason=study.stop_reason,
        warnings=list(study.warnings),
        counts=counts,
        n_trials=sum(counts.values()),
        best=None
        if best is None or best.value is None
        else BestTrial(trial_id=best.id, number=best.number, value=best.value, params=best.params),
        created_at=study.created_at,
        updated_at=study.updated_at,
        finished_at=study.finished_at,
    )


def _duration(trial: Trial) -> float | None:
    if trial.started_at is None:
        return None
    end: datetime = trial.finished_at or utcnow()
    return max((end - trial.started_at).total_seconds(), 0.0)


def trial_public(trial: Trial) -> TrialPublic:
    return TrialPublic(
        id=trial.id,
        study_id=trial.study_id,
        number=trial.number,
        state=trial.state,  # type: ignore[arg-type]
        params=trial.params,
        value=trial.value,
        step=trial.step,
        seed=trial.seed,
        attempt=trial.attempt,
        source=trial.source,
        suggestion=trial.suggestion,
        worker_id=trial.worker_id,
        error=trial.error,
        created_at=trial.created_at,
        started_at=trial.started_at,
        finished_at=trial.finished_at,
        lease_expires_at=trial.lease_expires_at,
        duration_seconds=_duration(trial),
    )


def trial_leased(trial: Trial) -> TrialLeased:
    assert trial.lease_token is not None
    return TrialLeased(**trial_public(trial).model_dump(), lease_token=trial.lease_token)


def trial_detail(session: Session, trial: Trial) -> TrialDetail:
    values = repo.values_of(session, [trial.id])[trial.id]
    return TrialDetail(
        **trial_public(trial).model_dump(),
        values=[TrialValuePublic(step=s, value=v) for s, v in values],
        attempts=[
            AttemptPublic(
                number=a.number,
                worker_id=a.worker_id,
                outcome=a.outcome,
                error=a.error,
                started_at=a.started_at,
                ended_at=a.ended_at,
            )
            for a in repo.attempts(session, trial.id)
        ],
        artifacts=[
            ArtifactPublic(
                name=a.name,
                content_type=a.content_type,
                size=a.size,
                created_at=a.created_at,
                url=f"{API_PREFIX}/trials/{trial.id}/artifacts/{a.name}",
            )
            for a in repo.artifacts_of(session, trial.id)
        ],
    )


def worker_public(worker: Worker) -> WorkerPublic:
    now = utcnow()
    busy = worker.busy_seconds
    if worker.busy_since is not None:
        busy += max((now - worker.busy_since).total_seconds(), 0.0)
    alive = max((now - worker.started_at).total_seconds(), 1e-9)
    return WorkerPublic(
        id=worker.id,
        host=worker.host,
        gpu=worker.gpu,
        pid=worker.pid,
        current_trial_id=worker.current_trial_id,
        trials_done=worker.trials_done,
        busy_seconds=busy,
        busy_fraction=min(busy / alive, 1.0),
        started_at=worker.started_at,
        last_seen_at=worker.last_seen_at,
    )
