"""The FastAPI application: `create_app(settings)` wires routers, context and background jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool

from service import __version__
from service.api import (
    artifacts,
    dashboard,
    events,
    insights,
    objectives,
    studies,
    tokens,
    trials,
    workers,
)
from service.api.body_limit import BodyLimit
from service.api.deps import PrincipalCache, ServiceContext
from service.api.errors import install_error_handlers
from service.api.headers import SecurityHeaders
from service.api.streams import StreamSlots
from service.auth import ensure_admin_token
from service.config import Settings
from service.core.artifacts import ArtifactFiles
from service.core.lifecycle import TrialLifecycle
from service.core.scheduling import LeasePolicy, Scheduler
from service.schemas import Health
from service.serving import configure_server_process
from service.store.db import Database

log = logging.getLogger(__name__)

REAP_INTERVAL_S = 2.0


async def _reap_forever(ctx: ServiceContext) -> None:
    """Re-queues trials whose lease expired even when no worker asks (e.g. ask/tell studies)."""
    while True:
        await asyncio.sleep(min(REAP_INTERVAL_S, ctx.settings.lease_seconds / 4))
        try:
            await run_in_threadpool(ctx.scheduler.reap)
        except Exception:
            log.exception("reaping expired leases failed; will retry")


def create_app(settings: Settings | None = None, *, db: Database | None = None) -> FastAPI:
    settings = settings or Settings()
    database = db or Database(settings.database_url, pool_size=settings.db_pool_size)
    policy = LeasePolicy(lease_seconds=settings.lease_seconds, max_retries=settings.max_retries)
    ctx = ServiceContext(
        settings=settings,
        db=database,
        scheduler=Scheduler(database, policy, prefetch=settings.prefetch),
        lifecycle=TrialLifecycle(database, policy),
        artifacts=ArtifactFiles(settings.artifact_dir),
        streams=StreamSlots(
            total=settings.max_streams, per_token=settings.max_streams_per_token
        ),
        principals=PrincipalCache(settings.token_cache_seconds),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(database.upgrade)
        await run_in_threadpool(
            lambda: ensure_admin_token(
                database,
                env_token=settings.admin_token,
                token_file=settings.token_file,
                server_url=f"http://{settings.host}:{settings.port}",
            )
        )
        reaper = asyncio.create_task(_reap_forever(ctx))
        try:
            yield
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
            ctx.scheduler.close()
            database.dispose()

    app = FastAPI(
        title="tunesmith",
        version=__version__,
        description="Hyperparameter tuning service: Gaussian-process Bayesian optimization "
        "over registered trainers, with leases for GPU workers.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    install_error_handlers(app)

    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_request_bytes,
        max_artifact_bytes=settings.max_artifact_bytes,
    )
    app.add_middleware(SecurityHeaders)  # added last: outermost, so the 413s get them too

    api = APIRouter(prefix="/api/v1")
    for module in (studies, events, insights, trials, artifacts, workers, objectives, tokens):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(dashboard.router)

    @app.get("/healthz", tags=["health"], operation_id="healthz")
    def healthz() -> Health:
        return Health(status="ok", version=__version__)

    return app


def create_app_from_env() -> FastAPI:
    """Entry point for `uvicorn --factory service.api.app:create_app_from_env` and for each
    process of `tunesmith serve --http-workers N`."""
    configure_server_process()
    return create_app(Settings())
