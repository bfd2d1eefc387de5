"""An in-process app on a real SQLite file, seeded with a study, trials, tokens and an artifact.

The app is built with `create_app` and driven through ASGI (no sockets), so these tests are
fast; the lifespan's work (migrations, the admin token) is done here explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.deps import ServiceContext
from service.auth import create_token, ensure_admin_token
from service.config import Settings
from service.core.studies import create_study
from service.domain import Role
from service.schemas import StudyCreate
from tests.support import fresh_pg_database, pg_unavailable_reason

ADMIN = "fuzz-admin-token"


@dataclass
class Seeded:
    app: FastAPI
    ctx: ServiceContext
    admin: str
    tokens: dict[Role, str]
    token_ids: dict[Role, int]
    study_id: int
    trial_ids: list[int]
    running: dict[int, str]
    """RUNNING trial id -> its lease token."""


def build_seeded_app(workdir: Path, database_url: str | None = None) -> Seeded:
    settings = Settings(
        database_url=database_url or f"sqlite:///{workdir / 'security.db'}",
        admin_token=ADMIN,
        token_file=workdir / "token",
        artifact_dir=workdir / "artifacts",
        lease_seconds=600,
    )
    app = create_app(settings)
    ctx: ServiceContext = app.state.ctx
    ctx.db.upgrade()
    ensure_admin_token(ctx.db, env_token=ADMIN, token_file=settings.token_file)
    tokens: dict[Role, str] = {Role.ADMIN: ADMIN}
    token_ids: dict[Role, int] = {}
    for role in (Role.USER, Role.WORKER, Role.VIEWER):
        row, secret = create_token(ctx.db, name=f"seed-{role.value}", role=role)
        tokens[role] = secret
        token_ids[role] = row.id
    spec = StudyCreate.model_validate(
        {
            "name": "seeded",
            "objective": "synthetic",
            "strategy": {"name": "random"},
            "budget": {"max_trials": 1000, "max_parallel": 1000},
            "seed": 7,
        }
    )
    study_id = create_study(ctx.db, spec, owner_token_id=None)
    leased = ctx.scheduler.suggest(study_id, 4).trials
    ctx.lifecycle.report(leased[0].id, leased[0].lease_token or "", 1, 0.5)
    ctx.lifecycle.complete(leased[0].id, leased[0].lease_token or "", 0.25)
    ctx.lifecycle.fail(leased[1].id, leased[1].lease_token or "", "seeded failure")
    running = {t.id: t.lease_token or "" for t in leased[2:]}
    client = TestClient(app)  # no `with`: the lifespan (reaper, dispose) is not wanted here
    answer = client.put(
        f"/api/v1/trials/{leased[0].id}/artifacts/model.txt",
        content=b"weights",
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "text/plain"},
    )
    assert answer.status_code == 201, answer.text
    return Seeded(
        app=app,
        ctx=ctx,
        admin=ADMIN,
        tokens=tokens,
        token_ids=token_ids,
        study_id=study_id,
        trial_ids=[t.id for t in leased],
        running=running,
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """The seeded app on SQLite."""
    state = build_seeded_app(tmp_path_factory.mktemp("security"))
    yield state
    state.ctx.db.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def seeded_any(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    """The seeded app on SQLite, then on PostgreSQL (whose 32-bit integer columns and
    length limits SQLite does not enforce)."""
    workdir = tmp_path_factory.mktemp(f"security-{request.param}")
    if request.param == "sqlite":
        state = build_seeded_app(workdir)
        yield state
        state.ctx.db.dispose()
        return
    reason = pg_unavailable_reason()
    if reason is not None:
        if os.environ.get("TUNESMITH_REQUIRE_PG"):
            pytest.fail(f"TUNESMITH_REQUIRE_PG is set but {reason}")
        pytest.skip(f"skipping PostgreSQL test: {reason}")
    with fresh_pg_database() as url:
        state = build_seeded_app(workdir, url)
        yield state
        state.ctx.db.dispose()
