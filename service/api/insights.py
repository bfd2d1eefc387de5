"""Read-only views of a study for the dashboard: history columns, learning curves, the GP
model and parameter importance. Each is rebuilt from stored trials per request (Reader role).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool

from service import insight
from service.api.deps import ContextDep, Reader
from service.api.errors import CONFLICT, ERROR_RESPONSES, NOT_FOUND
from service.insight import (
    ChosenAcquisition,
    ModelView,
    StudyCurves,
    StudyHistory,
    StudyImportance,
)

router = APIRouter(prefix="/studies", tags=["insights"], responses=ERROR_RESPONSES)

StudyId = Annotated[int, Path(ge=1, le=2**31 - 1)]
ParamName = Annotated[str, Query(min_length=1, max_length=200)]
TOO_FEW: dict[int | str, dict[str, str]] = {
    409: {"description": "Too few finished trials with a finite value for this view"}
}


@router.get("/{study_id}/history", operation_id="study_history", responses=NOT_FOUND)
def history(
    study_id: StudyId,
    ctx: ContextDep,
    _: Reader,
    max_points: Annotated[int, Query(ge=10, le=100_000)] = 2000,
) -> StudyHistory:
    """Trials as compact columns (number, state, value, best-so-far, params, the prediction
    stored at suggestion), downsampled beyond about `max_points` trials; improvements of the
    best value and open trials are always kept."""
    with ctx.db.read() as session:
        return insight.history(session, study_id, max_points=max_points)


@router.get("/{study_id}/curves", operation_id="study_curves", responses=NOT_FOUND)
def curves(
    study_id: StudyId,
    ctx: ContextDep,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    max_points: Annotated[int, Query(ge=2, le=10_000)] = 200,
) -> StudyCurves:
    """Learning curves: every running trial plus the latest `limit` trials that reported."""
    with ctx.db.read() as session:
        return insight.curves(session, study_id, limit=limit, max_points=max_points)


@router.get("/{study_id}/model", operation_id="study_model", responses={**NOT_FOUND, **TOO_FEW})
async def model(
    study_id: StudyId,
    ctx: ContextDep,
    _: Reader,
    param: ParamName,
    param2: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    points: Annotated[
        int | None, Query(ge=2, le=400, description="Grid size per axis (1-D 100, 2-D 25).")
    ] = None,
    acquisition: Annotated[
        ChosenAcquisition | None,
        Query(description="Defaults to the study's (for `auto`, the latest GP trial's)."),
    ] = None,
) -> ModelView:
    """The study's GP rebuilt from its trials: posterior mean, std and acquisition along
    `param` (or over a `param` x `param2` grid, at most 60 x 60), other parameters at the
    incumbent; with the observed, pending and incumbent points. 409 with fewer than 2 finished
    trials that have a finite value."""
    n = points or (100 if param2 is None else 25)
    if param2 is not None:
        n = min(n, 60)

    def build() -> ModelView:
        with ctx.db.read() as session:
            return insight.model_view(
                session, study_id, param=param, param2=param2, points=n, acquisition=acquisition
            )

    return await run_in_threadpool(build)


@router.get(
    "/{study_id}/importance",
    operation_id="study_importance",
    responses={**NOT_FOUND, **CONFLICT, **TOO_FEW},
)
async def importance(study_id: StudyId, ctx: ContextDep, _: Reader) -> StudyImportance:
    """Each searchable parameter's share of importance (random-forest permutation importance
    on value ranks); 409 with fewer than 4 finished trials that have a finite value."""

    def build() -> StudyImportance:
        with ctx.db.read() as session:
            return insight.importance(session, study_id)

    return await run_in_threadpool(build)
