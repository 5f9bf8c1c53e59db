"""messages: iMessage expressive effect and inline replies

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("send_style", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("reply_to_message_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("reply_parent_unresolved", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("reply_parent_unresolved")
        batch.drop_column("reply_to_message_id")
        batch.drop_column("send_style")
