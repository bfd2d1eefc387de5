"""Routes under /trials: detail, the lease-guarded reports, and artifacts."""

from __future__ import annotations

import re
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from service.api.deps import ContextDep, Evaluator, Reader
from service.api.errors import CONFLICT, ERROR_RESPONSES, NOT_FOUND, Responses
from service.api.views import artifact_public, trial_detail, trial_public
from service.errors import InvalidRequest, NotFound
from service.schemas import (
    ArtifactPublic,
    CompleteCreate,
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
ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9_.-][A-Za-z0-9_./-]{0,299}$")


@router.get("/{trial_id}", operation_id="get_trial", responses=NOT_FOUND)
def get(trial_id: TrialId, ctx: ContextDep, _: Reader) -> TrialDetail:
    with ctx.db.read() as session:
        return trial_detail(session, repo.get_trial(session, trial_id))


@router.post("/{trial_id}/report", operation_id="report_trial", responses=GUARDED)
def report(trial_id: TrialId, body: ReportCreate, ctx: ContextDep, _: Evaluator) -> ReportPublic:
    """Records the value at `step`; the answer says whether to go on or stop (pruned)."""
    action = ctx.lifecycle.report(trial_id, body.lease_token, body.step, body.value)
    return ReportPublic(action=action.value)


@router.post("/{trial_id}/heartbeat", operation_id="heartbeat_trial", responses=GUARDED)
def heartbeat(trial_id: TrialId, body: LeaseBody, ctx: ContextDep, _: Evaluator) -> TrialPublic:
    return trial_public(ctx.lifecycle.heartbeat(trial_id, body.lease_token))


@router.post("/{trial_id}/complete", operation_id="complete_trial", responses=GUARDED)
def complete(trial_id: TrialId, body: CompleteCreate, ctx: ContextDep, _: Evaluator) -> TrialPublic:
    """Tell: the final value. Repeating it with the same lease token changes nothing."""
    return trial_public(ctx.lifecycle.complete(trial_id, body.lease_token, body.value))


@router.post("/{trial_id}/fail", operation_id="fail_trial", responses=GUARDED)
def fail(trial_id: TrialId, body: FailCreate, ctx: ContextDep, _: Evaluator) -> TrialPublic:
    return trial_public(ctx.lifecycle.fail(trial_id, body.lease_token, body.reason))


@router.post("/{trial_id}/release", operation_id="release_trial", responses=GUARDED)
def release(trial_id: TrialId, body: LeaseBody, ctx: ContextDep, _: Evaluator) -> TrialPublic:
    """Gives the trial back to the queue (a worker shutting down); no attempt is counted lost."""
    return trial_public(ctx.lifecycle.release(trial_id, body.lease_token))


def artifact_path(root: FsPath, trial_id: int, name: str) -> FsPath:
    if not ARTIFACT_NAME.match(name) or ".." in name.split("/"):
        raise InvalidRequest(f"name: {name!r} is not a valid artifact name", field="name")
    return root / str(trial_id) / name


@router.put(
    "/{trial_id}/artifacts/{name:path}",
    status_code=status.HTTP_201_CREATED,
    operation_id="upload_artifact",
    responses={**NOT_FOUND, 413: {"description": "Artifact too large"}},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
            "required": True,
        }
    },
)
async def upload_artifact(
    trial_id: TrialId, name: str, request: Request, ctx: ContextDep, _: Evaluator
) -> ArtifactPublic:
    """Stores a file a trainer wrote (raw body; its Content-Type is kept)."""
    data = await request.body()
    if len(data) > ctx.settings.max_artifact_bytes:
        raise InvalidRequest(
            f"body: artifact is {len(data)} bytes; at most {ctx.settings.max_artifact_bytes}",
            field="body",
        )
    content_type = request.headers.get("content-type", "application/octet-stream")[:100]
    return await run_in_threadpool(_store_artifact, ctx, trial_id, name, content_type, data)


def _store_artifact(
    ctx: ContextDep, trial_id: int, name: str, content_type: str, data: bytes
) -> ArtifactPublic:
    path = artifact_path(ctx.settings.artifact_dir, trial_id, name)
    with ctx.db.write() as session:
        repo.get_trial(session, trial_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return artifact_public(repo.put_artifact(session, trial_id, name, content_type, len(data)))


@router.get(
    "/{trial_id}/artifacts/{name:path}",
    operation_id="get_artifact",
    responses={**NOT_FOUND, 200: {"content": {"application/octet-stream": {}}}},
    response_class=FileResponse,
)
def get_artifact(
    trial_id: TrialId,
    name: str,
    ctx: ContextDep,
    _: Reader,
    download: Annotated[bool, Query()] = False,
) -> FileResponse:
    path = artifact_path(ctx.settings.artifact_dir, trial_id, name)
    with ctx.db.read() as session:
        row = repo.get_artifact(session, trial_id, name)
    if not path.is_file():
        raise NotFound(f"artifact {name!r} of trial {trial_id} has no file on this server")
    return FileResponse(
        path,
        media_type=row.content_type,
        filename=FsPath(name).name if download else None,
    )
