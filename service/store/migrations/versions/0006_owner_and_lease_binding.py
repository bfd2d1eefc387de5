"""study owners by token name; worker ids bound to the token that leases under them

`studies.owner_name` is the creating token's name (existing studies get their token's name);
`workers.token_id` is the token that holds a worker id (existing workers hold none, so the
next token to lease under the id claims it).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKER_TOKEN_FK = "fk_workers_token_id_api_tokens"


def upgrade() -> None:
    op.add_column("studies", sa.Column("owner_name", sa.String(length=200), nullable=True))
    studies = sa.table(
        "studies", sa.column("owner_token_id", sa.Integer), sa.column("owner_name", sa.String)
    )
    tokens = sa.table("api_tokens", sa.column("id", sa.Integer), sa.column("name", sa.String))
    op.execute(
        studies.update()
        .where(studies.c.owner_token_id.is_not(None))
        .values(
            owner_name=sa.select(tokens.c.name)
            .where(tokens.c.id == studies.c.owner_token_id)
            .scalar_subquery()
        )
    )
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("token_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            WORKER_TOKEN_FK, "api_tokens", ["token_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_constraint(WORKER_TOKEN_FK, type_="foreignkey")
        batch.drop_column("token_id")
    op.drop_column("studies", "owner_name")
