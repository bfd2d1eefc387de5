"""GET /studies/{id}/events: server-sent events for live dashboards and clients.

The stream polls the database (not server memory), so it sees changes made through any
server process. Events:
    event: study   data: StudyPublic     (on connect, and whenever a trial or the study changes)
    event: trial   data: TrialPublic     (each trial that changed since the last poll)
    event: revoked data: {"detail": ...}  (the token was revoked; the stream ends)
A comment line is sent every 15 s to keep proxies from closing an idle stream.

Rules: a stream takes a slot of this server process (service.api.streams: at most
TUNESMITH_MAX_STREAMS_PER_TOKEN per token and TUNESMITH_MAX_STREAMS in all, 429 beyond)
and gives it back when its response ends. Every TUNESMITH_STREAM_RECHECK_SECONDS (at most
30 s) the stream looks its token up in the database, bypassing the token cache, and ends
when the token is revoked.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from service.api.deps import ContextDep, ServiceContext, StreamReader
from service.api.errors import ERROR_RESPONSES, NOT_FOUND, TOO_MANY
from service.api.streams import StreamSlot
from service.api.views import study_public, trial_public
from service.store import repository as repo

router = APIRouter(prefix="/studies", tags=["events"], responses=ERROR_RESPONSES)

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
REVOKED = f"event: revoked\ndata: {json.dumps({'detail': 'the token was revoked'})}\n\n"


class _SlotResponse(StreamingResponse):
    """A streaming response that gives its stream slot back when it ends, however it ends
    (its body iterator may never start when the client is already gone)."""

    def __init__(self, content: AsyncIterator[str], slot: StreamSlot) -> None:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self.slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.release()


def _token_is_live(ctx: ServiceContext, token_id: int) -> bool:
    with ctx.db.read() as session:
        return repo.token_is_live(session, token_id)


def _poll(
    ctx: ServiceContext, study_id: int, since: datetime | None
) -> tuple[list[str], datetime | None]:
    with ctx.db.read() as session:
        study = repo.get_study(session, study_id)
        changed = [] if since is None else repo.changed_trials(session, study_id, since)
        marks = [study.updated_at, *(t.updated_at for t in changed)]
        latest = max(marks) if since is None else max([since, *marks])
        if since is not None and not changed and study.updated_at <= since:
            return [], since
        events = [f"event: trial\ndata: {trial_public(t).model_dump_json()}\n\n" for t in changed]
        if since is None:
            newest = repo.list_trials(
                session, study_id, order="updated_at", descending=True, limit=1
            )[0]
            if newest:
                latest = max(latest, newest[0].updated_at)
        events.append(f"event: study\ndata: {study_public(session, study).model_dump_json()}\n\n")
        return events, latest


@router.get(
    "/{study_id}/events",
    operation_id="study_events",
    responses={**NOT_FOUND, **TOO_MANY, 200: {"content": {"text/event-stream": {}}}},
    response_class=StreamingResponse,
)
async def events(
    study_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    request: Request,
    ctx: ContextDep,
    principal: StreamReader,
    once: Annotated[bool, Query(description="Send the current state and close.")] = False,
) -> StreamingResponse:
    """The study's changes as server-sent events (see the module's rules); 429 when this
    token or this server process has too many streams open."""
    slot = ctx.streams.take(principal.token_id)  # first: a refusal costs no query
    try:
        first, since = await run_in_threadpool(_poll, ctx, study_id, None)
    except BaseException:
        slot.release()
        raise
    recheck = ctx.settings.stream_recheck_seconds

    async def stream() -> AsyncIterator[str]:
        nonlocal since
        for event in first:
            yield event
        if once:
            return
        idle = 0.0
        checked = time.monotonic()
        while not await request.is_disconnected():
            await asyncio.sleep(POLL_SECONDS)
            if time.monotonic() - checked >= recheck:
                if not await run_in_threadpool(_token_is_live, ctx, principal.token_id):
                    yield REVOKED
                    return
                checked = time.monotonic()
            batch, since = await run_in_threadpool(_poll, ctx, study_id, since)
            for event in batch:
                yield event
            idle = 0.0 if batch else idle + POLL_SECONDS
            if idle >= KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                idle = 0.0

    return _SlotResponse(stream(), slot)
