"""Study export and import: one JSON document with a study, its trials, their intermediate
values, attempts and artifacts' metadata; e.g. to move a study from SQLite to PostgreSQL.

Import rules: the document is checked as a study specification for its objective would be
(a registered objective and arguments its schema accepts, or `external`), plus its trials;
ids are new (trial numbers are kept); a trial that was RUNNING when exported comes back
QUEUED (its lease belonged to the old server); artifacts come back as metadata only (their
files stay where they were); `warm_start` is not exported, since its source studies have
other ids in another database. Trials are written in batches of `IMPORT_BATCH`, each its own
short transaction (the study is PAUSED with the reason "importing" meanwhile, and removed
again when a batch fails), so a large import never holds the database's write lock for long.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from service.core import machine
from service.core.studies import resolve_objective
from service.domain import AttemptOutcome, Direction, StopKind, StudyState, TrialState
from service.errors import InvalidRequest
from service.schemas import (
    MAX_METRICS,
    MAX_NOTES_CHARS,
    NAME_PATTERN,
    FreeJSON,
    StudyCreate,
    bounded_json,
    from_row,
)
from service.space import SearchSpace
from service.specs import MAX_OBJECTIVES, ConstraintSpec, ObjectiveSpec
from service.store import repository as repo
from service.store.db import Database
from service.store.models import Artifact, Study, TrialAttempt, TrialValue

FORMAT: Literal["tunesmith-study"] = "tunesmith-study"
MAX_TRIALS = 100_000
MAX_INT = 2**31 - 1
# Numbers and attempts leave room below the 32-bit columns for the trials and attempts that
# the study adds later (a next number of 2**31 fails on PostgreSQL).
MAX_IMPORTED_NUMBER = 2_000_000_000
IMPORT_BATCH = 500
MAX_TEXT = 4000
MAX_STATE_BYTES = 4 * 1024 * 1024


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
    number: int = Field(ge=1, le=MAX_IMPORTED_NUMBER)
    worker_id: str | None = Field(default=None, max_length=200)
    outcome: AttemptOutcome
    error: str | None = Field(default=None, max_length=MAX_TEXT)
    started_at: Timestamp
    ended_at: Timestamp | None = None


class ExportedArtifact(_Doc):
    name: str = Field(min_length=1, max_length=500)
    content_type: str = Field(max_length=100)
    size: int = Field(ge=0, le=MAX_INT)


class ExportedTrial(_Doc):
    number: int = Field(ge=0, le=MAX_IMPORTED_NUMBER)
    params: FreeJSON
    state: TrialState
    value: float | None = Field(default=None, allow_inf_nan=False)
    step: Int32 | None = None
    seed: int = Field(ge=0, le=2**31 - 1)
    attempt: int = Field(default=0, ge=0, le=MAX_IMPORTED_NUMBER)
    source: str = Field(default="imported", max_length=32)
    suggestion: FreeJSON = Field(default_factory=dict)
    error: str | None = Field(default=None, max_length=MAX_TEXT)
    created_at: Timestamp
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    values: list[tuple[Int32, FiniteFloat]] = Field(default_factory=list)
    attempts: list[ExportedAttempt] = Field(default_factory=list)
    artifacts: list[ExportedArtifact] = Field(default_factory=list)
    objective_values: list[FiniteFloat] | None = Field(default=None, max_length=MAX_OBJECTIVES)
    metrics: dict[Annotated[str, Field(max_length=200)], FiniteFloat] | None = Field(
        default=None, max_length=MAX_METRICS
    )
    feasible: bool | None = None


class ExportedStudy(_Doc):
    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    objective: str = Field(min_length=1, max_length=200)
    objective_args: FreeJSON
    metric: str = Field(min_length=1, max_length=200)
    direction: Direction
    space: FreeJSON
    strategy: FreeJSON
    budget: FreeJSON
    pruning: FreeJSON | None = None
    stopping: FreeJSON | None = None
    objectives: list[ObjectiveSpec] | None = None
    constraints: list[ConstraintSpec] | None = None
    seed: int = Field(ge=0, le=2**31 - 1)
    state: StudyState
    stop_kind: StopKind | None = None
    stop_reason: str | None = Field(default=None, max_length=MAX_TEXT)
    warnings: list[Annotated[str, Field(max_length=MAX_TEXT)]] = Field(
        default_factory=list, max_length=100
    )
    notes: str = Field(default="", max_length=MAX_NOTES_CHARS)
    strategy_state: Annotated[dict[str, Any], bounded_json(MAX_STATE_BYTES)] = Field(
        default_factory=dict
    )
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
                objective_values=t.values,
                attempts=attempts[t.id],
                artifacts=artifacts[t.id],
            )
            for t in trials
        ]
        return StudyDocument(study=ExportedStudy.model_validate(study), trials=exported)


def _validate(doc: StudyDocument, name: str) -> tuple[SearchSpace, dict[str, Any]]:
    """Checks the document as a study specification for its objective would be checked, plus
    its trials; returns the space and the objective's arguments as its schema parses them."""
    s = doc.study
    try:
        spec = StudyCreate.model_validate(
            {
                "name": name,
                "objective": s.objective,
                "objective_args": s.objective_args,
                "space": s.space,
                "strategy": s.strategy,
                "budget": s.budget,
                "pruning": s.pruning,
                "stopping": s.stopping,
                **(
                    {"objectives": [o.model_dump(mode="json") for o in s.objectives]}
                    if s.objectives
                    else {"direction": s.direction, "metric": s.metric}
                ),
                "constraints": [c.model_dump(mode="json") for c in s.constraints or []],
            }
        )
    except ValidationError as exc:
        raise InvalidRequest.from_validation(exc, prefix="study") from None
    try:
        resolved = resolve_objective(spec)
    except InvalidRequest as exc:
        field = f"study.{exc.field}" if exc.field else "study"
        raise InvalidRequest(f"study.{exc}", field=field) from None
    space = SearchSpace.from_spec(s.space, field="study.space")
    numbers: set[int] = set()
    for i, t in enumerate(doc.trials):
        space.validate(t.params, field=f"trials.{i}.params")
        if t.number in numbers:
            raise InvalidRequest(
                f"trials.{i}.number: {t.number} appears twice", field=f"trials.{i}"
            )
        numbers.add(t.number)
        k = len(s.objectives or [])
        if t.objective_values is not None and len(t.objective_values) != k:
            raise InvalidRequest(
                f"trials.{i}.objective_values: {len(t.objective_values)} values for "
                f"{k} objectives",
                field=f"trials.{i}.objective_values",
            )
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
    return space, resolved.args


def import_study(
    db: Database,
    doc: StudyDocument,
    *,
    name: str | None = None,
    owner_token_id: int | None = None,
) -> int:
    """Stores the document as a new study; returns its id. Raises InvalidRequest naming the
    field, or Conflict on a taken name.

    The imported study belongs to `owner_token_id` and its name (the importer), never to
    the exporting server's tokens."""
    s = doc.study
    _space, args = _validate(doc, name or s.name)
    with db.write() as session:
        study_id = repo.add_study(
            session,
            machine.imported_study(
                StudyState.PAUSED,
                None,
                name=name or s.name,
                objective=s.objective,
                objective_args=args,
                metric=s.metric,
                direction=s.direction,
                space=s.space,
                strategy=s.strategy,
                budget=s.budget,
                pruning=s.pruning,
                stopping=s.stopping,
                warm_start=None,
                objectives=[o.model_dump(mode="json") for o in s.objectives or []] or None,
                constraints=[c.model_dump(mode="json") for c in s.constraints or []] or None,
                seed=s.seed,
                stop_reason="importing",
                warnings=list(s.warnings),
                notes=s.notes,
                strategy_state=s.strategy_state,
                created_at=s.created_at,
                owner_token_id=owner_token_id,
                owner_name=None if owner_token_id is None else repo.token_name(
                    session, owner_token_id
                ),
            ),
        ).id
    try:
        for start in range(0, len(doc.trials), IMPORT_BATCH):
            with db.write() as session:
                study = repo.get_study(session, study_id)
                for t in doc.trials[start : start + IMPORT_BATCH]:
                    _add_trial(session, study, t)
        with db.write() as session:
            study = repo.get_study(session, study_id, lock=True)
            machine.restore_imported(study, s.state, s.stop_kind, s.stop_reason, s.finished_at)
    except BaseException:
        with db.write() as session:
            repo.delete_study(session, repo.get_study(session, study_id))
        raise
    return study_id


def _add_trial(session: Session, study: Study, t: ExportedTrial) -> None:
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
        values=t.objective_values,
        metrics=t.metrics,
        feasible=t.feasible,
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
                ended_at=a.ended_at or a.started_at,
            )
        )
    for art in t.artifacts:
        session.add(
            Artifact(trial_id=trial.id, name=art.name, content_type=art.content_type, size=art.size)
        )
