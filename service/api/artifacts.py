"""Routes under /trials/{id}/artifacts: upload (streamed to disk) and download.

The rules (who may upload, valid names, served types, files) are service.core.artifacts'.
An upload is checked before its body is read (name, trial, permission), streamed to a
staging file (the BodyLimit middleware ends it with 413 past TUNESMITH_MAX_ARTIFACT_BYTES,
and the staging file is removed), then checked again and moved into place in one
transaction that locks the trial, so a trial deleted or finished meanwhile gets nothing.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from service.api.deps import ContextDep, Evaluator, Reader
from service.api.errors import CONFLICT, ERROR_RESPONSES, NOT_FOUND
from service.api.views import artifact_public
from service.core.artifacts import (
    INLINE_TYPES,
    LEASE_HEADER,
    OCTET_STREAM,
    check_name,
    check_upload,
    served_type,
    stored_type,
)
from service.domain import Principal
from service.errors import NotFound
from service.schemas import ArtifactPublic
from service.store import repository as repo
from service.store.models import Trial, utcnow

router = APIRouter(prefix="/trials", tags=["trials"], responses=ERROR_RESPONSES)

TrialId = Annotated[int, Path(ge=1, le=2**31 - 1)]
LeaseToken = Annotated[
    str | None,
    Header(
        alias=LEASE_HEADER,
        max_length=64,
        description="The trial's lease token; needed unless the caller owns the study.",
    ),
]


def _allowed_trial(
    session: Session, principal: Principal, trial_id: int, lease_token: str | None, lock: bool
) -> Trial:
    trial = repo.get_trial(session, trial_id, lock=lock)
    study = repo.get_study(session, trial.study_id)
    check_upload(principal, study, trial, lease_token, utcnow())
    return trial


@router.put(
    "/{trial_id}/artifacts/{name:path}",
    status_code=status.HTTP_201_CREATED,
    operation_id="upload_artifact",
    responses={**NOT_FOUND, **CONFLICT},
    openapi_extra={
        "requestBody": {
            "content": {OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}}},
            "required": True,
        }
    },
)
async def upload_artifact(
    trial_id: TrialId,
    name: str,
    request: Request,
    ctx: ContextDep,
    principal: Evaluator,
    lease_token: LeaseToken = None,
) -> ArtifactPublic:
    """Stores a file a trainer wrote (the raw body). Needs the trial's live lease token in
    `X-Lease-Token` unless the caller owns the study or is an admin: 403 without one, 409
    when it is not the trial's current, unexpired lease. 422 for an invalid `name`, 409 for
    a name that clashes with another (a file and a folder), 413 past the artifact limit
    (nothing is stored). The stored type follows the name's extension: png, jpeg, gif,
    webp, csv, json, txt/log; anything else is stored as application/octet-stream."""
    check_name(name)

    def authorize() -> None:
        with ctx.db.read() as session:
            _allowed_trial(session, principal, trial_id, lease_token, lock=False)

    await run_in_threadpool(authorize)
    content_type = stored_type(name, request.headers.get("content-type"))
    with ctx.artifacts.staging() as (staged, fh):
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            await run_in_threadpool(fh.write, chunk)
        await run_in_threadpool(fh.flush)

        def store() -> ArtifactPublic:
            with ctx.db.write() as session:
                _allowed_trial(session, principal, trial_id, lease_token, lock=True)
                ctx.artifacts.place(staged, trial_id, name)
                row = repo.put_artifact(session, trial_id, name, content_type, size)
                return artifact_public(row)

        return await run_in_threadpool(store)


@router.get(
    "/{trial_id}/artifacts/{name:path}",
    operation_id="get_artifact",
    responses={
        **NOT_FOUND,
        200: {"content": {t: {} for t in sorted({*INLINE_TYPES, OCTET_STREAM})}},
    },
    response_class=FileResponse,
)
def get_artifact(
    trial_id: TrialId,
    name: str,
    ctx: ContextDep,
    _: Reader,
    download: Annotated[bool, Query()] = False,
) -> FileResponse:
    """The file, with `X-Content-Type-Options: nosniff`. Images, csv, json and text are
    served as stored (inline unless `download`); every other type as
    application/octet-stream with `Content-Disposition: attachment`."""
    path = ctx.artifacts.path(trial_id, name)
    with ctx.db.read() as session:
        row = repo.get_artifact(session, trial_id, name)
    if not path.is_file():
        raise NotFound(f"artifact {name!r} of trial {trial_id} has no file on this server")
    media_type, inline = served_type(row.content_type)
    return FileResponse(
        path,
        media_type=media_type,
        filename=FsPath(name).name if download or not inline else None,
    )
