"""The migrations build exactly the schema the models declare, on SQLite and PostgreSQL.

A model change without a migration (a column, an index the queries rely on) fails here
instead of in production, where `serve` only runs the migrations.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.store.db import Database
from service.store.models import Base


def test_migrated_database_matches_the_models(database_url: str) -> None:
    db = Database(database_url)
    try:
        db.upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        db.dispose()
    assert diff == []
