"""record the data each trial trained on, and the datasets of a study

A trainer that fell back to the bundled digits (offline, or no route to MNIST) used to leave
only a worker log line. Now the trial keeps its dataset record and the study the distinct
datasets its trials used.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch_op:
        batch_op.add_column(sa.Column("dataset", sa.JSON(), nullable=True))
    with op.batch_alter_table("studies") as batch_op:
        batch_op.add_column(sa.Column("datasets", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("studies") as batch_op:
        batch_op.drop_column("datasets")
    with op.batch_alter_table("trials") as batch_op:
        batch_op.drop_column("dataset")
