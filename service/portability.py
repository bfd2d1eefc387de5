"""Study export and import: one JSON document with a study, its trials, their intermediate
values, attempts and artifacts' metadata; e.g. to move a study from SQLite to PostgreSQL.

Import rules: ids are new (trial numbers are kept); a trial that was RUNNING when exported
comes back QUEUED (its lease belonged to the old server); artifacts come back as metadata
only (their files stay where they were); `warm_start` is not exported, since its source
studies have other ids in another database.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from service.core import machine
from service.domain import AttemptOutcome, Direction, StopKind, StudyState, TrialState
from service.errors import InvalidRequest
from service.schemas import NAME_PATTERN, StudyCreate, from_row
from service.space import SearchSpace
from service.store import repository as repo
from service.store.db import Database
from service.store.models import Artifact, TrialAttempt, TrialValue

FORMAT: Literal["tunesmith-study"] = "tunesmith-study"
MAX_TRIALS = 100_000
MAX_INT = 2**31 - 1


def _utc(value: datetime) -> datetime:
    """Aware UTC; a time that cannot be expressed in UTC (e.g. year 1 at +05:00) is refused."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is out of range") from None


Timestamp = Annotated[datetime, AfterValidator(_utc)]
Int32 = Annotated[int, Field(ge=0, le=MAX_INT)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)


class ExportedAttempt(_Doc):
    number: int = Field(ge=1, le=MAX_INT)
    worker_id: str | None = Field(default=None, max_length=200)
    outcome: AttemptOutcome
    error: str | None = None
    started_at: Timestamp
    ended_at: Timestamp | None = None


class ExportedArtifact(_Doc):
    name: str = Field(min_length=1, max_length=500)
    content_type: str = Field(max_length=100)
    size: int = Field(ge=0, le=MAX_INT)


class ExportedTrial(_Doc):
    number: int = Field(ge=0, le=MAX_INT)
    params: dict[str, Any]
    state: TrialState
    value: float | None = Field(default=None, allow_inf_nan=False)
    step: Int32 | None = None
    seed: int = Field(ge=0, le=2**31 - 1)
    attempt: int = Field(default=0, ge=0, le=MAX_INT)
    source: str = Field(default="imported", max_length=32)
    suggestion: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    created_at: Timestamp
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    values: list[tuple[Int32, FiniteFloat]] = Field(default_factory=list)
    attempts: list[ExportedAttempt] = Field(default_factory=list)
    artifacts: list[ExportedArtifact] = Field(default_factory=list)


class ExportedStudy(_Doc):
    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    objective: str = Field(min_length=1, max_length=200)
    objective_args: dict[str, Any]
    metric: str
    direction: Direction
    space: dict[str, Any]
    strategy: dict[str, Any]
    budget: dict[str, Any]
    pruning: dict[str, Any] | None = None
    stopping: dict[str, Any] | None = None
    seed: int = Field(ge=0, le=2**31 - 1)
    state: StudyState
    stop_kind: StopKind | None = None
    stop_reason: str | None = None
    warnings: list[str] = Field(default_factory=list)
    strategy_state: dict[str, Any] = Field(default_factory=dict)
    created_at: Timestamp
    finished_at: Timestamp | None = None


class StudyDocument(_Doc):
    format: Literal["tunesmith-study"] = FORMAT
    version: Literal[1] = 1
    study: ExportedStudy
    trials: list[ExportedTrial] = Field(max_length=MAX_TRIALS)


def export_study(db: Database, study_id: int) -> StudyDocument:
    with db.read() as session:
        study = repo.get_study(session, study_id)
        trials = repo.trials_in_states(session, study_id, list(TrialState))
        ids = [t.id for t in trials]
        values = repo.values_of(session, ids)
        attempts = repo.attempts_by_trial(session, ids)
        artifacts = repo.artifacts_by_trial(session, ids)
        exported = [
            from_row(
                ExportedTrial,
                t,
                values=values[t.id],
                attempts=attempts[t.id],
                artifacts=artifacts[t.id],
            )
            for t in trials
        ]
        return StudyDocument(study=ExportedStudy.model_validate(study), trials=exported)


def _validate(doc: StudyDocument, name: str) -> SearchSpace:
    """Checks the document as a study specification would be checked, plus its trials."""
    s = doc.study
    try:
        StudyCreate.model_validate(
            {
                "name": name,
                "objective": "external",
                "space": s.space,
                "strategy": s.strategy,
                "budget": s.budget,
                "pruning": s.pruning,
                "stopping": s.stopping,
                "direction": s.direction,
                "metric": s.metric,
            }
        )
    except ValidationError as exc:
        raise InvalidRequest.from_validation(exc, prefix="study") from None
    space = SearchSpace.from_spec(s.space, field="study.space")
    numbers: set[int] = set()
    for i, t in enumerate(doc.trials):
        space.validate(t.params, field=f"trials.{i}.params")
        if t.number in numbers:
            raise InvalidRequest(
                f"trials.{i}.number: {t.number} appears twice", field=f"trials.{i}"
            )
        numbers.add(t.number)
        for what, keys in (
            ("values", [step for step, _ in t.values]),
            ("attempts", [a.number for a in t.attempts]),
            ("artifacts", [a.name for a in t.artifacts]),
        ):
            twice = sorted((k for k, n in Counter(keys).items() if n > 1), key=str)
            if twice:
                raise InvalidRequest(
                    f"trials.{i}.{what}: {twice[0]!r} appears twice", field=f"trials.{i}.{what}"
                )
    return space


def import_study(
    db: Database,
    doc: StudyDocument,
    *,
    name: str | None = None,
    owner_token_id: int | None = None,
) -> int:
    """Stores the document as a new study; returns its id. Raises Conflict on a taken name.

    The imported study belongs to `owner_token_id` and its name (the importer), never to
    the exporting server's tokens."""
    s = doc.study
    new_name = name or s.name
    _validate(doc, new_name)
    with db.write() as session:
        study = repo.add_study(
            session,
            machine.imported_study(
                s.state,
                s.stop_kind,
                name=new_name,
                objective=s.objective,
                objective_args=s.objective_args,
                metric=s.metric,
                direction=s.direction,
                space=s.space,
                strategy=s.strategy,
                budget=s.budget,
                pruning=s.pruning,
                stopping=s.stopping,
                warm_start=None,
                seed=s.seed,
                stop_reason=s.stop_reason,
                warnings=list(s.warnings),
                strategy_state=s.strategy_state,
                created_at=s.created_at,
                finished_at=s.finished_at,
                owner_token_id=owner_token_id,
                owner_name=None if owner_token_id is None else repo.token_name(
                    session, owner_token_id
                ),
            ),
        )
        for t in doc.trials:
            trial = machine.imported_trial(
                study,
                t.state,
                number=t.number,
                params=t.params,
                value=t.value,
                step=t.step,
                seed=t.seed,
                attempt=t.attempt,
                source=t.source,
                suggestion=t.suggestion,
                error=t.error,
                created_at=t.created_at,
                started_at=t.started_at,
                finished_at=t.finished_at,
            )
            session.add(trial)
            session.flush()
            for step, value in t.values:
                session.add(TrialValue(trial_id=trial.id, step=step, value=value))
            for a in t.attempts:
                running = a.outcome is AttemptOutcome.RUNNING
                session.add(
                    TrialAttempt(
                        trial_id=trial.id,
                        number=a.number,
                        worker_id=a.worker_id,
                        lease_token=f"imported-{a.number}",
                        outcome=AttemptOutcome.RELEASED if running else a.outcome,
                        error=a.error,
                        started_at=a.started_at,
                        ended_at=a.ended_at or s.created_at,
                    )
                )
            for art in t.artifacts:
                session.add(
                    Artifact(
                        trial_id=trial.id,
                        name=art.name,
                        content_type=art.content_type,
                        size=art.size,
                    )
                )
        return study.id
