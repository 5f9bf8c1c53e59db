"""every message says why it exists (``purpose``, never NULL); the opt-out list says how
each entry came to be (``source``), on which of our numbers a keyword arrived, and keeps
entries loaded without a keyword

Revision ID: 0011_message_purpose
Revises: 0010_llm_credentials
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_message_purpose"
down_revision: str | None = "0010_llm_credentials"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The timer purposes before this migration, and their names since.
_RENAMED = (("warning", "timeout_warning"), ("timeout", "timeout_message"))


def upgrade() -> None:
    messages = sa.table(
        "messages",
        sa.column("purpose", sa.String),
        sa.column("direction", sa.String),
    )
    op.execute(
        messages.update()
        .where(messages.c.purpose.is_(None), messages.c.direction == "inbound")
        .values(purpose="inbound")
    )
    op.execute(messages.update().where(messages.c.purpose.is_(None)).values(purpose="api"))
    for old, new in _RENAMED:
        op.execute(messages.update().where(messages.c.purpose == old).values(purpose=new))
    with op.batch_alter_table("messages") as batch:
        batch.alter_column(
            "purpose",
            existing_type=sa.String(length=20),
            nullable=False,
            server_default="api",
        )
    with op.batch_alter_table("optouts") as batch:
        batch.add_column(
            sa.Column("source", sa.String(length=20), nullable=False, server_default="keyword")
        )
        batch.add_column(sa.Column("number", sa.String(length=20), nullable=True))
        batch.alter_column("keyword", existing_type=sa.String(length=40), nullable=True)
        batch.create_index("ix_optouts_project_created", ["project_id", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("optouts") as batch:
        batch.drop_index("ix_optouts_project_created")
    optouts = sa.table("optouts", sa.column("keyword", sa.String), sa.column("source", sa.String))
    op.execute(
        optouts.update()
        .where(optouts.c.keyword.is_(None))
        .values(keyword=sa.func.upper(optouts.c.source))
    )
    with op.batch_alter_table("optouts") as batch:
        batch.alter_column("keyword", existing_type=sa.String(length=40), nullable=False)
        batch.drop_column("number")
        batch.drop_column("source")
    with op.batch_alter_table("messages") as batch:
        batch.alter_column(
            "purpose", existing_type=sa.String(length=20), nullable=True, server_default=None
        )
    messages = sa.table("messages", sa.column("purpose", sa.String))
    for old, new in _RENAMED:
        op.execute(messages.update().where(messages.c.purpose == new).values(purpose=old))
    op.execute(
        messages.update().where(messages.c.purpose.in_(["api", "inbound"])).values(purpose=None)
    )
