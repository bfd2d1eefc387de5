"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL.

Write transactions are serialized the way each backend allows:
- SQLite has one writer. A write session starts with BEGIN IMMEDIATE, so two writers queue
  on the database lock (busy timeout) instead of failing half-way with "database is locked".
  Readers use plain BEGIN and, with WAL, never wait for writers.
- PostgreSQL takes row locks (SELECT ... FOR UPDATE [SKIP LOCKED]) inside write sessions;
  the scheduler locks the study row to serialize suggestions for one study across servers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 60.0
PG_MIGRATION_LOCK = 7_351_112_001


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    if is_sqlite(url):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
            pool_size=pool_size,
            max_overflow=2 * pool_size,
        )
        _configure_sqlite(engine)
        return engine
    # No pool_pre_ping: it costs a round trip on every checkout, two per worker request. After
    # a PostgreSQL restart the first statement on a stale connection fails, SQLAlchemy then
    # invalidates the whole pool, and that request answers 503, which clients retry.
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("tunesmith_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """Owns the engine and hands out read and write sessions."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on any error."""
        with self._sessions() as session:
            session.connection(execution_options={"tunesmith_write": True})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def upgrade(self) -> None:
        upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(engine: Engine | None = None) -> Config:
    script_location = resources.files("service.store") / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(str(script_location))))
    if engine is not None:
        cfg.attributes["engine"] = engine
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine) -> None:
    """Applies every migration. On PostgreSQL an advisory lock keeps two servers from racing."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_MIGRATION_LOCK})
            try:
                command.upgrade(alembic_config(engine), "head")
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_MIGRATION_LOCK})
                conn.commit()
    else:
        command.upgrade(alembic_config(engine), "head")
    log.info("database schema is at the latest migration")
