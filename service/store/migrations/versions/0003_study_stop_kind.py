"""record why a study stopped as a kind (budget, all failed, a stop rule, the user)

Rules such as "a larger budget resumes a study that used its budget" read the kind instead
of parsing the sentence. Existing studies get the kind their sentence names.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS_BY_SENTENCE = (
    ("budget%", "budget"),
    ("all % trials failed", "all_failed"),
    ("target %", "target"),
    ("no improvement %", "patience"),
    ("expected improvement %", "ei_threshold"),
    ("stopped by user", "user"),
)


def upgrade() -> None:
    op.add_column("studies", sa.Column("stop_kind", sa.String(length=16), nullable=True))
    studies = sa.table("studies", sa.column("stop_reason", sa.Text), sa.column("stop_kind"))
    for pattern, kind in KINDS_BY_SENTENCE:
        op.execute(
            studies.update()
            .where(studies.c.stop_reason.like(pattern), studies.c.stop_kind.is_(None))
            .values(stop_kind=kind)
        )


def downgrade() -> None:
    op.drop_column("studies", "stop_kind")
