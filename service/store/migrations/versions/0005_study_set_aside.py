"""a study whose suggestions fail is set aside: the error, how often in a row, when to retry

The scheduler skips such a study until `suggest_retry_at` (a growing back-off) instead of
failing every worker's lease request; the dashboard shows the error.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("studies") as batch_op:
        batch_op.add_column(sa.Column("suggest_error", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("suggest_failures", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("suggest_retry_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("studies") as batch_op:
        batch_op.drop_column("suggest_retry_at")
        batch_op.drop_column("suggest_failures")
        batch_op.drop_column("suggest_error")
