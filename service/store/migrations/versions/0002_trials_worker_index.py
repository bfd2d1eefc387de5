"""index trials by worker: every lease first looks up the worker's running trial

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 13:05:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_trials_worker_state", "trials", ["worker_id", "state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_trials_worker_state", table_name="trials")
