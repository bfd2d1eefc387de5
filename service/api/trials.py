"""Routes under /trials: detail and the lease-guarded reports (artifacts: api/artifacts.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.api.deps import ContextDep, Evaluator, Reader
from service.api.errors import CONFLICT, ERROR_RESPONSES, NOT_FOUND, Responses
from service.api.views import trial_detail, trial_public
from service.schemas import (
    CompleteCreate,
    DatasetCreate,
    FailCreate,
    LeaseBody,
    ReportCreate,
    ReportPublic,
    TrialDetail,
    TrialPublic,
)
from service.store import repository as repo

router = APIRouter(prefix="/trials", tags=["trials"], responses=ERROR_RESPONSES)

TrialId = Annotated[int, Path(ge=1, le=2**31 - 1)]
GUARDED: Responses = {**NOT_FOUND, **CONFLICT}


@router.get("/{trial_id}", operation_id="get_trial", responses=NOT_FOUND)
def get(trial_id: TrialId, ctx: ContextDep, _: Reader) -> TrialDetail:
    with ctx.db.read() as session:
        return trial_detail(session, repo.get_trial(session, trial_id))


@router.post("/{trial_id}/report", operation_id="report_trial", responses=GUARDED)
def report(trial_id: TrialId, body: ReportCreate, ctx: ContextDep, _: Evaluator) -> ReportPublic:
    """Records the value at `step`; the answer says whether to go on or stop (pruned)."""
    action = ctx.lifecycle.report(
        trial_id, body.lease_token, body.step, body.value, metrics=body.metrics
    )
    return ReportPublic(action=action.value)


@router.post("/{trial_id}/heartbeat", operation_id="heartbeat_trial", responses=GUARDED)
def heartbeat(trial_id: TrialId, body: LeaseBody, ctx: ContextDep, _: Evaluator) -> TrialPublic:
    return trial_public(ctx.lifecycle.heartbeat(trial_id, body.lease_token))


@router.post("/{trial_id}/dataset", operation_id="record_trial_dataset", responses=GUARDED)
def dataset(trial_id: TrialId, body: DatasetCreate, ctx: ContextDep, _: Evaluator) -> TrialPublic:
    """The data the running trial trains on (name, source, sizes, content hash), as its
    trainer recorded it; a fallback to the bundled digits also becomes a study warning.
    Repeating it changes nothing."""
    return trial_public(ctx.lifecycle.record_dataset(trial_id, body.lease_token, body.dataset))


@router.post("/{trial_id}/complete", operation_id="complete_trial", responses=GUARDED)
def complete(trial_id: TrialId, body: CompleteCreate, ctx: ContextDep, _: Evaluator) -> TrialPublic:
    """Tell: the final `value` (or `values`, one per objective) and `metrics`. Repeating it
    with the same lease token changes nothing."""
    trial = ctx.lifecycle.complete(
        trial_id, body.lease_token, body.value, values=body.values, metrics=body.metrics
    )
    return trial_public(trial)


@router.post("/{trial_id}/fail", operation_id="fail_trial", responses=GUARDED)
def fail(trial_id: TrialId, body: FailCreate, ctx: ContextDep, _: Evaluator) -> TrialPublic:
    """Ends the trial as failed; `infeasible`: its configuration cannot run (the optimizer
    avoids the region instead of counting a bad value)."""
    trial = ctx.lifecycle.fail(
        trial_id, body.lease_token, body.reason, infeasible=body.infeasible
    )
    return trial_public(trial)


@router.post("/{trial_id}/release", operation_id="release_trial", responses=GUARDED)
def release(trial_id: TrialId, body: LeaseBody, ctx: ContextDep, _: Evaluator) -> TrialPublic:
    """Gives the trial back to the queue (a worker shutting down); no attempt is counted lost."""
    return trial_public(ctx.lifecycle.release(trial_id, body.lease_token))
