"""Routes under /workers: lease the next trial; list workers."""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated

from fastapi import APIRouter, Body, Path, Response, status
from fastapi.concurrency import run_in_threadpool

from service.api.deps import ContextDep, Reader, WorkerRole
from service.api.errors import CONFLICT, ERROR_RESPONSES, NOT_FOUND
from service.api.views import trial_leased, worker_public
from service.core.scheduling import Lease
from service.records import WorkerInfo
from service.schemas import LeasePublic, LeaseRequest, WorkersPublic
from service.store import repository as repo

router = APIRouter(prefix="/workers", tags=["workers"], responses=ERROR_RESPONSES)

WorkerId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:@-]+$")]


def _worker_info(request: LeaseRequest) -> WorkerInfo:
    """What a lease request says about its worker."""
    return WorkerInfo(**request.model_dump(include={f.name for f in fields(WorkerInfo)}))


@router.post(
    "/{worker_id}/lease",
    operation_id="lease_trial",
    response_model=LeasePublic,
    responses={
        204: {"description": "Nothing to do now; back off and ask again"},
        **NOT_FOUND,
        **CONFLICT,
    },
)
async def lease(
    worker_id: WorkerId,
    ctx: ContextDep,
    principal: WorkerRole,
    body: Annotated[LeaseRequest | None, Body()] = None,
) -> LeasePublic | Response:
    """The worker's next trial with its objective and a lease token; 204 when there is none.

    A worker id belongs to the token that first leased under it: another token gets 403
    (service.core.workers). With `complete`, the previous trial's value is recorded first
    (its own transaction, so a lease that fails afterwards loses no result; a retry repeats
    the complete harmlessly); a stale lease token answers 409 and leases nothing. The
    worker's host, GPU, backend and device are recorded; with `unavailable` (it cannot
    train), so is the reason, and the answer is 204."""
    info = body or LeaseRequest()

    def complete_then_lease() -> Lease | None:
        ctx.worker_ids.claim(worker_id, principal)
        if info.complete is not None:
            done = info.complete
            ctx.lifecycle.complete(
                done.trial_id,
                done.lease_token,
                done.value,
                values=done.values,
                metrics=done.metrics,
            )
        return ctx.scheduler.lease(worker_id, _worker_info(info), objectives=info.objectives)

    result = await run_in_threadpool(complete_then_lease)
    if result is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    study = result.study
    return LeasePublic(
        trial=trial_leased(result.trial),
        study_name=study.name,
        objective=study.objective,
        objective_args=study.objective_args,
        metric=study.metric,
        direction=study.direction,
        lease_seconds=ctx.settings.lease_seconds,
        objectives=study.objectives,
        constraints=study.constraints or None,
    )


@router.get("", operation_id="list_workers")
def list_(ctx: ContextDep, _: Reader) -> WorkersPublic:
    with ctx.db.read() as session:
        rows = repo.list_workers(session)
        return WorkersPublic(data=[worker_public(w) for w in rows], count=len(rows))
