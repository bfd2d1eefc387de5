"""Request dependencies: the service context, role-based authentication and the owner check.

No `from __future__ import annotations` here: FastAPI must see the real `Depends` objects
in `require`'s inner signature, which refer to a local variable.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.streams import StreamSlots
from service.auth import hash_token
from service.config import Settings
from service.core.artifacts import ArtifactFiles
from service.core.lifecycle import TrialLifecycle
from service.core.owners import check_owner
from service.core.scheduling import Scheduler
from service.core.workers import WorkerIdClaims
from service.domain import Principal, Role
from service.errors import Forbidden, Unauthorized
from service.store import repository as repo
from service.store.db import Database


class PrincipalCache:
    """Tokens verified in the last `ttl` seconds, by hash.

    Every worker call (lease, report, heartbeat, complete) is authenticated, and a lookup is
    a database transaction per request. A revocation through this process clears the cache
    at once; other server processes (`--http-workers`, other machines) refuse the token
    within `ttl` seconds. `ttl` 0 turns the cache off.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, token_hash: str) -> Principal | None:
        entry = self._entries.get(token_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, token_hash: str, principal: Principal) -> None:
        if self.ttl > 0:
            self._entries[token_hash] = (time.monotonic() + self.ttl, principal)

    def clear(self) -> None:
        self._entries.clear()


@dataclass
class ServiceContext:
    settings: Settings
    db: Database
    scheduler: Scheduler
    lifecycle: TrialLifecycle
    artifacts: ArtifactFiles
    streams: StreamSlots
    principals: PrincipalCache = field(default_factory=lambda: PrincipalCache(0.0))
    worker_ids: WorkerIdClaims = field(init=False)

    def __post_init__(self) -> None:
        # Worker ids confirmed for a token are remembered as long as verified tokens are.
        self.worker_ids = WorkerIdClaims(self.db, self.principals.ttl)


def get_context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ServiceContext, Depends(get_context)]

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer <token>`")


def _principal(ctx: ServiceContext, token: str | None) -> Principal:
    if not token:
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
    token_hash = hash_token(token)
    cached = ctx.principals.get(token_hash)
    if cached is not None:
        return cached
    with ctx.db.read() as session:
        row = repo.find_token(session, token_hash)
        if row is None:
            raise Unauthorized("invalid or revoked token")
        principal = Principal(token_id=row.id, name=row.name, role=Role(row.role))
    ctx.principals.put(token_hash, principal)
    return principal


def authenticate(
    ctx: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return _principal(ctx, credentials.credentials if credentials else None)


def authenticate_stream(
    ctx: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    access_token: Annotated[
        str | None,
        Query(
            max_length=200, description="Token for clients that cannot set headers (EventSource)."
        ),
    ] = None,
) -> Principal:
    return _principal(ctx, credentials.credentials if credentials else access_token)


def require(*roles: Role, stream: bool = False) -> Callable[..., Principal]:
    allowed = frozenset(roles) | {Role.ADMIN}
    auth = authenticate_stream if stream else authenticate

    def check(principal: Annotated[Principal, Depends(auth)]) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(
                f"role {principal.role.value!r} may not do this (needs one of: {names})"
            )
        return principal

    return check


Reader = Annotated[Principal, Depends(require(Role.USER, Role.VIEWER))]
StreamReader = Annotated[Principal, Depends(require(Role.USER, Role.VIEWER, stream=True))]
Manager = Annotated[Principal, Depends(require(Role.USER))]
WorkerRole = Annotated[Principal, Depends(require(Role.WORKER))]
Evaluator = Annotated[Principal, Depends(require(Role.USER, Role.WORKER))]
Admin = Annotated[Principal, Depends(require())]

StudyId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def owned_study(study_id: StudyId, ctx: ContextDep, principal: Manager) -> int:
    """The path's `study_id` once the caller, a user or an admin, is shown to own the study
    (service.core.owners): 403 for another role or another owner, 404 for no such study."""
    with ctx.db.read() as session:
        check_owner(principal, repo.get_study(session, study_id))
    return study_id


OwnedStudyId = Annotated[int, Depends(owned_study)]
