"""Repository functions: every query the service makes, in one place, on a given session.

Functions that take `lock=True` select the row FOR UPDATE (PostgreSQL; a no-op on SQLite,
where the write session already holds the database's single write lock).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.domain import AttemptOutcome, Direction, Role, StudyState, TrialState
from service.errors import Conflict, NotFound
from service.records import WorkerInfo
from service.store.models import (
    ApiToken,
    Artifact,
    Study,
    Trial,
    TrialAttempt,
    TrialValue,
    Worker,
    utcnow,
)
from service.trialquery import Condition, sort_key

# ---- studies ------------------------------------------------------------------------------


def add_study(session: Session, study: Study) -> Study:
    """Inserts a study; raises Conflict when the name is taken."""
    existing = session.scalar(select(Study.id).where(Study.name == study.name))
    if existing is not None:
        raise Conflict(f"a study named {study.name!r} already exists (id {existing})")
    session.add(study)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"a study named {study.name!r} already exists") from None
    return study


def get_study(
    session: Session, study_id: int, *, lock: bool = False, skip_locked: bool = False
) -> Study:
    stmt = select(Study).where(Study.id == study_id)
    if lock:
        stmt = stmt.with_for_update(skip_locked=skip_locked)
    study = session.scalar(stmt)
    if study is None:
        if skip_locked and session.scalar(select(Study.id).where(Study.id == study_id)):
            raise Conflict(f"study {study_id} is locked")
        raise NotFound(f"study {study_id} not found")
    return study


def delete_study(session: Session, study: Study) -> list[int]:
    """Deletes the study with its trials, attempts, values and artifact rows (the foreign
    keys cascade); workers busy with one of its trials become idle. Returns the deleted
    trials' ids (their artifact files are the caller's to remove)."""
    trial_ids = list(session.scalars(select(Trial.id).where(Trial.study_id == study.id)).all())
    busy = session.scalars(select(Worker.id).where(Worker.current_trial_id.in_(trial_ids))).all()
    for worker_id in busy:
        worker_finished_trial(session, worker_id, counted=False)
    session.execute(delete(Study).where(Study.id == study.id))
    session.expunge(study)
    return trial_ids


def find_study_by_name(session: Session, name: str) -> Study | None:
    return session.scalar(select(Study).where(Study.name == name))


def list_studies(
    session: Session, *, offset: int, limit: int, state: StudyState | None = None
) -> tuple[list[Study], int]:
    where: list[ColumnElement[bool]] = []
    if state is not None:
        where.append(Study.state == state)
    count = session.scalar(select(func.count()).select_from(Study).where(*where)) or 0
    rows = session.scalars(
        select(Study).where(*where).order_by(Study.id.desc()).offset(offset).limit(limit)
    ).all()
    return list(rows), count


def trial_counts(session: Session, study_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    ids = list(study_ids)
    out: dict[int, dict[str, int]] = {i: {s.value: 0 for s in TrialState} for i in ids}
    if not ids:
        return out
    rows = session.execute(
        select(Trial.study_id, Trial.state, func.count())
        .where(Trial.study_id.in_(ids))
        .group_by(Trial.study_id, Trial.state)
    ).all()
    for study_id, state, n in rows:
        out[study_id][state] = n
    return out


def count_in_states(session: Session, study_id: int, states: Sequence[TrialState]) -> int:
    """Trials of the study in `states`; reads only those rows' index entries."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Trial)
            .where(Trial.study_id == study_id, Trial.state.in_(list(states)))
        )
        or 0
    )


def best_trial(session: Session, study: Study) -> Trial | None:
    order = Trial.value.desc() if study.direction == Direction.MAXIMIZE else Trial.value.asc()
    return session.scalar(
        select(Trial)
        .where(
            Trial.study_id == study.id,
            Trial.state == TrialState.COMPLETE,
            Trial.value.is_not(None),
            or_(Trial.feasible.is_(None), Trial.feasible.is_(True)),
        )
        .order_by(order, Trial.number.asc())
        .limit(1)
    )


def runnable_studies(
    session: Session, objectives: Sequence[str] | None, now: datetime
) -> list[tuple[int, int]]:
    """(study id, running trials) of running, worker-evaluated studies, least busy first;
    studies set aside (their suggestions failed) until their retry time are left out."""
    running = (
        select(Trial.study_id, func.count().label("n"))
        .where(Trial.state == TrialState.RUNNING)
        .group_by(Trial.study_id)
        .subquery()
    )
    stmt = (
        select(Study.id, func.coalesce(running.c.n, 0))
        .outerjoin(running, running.c.study_id == Study.id)
        .where(
            Study.state == StudyState.RUNNING,
            Study.objective != "external",
            or_(Study.suggest_retry_at.is_(None), Study.suggest_retry_at <= now),
        )
        .order_by(func.coalesce(running.c.n, 0).asc(), Study.id.asc())
    )
    if objectives is not None:
        stmt = stmt.where(Study.objective.in_(list(objectives)))
    return [(int(i), int(n)) for i, n in session.execute(stmt).all()]


# ---- trials -------------------------------------------------------------------------------


def get_trial(session: Session, trial_id: int, *, lock: bool = False) -> Trial:
    stmt = select(Trial).where(Trial.id == trial_id)
    if lock:
        stmt = stmt.with_for_update()
    trial = session.scalar(stmt)
    if trial is None:
        raise NotFound(f"trial {trial_id} not found")
    return trial


def list_trials(
    session: Session,
    study_id: int,
    *,
    states: Sequence[TrialState] | None = None,
    offset: int = 0,
    limit: int | None = 100,
    order: str = "number",
    descending: bool = False,
    conditions: Sequence[Condition] = (),
    order_param: str | None = None,
    numeric: frozenset[str] = frozenset(),
) -> tuple[list[Trial], int]:
    """One page of a study's trials and how many match (service.trialquery's rules).

    Conditions on the value and on the `numeric` parameters, and an order by one of those
    (`order="param"`), run in SQL; other parameter conditions and orders read the matching
    trials' parameters and sort in Python. `limit` None: every matching trial."""
    where: list[ColumnElement[bool]] = [Trial.study_id == study_id]
    if states:
        where.append(Trial.state.in_(list(states)))
    in_python: list[Condition] = []
    for c in conditions:
        in_sql = c.param is None or (c.param in numeric and c.op != "=")
        if not in_sql:
            in_python.append(c)
            continue
        subject = Trial.value if c.param is None else Trial.params[c.param].as_float()
        where.append(subject >= c.operand if c.op == ">=" else subject <= c.operand)
    if order == "param" and order_param in numeric:
        number = Trial.params[order_param].as_float()
        ordering = [number.is_(None).asc(), number.desc() if descending else number.asc()]
    elif order == "param":
        ordering = [Trial.number.asc()]
    else:
        column = {
            "number": Trial.number,
            "value": Trial.value,
            "state": Trial.state,
            "updated_at": Trial.updated_at,
            "started_at": Trial.started_at,
            "finished_at": Trial.finished_at,
        }[order]
        ordering = [column.desc() if descending else column.asc()]
    sort_here = order == "param" and order_param not in numeric
    if not in_python and not sort_here:
        count = session.scalar(select(func.count()).select_from(Trial).where(*where)) or 0
        rows = session.scalars(
            select(Trial)
            .where(*where)
            .order_by(*ordering, Trial.number.asc())
            .offset(offset)
            .limit(limit)
        ).all()
        return list(rows), count
    found = session.execute(
        select(Trial.id, Trial.params).where(*where).order_by(*ordering, Trial.number.asc())
    ).all()
    kept = [r for r in found if all(c.accepts(r.params, None) for c in in_python)]
    if sort_here and order_param is not None:
        key = sort_key(order_param)
        present = [r for r in kept if order_param in r.params]
        present.sort(key=lambda r: key(r.params), reverse=descending)  # stable either way
        kept = present + [r for r in kept if order_param not in r.params]
    page = [r.id for r in kept[offset : None if limit is None else offset + limit]]
    by_id: dict[int, Trial] = {}
    for start in range(0, len(page), 500):
        chunk = page[start : start + 500]
        by_id.update((t.id, t) for t in session.scalars(select(Trial).where(Trial.id.in_(chunk))))
    return [by_id[i] for i in page], len(kept)


def trials_in_states(session: Session, study_id: int, states: Sequence[TrialState]) -> list[Trial]:
    return list(
        session.scalars(
            select(Trial)
            .where(Trial.study_id == study_id, Trial.state.in_(list(states)))
            .order_by(Trial.number)
        ).all()
    )


def next_trial_number(session: Session, study_id: int) -> int:
    current = session.scalar(select(func.max(Trial.number)).where(Trial.study_id == study_id))
    return 0 if current is None else int(current) + 1


def claim_queued_trial(session: Session, study_id: int) -> Trial | None:
    return session.scalar(
        select(Trial)
        .where(Trial.study_id == study_id, Trial.state == TrialState.QUEUED)
        .order_by(Trial.number)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


def running_trial_of_worker(session: Session, worker_id: str, now: datetime) -> Trial | None:
    return session.scalar(
        select(Trial)
        .where(
            Trial.worker_id == worker_id,
            Trial.state == TrialState.RUNNING,
            Trial.lease_expires_at > now,
        )
        .order_by(Trial.id)
        .limit(1)
    )


def expired_trials(session: Session, now: datetime) -> list[Trial]:
    return list(
        session.scalars(
            select(Trial)
            .where(Trial.state == TrialState.RUNNING, Trial.lease_expires_at <= now)
            .with_for_update(skip_locked=True)
        ).all()
    )


def lost_attempts(session: Session, trial_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(TrialAttempt)
            .where(
                TrialAttempt.trial_id == trial_id,
                TrialAttempt.outcome == AttemptOutcome.LOST,
            )
        )
        or 0
    )


def end_attempt(
    session: Session, trial: Trial, outcome: AttemptOutcome, error: str | None, now: datetime
) -> None:
    """Closes the trial's current attempt (the one under its lease token) in one UPDATE."""
    session.execute(
        update(TrialAttempt)
        .where(TrialAttempt.trial_id == trial.id, TrialAttempt.lease_token == trial.lease_token)
        .values(outcome=outcome, ended_at=now, error=error)
        .execution_options(synchronize_session=False)
    )


def attempts(session: Session, trial_id: int) -> list[TrialAttempt]:
    return list(
        session.scalars(
            select(TrialAttempt)
            .where(TrialAttempt.trial_id == trial_id)
            .order_by(TrialAttempt.number)
        ).all()
    )


def attempts_by_trial(
    session: Session, trial_ids: Sequence[int]
) -> dict[int, list[TrialAttempt]]:
    """The attempts of many trials in one query, each trial's in order."""
    out: dict[int, list[TrialAttempt]] = {i: [] for i in trial_ids}
    if trial_ids:
        for row in session.scalars(
            select(TrialAttempt)
            .where(TrialAttempt.trial_id.in_(list(trial_ids)))
            .order_by(TrialAttempt.trial_id, TrialAttempt.number)
        ):
            out[row.trial_id].append(row)
    return out


def put_value(session: Session, trial_id: int, step: int, value: float) -> None:
    """Records the value at `step`; a repeated step overwrites (a retried report is harmless)."""
    row = session.get(TrialValue, (trial_id, step))
    if row is None:
        session.add(TrialValue(trial_id=trial_id, step=step, value=value))
    else:
        row.value = value


def values_of(session: Session, trial_ids: Sequence[int]) -> dict[int, list[tuple[int, float]]]:
    out: dict[int, list[tuple[int, float]]] = {i: [] for i in trial_ids}
    if not trial_ids:
        return out
    rows = session.execute(
        select(TrialValue.trial_id, TrialValue.step, TrialValue.value)
        .where(TrialValue.trial_id.in_(list(trial_ids)))
        .order_by(TrialValue.trial_id, TrialValue.step)
    ).all()
    for trial_id, step, value in rows:
        out[trial_id].append((step, value))
    return out


def changed_trials(session: Session, study_id: int, since: datetime) -> list[Trial]:
    return list(
        session.scalars(
            select(Trial)
            .where(Trial.study_id == study_id, Trial.updated_at > since)
            .order_by(Trial.updated_at)
            .limit(500)
        ).all()
    )


# ---- artifacts ----------------------------------------------------------------------------


def put_artifact(
    session: Session, trial_id: int, name: str, content_type: str, size: int
) -> Artifact:
    row = session.scalar(
        select(Artifact).where(Artifact.trial_id == trial_id, Artifact.name == name)
    )
    if row is None:
        row = Artifact(trial_id=trial_id, name=name, content_type=content_type, size=size)
        session.add(row)
    else:
        row.content_type, row.size, row.created_at = content_type, size, utcnow()
    session.flush()
    return row


def artifacts_of(session: Session, trial_id: int) -> list[Artifact]:
    return list(
        session.scalars(
            select(Artifact).where(Artifact.trial_id == trial_id).order_by(Artifact.name)
        ).all()
    )


def artifacts_by_trial(session: Session, trial_ids: Sequence[int]) -> dict[int, list[Artifact]]:
    """The artifacts of many trials in one query, each trial's by name."""
    out: dict[int, list[Artifact]] = {i: [] for i in trial_ids}
    if trial_ids:
        for row in session.scalars(
            select(Artifact)
            .where(Artifact.trial_id.in_(list(trial_ids)))
            .order_by(Artifact.trial_id, Artifact.name)
        ):
            out[row.trial_id].append(row)
    return out


def get_artifact(session: Session, trial_id: int, name: str) -> Artifact:
    row = session.scalar(
        select(Artifact).where(Artifact.trial_id == trial_id, Artifact.name == name)
    )
    if row is None:
        raise NotFound(f"trial {trial_id} has no artifact {name!r}")
    return row


# ---- workers ------------------------------------------------------------------------------


def touch_worker(session: Session, worker_id: str, info: WorkerInfo | None = None) -> Worker:
    """The worker's row, created on first sight, seen now. With `info` (a lease request):
    host, gpu, pid and the device fields are updated where given, and `unavailable` is set
    as given (None clears it: the worker leases again). Without (a heartbeat): only seen."""
    now = utcnow()
    worker = session.get(Worker, worker_id)
    if worker is None:
        worker = Worker(id=worker_id, started_at=now, last_seen_at=now)
        session.add(worker)
    worker.last_seen_at = now
    if info is None:
        return worker
    for attr in ("host", "gpu", "pid", "backend", "device", "device_memory_bytes"):
        if (value := getattr(info, attr)) is not None:
            setattr(worker, attr, value)
    worker.unavailable = info.unavailable
    return worker


def bind_worker(session: Session, worker_id: str, token_id: int) -> int | None:
    """The token that holds `worker_id` after this call: `token_id` when the id is new, held
    by no token, or held by a revoked one; otherwise the live token that holds it."""
    worker = session.get(Worker, worker_id, with_for_update=True)
    if worker is None:
        try:
            with session.begin_nested():  # another server may insert the same id first
                session.add(Worker(id=worker_id, token_id=token_id))
            return token_id
        except IntegrityError:
            worker = session.get(Worker, worker_id, with_for_update=True, populate_existing=True)
            assert worker is not None
    if worker.token_id is None or not token_is_live(session, worker.token_id):
        worker.token_id = token_id
    return worker.token_id


def worker_token(session: Session, worker_id: str) -> tuple[int | None, bool] | None:
    """(the token holding `worker_id`, whether that token is live); None for an unknown id."""
    row = session.execute(
        select(Worker.token_id, ApiToken.revoked_at)
        .outerjoin(ApiToken, ApiToken.id == Worker.token_id)
        .where(Worker.id == worker_id)
    ).first()
    if row is None:
        return None
    token_id, revoked_at = row
    return token_id, token_id is not None and revoked_at is None


def worker_finished_trial(session: Session, worker_id: str | None, *, counted: bool) -> None:
    """Closes the worker's busy interval (and counts the trial when it really ended)."""
    if worker_id is None:
        return
    worker = session.get(Worker, worker_id)
    if worker is None:
        return
    now = utcnow()
    if worker.busy_since is not None:
        worker.busy_seconds += max((now - worker.busy_since).total_seconds(), 0.0)
    worker.busy_since = None
    worker.current_trial_id = None
    worker.last_seen_at = now
    if counted:
        worker.trials_done += 1


def list_workers(session: Session) -> list[Worker]:
    return list(session.scalars(select(Worker).order_by(Worker.last_seen_at.desc())).all())


# ---- tokens -------------------------------------------------------------------------------


def find_token(session: Session, token_hash: str) -> ApiToken | None:
    return session.scalar(
        select(ApiToken).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
    )


def token_is_live(session: Session, token_id: int) -> bool:
    """True while the token exists and is not revoked (read from the database, no cache)."""
    return (
        session.scalar(
            select(ApiToken.id).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
        )
        is not None
    )


def token_name(session: Session, token_id: int) -> str | None:
    return session.scalar(select(ApiToken.name).where(ApiToken.id == token_id))


def token_by_hash(session: Session, token_hash: str) -> ApiToken | None:
    """The token with this hash, revoked or not (hashes are unique)."""
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))


def add_token(session: Session, *, name: str, role: Role, token_hash: str) -> ApiToken:
    row = ApiToken(name=name, role=role, token_hash=token_hash)
    session.add(row)
    session.flush()
    return row


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)).all())


def any_admin_token(session: Session) -> bool:
    return (
        session.scalar(
            select(ApiToken.id)
            .where(ApiToken.role == Role.ADMIN, ApiToken.revoked_at.is_(None))
            .limit(1)
        )
        is not None
    )


def revoke_token(session: Session, token_id: int) -> ApiToken:
    """Revokes one token (a revoked one stays as it was); raises NotFound."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"token {token_id} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row


def revoke_worker_tokens(session: Session, name: str) -> int:
    """Revokes every live worker token called `name` (a server minting its workers' token
    anew); returns how many."""
    result = session.execute(
        update(ApiToken)
        .where(
            ApiToken.name == name,
            ApiToken.role == Role.WORKER,
            ApiToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def to_plain(value: Any) -> Any:
    """Converts numpy scalars (e.g. from a peer optimizer) to JSON-safe Python values."""
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        return value.item()
    return value
