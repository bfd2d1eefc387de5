"""Routes under /tokens (admin only): create, list, revoke API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from service.api.deps import Admin, ContextDep
from service.api.errors import ERROR_RESPONSES, NOT_FOUND
from service.api.views import from_row, token_public
from service.auth import create_token
from service.schemas import TokenCreate, TokenCreated, TokenPublic, TokensPublic
from service.store import repository as repo

router = APIRouter(prefix="/tokens", tags=["tokens"], responses=ERROR_RESPONSES)


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="create_token")
def create(body: TokenCreate, ctx: ContextDep, _: Admin) -> TokenCreated:
    """Creates a token; its secret is in this answer only (the server keeps a hash)."""
    row, token = create_token(ctx.db, name=body.name, role=body.role)
    return from_row(TokenCreated, row, token=token)


@router.get("", operation_id="list_tokens")
def list_(ctx: ContextDep, _: Admin) -> TokensPublic:
    with ctx.db.read() as session:
        rows = repo.list_tokens(session)
        return TokensPublic(data=[token_public(r) for r in rows], count=len(rows))


@router.delete("/{token_id}", operation_id="revoke_token", responses=NOT_FOUND)
def revoke(
    token_id: Annotated[int, Path(ge=1, le=2**31 - 1)], ctx: ContextDep, _: Admin
) -> TokenPublic:
    """Revokes a token at once: its next request gets 401."""
    with ctx.db.write() as session:
        row = repo.revoke_token(session, token_id)
    ctx.principals.clear()
    return token_public(row)
