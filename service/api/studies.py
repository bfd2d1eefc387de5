"""Routes under /studies: create, list, show, act on and delete studies; their trials; ask.

Reading is open to every reader; changing a study (PATCH, pause, resume, stop, enqueue, ask,
delete) is for its owner or an admin (service.core.owners)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Query, Response, status
from fastapi.concurrency import run_in_threadpool

from service.api.deps import ContextDep, Manager, OwnedStudyId, Reader, StudyId
from service.api.errors import CONFLICT, ERROR_RESPONSES, NOT_FOUND
from service.api.trialscsv import trials_csv
from service.api.views import study_public, trial_leased, trial_public
from service.core.studies import (
    StudyAction,
    act_on_study,
    create_study,
    delete_study,
    enqueue_configuration,
    update_study,
)
from service.domain import StudyState, TrialState
from service.portability import StudyDocument, export_study, import_study
from service.schemas import (
    MAX_PAGE,
    NAME_PATTERN,
    StudiesPublic,
    StudyCreate,
    StudyPublic,
    StudyUpdate,
    SuggestionsCreate,
    SuggestionsPublic,
    TrialPublic,
    TrialsPublic,
)
from service.store import repository as repo
from service.store.models import Trial
from service.trialquery import numeric_params, parse_conditions, parse_order

R = TypeVar("R")

router = APIRouter(prefix="/studies", tags=["studies"], responses=ERROR_RESPONSES)

Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


def _show(ctx: ContextDep, study_id: int) -> StudyPublic:
    with ctx.db.read() as session:
        return study_public(session, repo.get_study(session, study_id))


@router.post(
    "", status_code=status.HTTP_201_CREATED, operation_id="create_study", responses=CONFLICT
)
def create(spec: StudyCreate, ctx: ContextDep, principal: Manager) -> StudyPublic:
    study_id = create_study(ctx.db, spec, owner_token_id=principal.token_id)
    return _show(ctx, study_id)


@router.post(
    "/import", status_code=status.HTTP_201_CREATED, operation_id="import_study", responses=CONFLICT
)
def import_(
    document: StudyDocument,
    ctx: ContextDep,
    principal: Manager,
    name: Annotated[str | None, Query(min_length=1, max_length=200, pattern=NAME_PATTERN)] = None,
) -> StudyPublic:
    """Creates a study from an exported document (all trials, values, attempts, artifacts'
    metadata); `name` renames it. The importer owns it."""
    study_id = import_study(ctx.db, document, name=name, owner_token_id=principal.token_id)
    return _show(ctx, study_id)


@router.get("", operation_id="list_studies")
def list_(
    ctx: ContextDep,
    _: Reader,
    offset: Offset = 0,
    limit: Limit = 100,
    state: StudyState | None = None,
) -> StudiesPublic:
    with ctx.db.read() as session:
        studies, count = repo.list_studies(session, offset=offset, limit=limit, state=state)
        counts = repo.trial_counts(session, [s.id for s in studies])
        return StudiesPublic(
            data=[study_public(session, s, counts[s.id]) for s in studies], count=count
        )


@router.get("/{study_id}", operation_id="get_study", responses=NOT_FOUND)
def get(study_id: StudyId, ctx: ContextDep, _: Reader) -> StudyPublic:
    return _show(ctx, study_id)


@router.patch("/{study_id}", operation_id="update_study", responses=NOT_FOUND)
def update(study_id: OwnedStudyId, body: StudyUpdate, ctx: ContextDep) -> StudyPublic:
    """Changes the budget (raising max_trials resumes a study that had used its budget up)
    and the notes (markdown, shown on the study's page)."""
    update_study(ctx.db, study_id, body)
    return _show(ctx, study_id)


@router.get("/{study_id}/export", operation_id="export_study", responses=NOT_FOUND)
def export(study_id: StudyId, ctx: ContextDep, _: Reader) -> StudyDocument:
    """The whole study as one JSON document, for `POST /studies/import` on another server."""
    return export_study(ctx.db, study_id)


def _act(ctx: ContextDep, study_id: int, action: StudyAction) -> StudyPublic:
    act_on_study(ctx.db, study_id, action)
    return _show(ctx, study_id)


@router.post("/{study_id}/pause", operation_id="pause_study", responses={**NOT_FOUND, **CONFLICT})
def pause(study_id: OwnedStudyId, ctx: ContextDep) -> StudyPublic:
    return _act(ctx, study_id, StudyAction.PAUSE)


@router.post("/{study_id}/resume", operation_id="resume_study", responses={**NOT_FOUND, **CONFLICT})
def resume(study_id: OwnedStudyId, ctx: ContextDep) -> StudyPublic:
    return _act(ctx, study_id, StudyAction.RESUME)


@router.post("/{study_id}/stop", operation_id="stop_study", responses=NOT_FOUND)
def stop(study_id: OwnedStudyId, ctx: ContextDep) -> StudyPublic:
    return _act(ctx, study_id, StudyAction.STOP)


@router.delete(
    "/{study_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="delete_study",
    responses=NOT_FOUND,
    response_class=Response,
)
def delete(study_id: OwnedStudyId, ctx: ContextDep) -> None:
    """Deletes the study with its trials, their values, attempts and artifacts (files too),
    whatever its state; workers running one of its trials get 404 on their next call.
    Studies that warm-started from it keep their own trials."""
    delete_study(ctx.db, study_id, ctx.artifacts)


Order = Annotated[
    str,
    Query(
        max_length=300,
        description="number, value, state, updated_at, started_at, finished_at or params.NAME",
    ),
]
Where = Annotated[
    list[Annotated[str, Query(max_length=300)]] | None,
    Query(
        description="Conditions, all of which a trial meets: value>=X, value<=X, "
        "params.NAME>=X, params.NAME<=X, params.NAME=X (categorical choices as text)."
    ),
]


def _matching(
    ctx: ContextDep,
    study_id: int,
    *,
    state: list[TrialState] | None,
    where: list[str] | None,
    order: str,
    descending: bool,
    offset: int = 0,
    limit: int | None = None,
    present: Callable[[list[str], list[Trial]], R],
) -> tuple[R, int]:
    """The page of matching trials as `present(parameter names, trials)` makes it (inside
    the read session), and how many match."""
    with ctx.db.read() as session:
        study = repo.get_study(session, study_id)
        names = list(study.space)
        column, param = parse_order(order, names)
        rows, count = repo.list_trials(
            session,
            study_id,
            states=state,
            offset=offset,
            limit=limit,
            order=column,
            descending=descending,
            conditions=parse_conditions(where or [], names),
            order_param=param,
            numeric=numeric_params(study.space),
        )
        return present(names, rows), count


@router.get("/{study_id}/trials", operation_id="list_trials", responses=NOT_FOUND)
def trials(
    study_id: StudyId,
    ctx: ContextDep,
    _: Reader,
    state: Annotated[list[TrialState] | None, Query()] = None,
    where: Where = None,
    offset: Offset = 0,
    limit: Limit = 100,
    order: Order = "number",
    descending: bool = False,
) -> TrialsPublic:
    """One page of the study's trials, filtered by state and by `where` conditions on the
    value and the parameters, ordered by a column or a parameter."""
    data, count = _matching(
        ctx,
        study_id,
        state=state,
        where=where,
        order=order,
        descending=descending,
        offset=offset,
        limit=limit,
        present=lambda _names, rows: [trial_public(t) for t in rows],
    )
    return TrialsPublic(data=data, count=count)


@router.get(
    "/{study_id}/trials.csv",
    operation_id="export_trials_csv",
    responses={**NOT_FOUND, 200: {"content": {"text/csv": {}}}},
    response_class=Response,
)
def trials_csv_(
    study_id: StudyId,
    ctx: ContextDep,
    _: Reader,
    state: Annotated[list[TrialState] | None, Query()] = None,
    where: Where = None,
    order: Order = "number",
    descending: bool = False,
) -> Response:
    """Every matching trial (same filters as the JSON list, no paging) as CSV: number,
    trial_id, state, value, one `params_NAME` column per parameter, step, pruned_step,
    error, worker, source and times. Downloaded as study-ID-trials.csv."""
    text, _count = _matching(
        ctx,
        study_id,
        state=state,
        where=where,
        order=order,
        descending=descending,
        present=trials_csv,
    )
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="study-{study_id}-trials.csv"'},
    )


@router.post(
    "/{study_id}/trials",
    status_code=status.HTTP_201_CREATED,
    operation_id="enqueue_trial",
    responses={**NOT_FOUND, **CONFLICT},
)
def enqueue_trial(
    study_id: OwnedStudyId,
    ctx: ContextDep,
    params: Annotated[dict[str, Any], Body(embed=True)],
) -> TrialPublic:
    """Queues a configuration of your choice; it is evaluated before any new suggestion.

    It counts in the budget: 409 when the study already has `budget.max_trials` trials.
    """
    return trial_public(enqueue_configuration(ctx.db, study_id, params))


@router.post(
    "/{study_id}/suggestions",
    operation_id="suggest_trials",
    responses={**NOT_FOUND, **CONFLICT},
)
async def suggest(
    study_id: OwnedStudyId, body: SuggestionsCreate, ctx: ContextDep
) -> SuggestionsPublic:
    """Ask: RUNNING trials with lease tokens, for evaluation outside the service.

    Fewer than `count` (possibly none) come back, with the `reason`, when `max_parallel` or
    the budget allows fewer or the study's suggestions fail. Asking spends the study's
    budget, so it is the owner's (or an admin's); telling (report, complete) needs only the
    lease token.
    """
    asked = await run_in_threadpool(ctx.scheduler.suggest, study_id, body.count)
    return SuggestionsPublic(data=[trial_leased(t) for t in asked.trials], reason=asked.reason)
