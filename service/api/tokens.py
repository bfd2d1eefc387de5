"""Routes under /tokens (admin only): create, list, revoke API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from service.api.deps import Admin, ContextDep
from service.api.errors import ERROR_RESPONSES, NOT_FOUND
from service.auth import create_token
from service.errors import NotFound
from service.schemas import TokenCreate, TokenCreated, TokenPublic, TokensPublic
from service.store import repository as repo
from service.store.models import ApiToken, Role

router = APIRouter(prefix="/tokens", tags=["tokens"], responses=ERROR_RESPONSES)


def _public(row: ApiToken) -> TokenPublic:
    return TokenPublic(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="create_token")
def create(body: TokenCreate, ctx: ContextDep, _: Admin) -> TokenCreated:
    """Creates a token; its secret is in this answer only (the server keeps a hash)."""
    row, token = create_token(ctx.db, name=body.name, role=body.role)
    return TokenCreated(**_public(row).model_dump(), token=token)


@router.get("", operation_id="list_tokens")
def list_(ctx: ContextDep, _: Admin) -> TokensPublic:
    with ctx.db.read() as session:
        rows = repo.list_tokens(session)
        return TokensPublic(data=[_public(r) for r in rows], count=len(rows))


@router.delete("/{token_id}", operation_id="revoke_token", responses=NOT_FOUND)
def revoke(
    token_id: Annotated[int, Path(ge=1, le=2**31 - 1)], ctx: ContextDep, _: Admin
) -> TokenPublic:
    """Revokes a token at once: its next request gets 401."""
    with ctx.db.write() as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"token {token_id} not found")
        repo.revoke_tokens(session, ApiToken.id == token_id)
        session.refresh(row)
    ctx.principals.clear()
    return _public(row)
