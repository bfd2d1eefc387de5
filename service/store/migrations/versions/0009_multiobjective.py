"""several objectives and constraints: the study's objectives and constraints, each trial's
objective values, its metrics and whether it was feasible

A study with `objectives` keeps its first objective in `metric`/`direction` (and each
trial's first value in `value`), so everything that reads one metric still works; the whole
vector lives in `trials.values`. `trials.feasible` is NULL for a study without constraints,
else whether every constraint held (False too for a trial that failed as infeasible, such as
an out-of-memory error).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("studies") as batch_op:
        batch_op.add_column(sa.Column("objectives", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("constraints", sa.JSON(), nullable=True))
    with op.batch_alter_table("trials") as batch_op:
        batch_op.add_column(sa.Column("values", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("metrics", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("feasible", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch_op:
        batch_op.drop_column("feasible")
        batch_op.drop_column("metrics")
        batch_op.drop_column("values")
    with op.batch_alter_table("studies") as batch_op:
        batch_op.drop_column("constraints")
        batch_op.drop_column("objectives")
