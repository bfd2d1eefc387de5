"""record each worker's Keras backend, device and why it leases nothing (a GPU slot whose
backend sees no GPU)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("workers", sa.Column("backend", sa.String(length=32), nullable=True))
    op.add_column("workers", sa.Column("device", sa.String(length=200), nullable=True))
    op.add_column("workers", sa.Column("device_memory_bytes", sa.BigInteger(), nullable=True))
    op.add_column("workers", sa.Column("unavailable", sa.String(length=1000), nullable=True))


def downgrade() -> None:
    for column in ("unavailable", "device_memory_bytes", "device", "backend"):
        op.drop_column("workers", column)
