"""Fewer index writes per status change: the batch index no longer holds the status, and
event ids (time-ordered and never looked up) lose their unique index

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_batch_status")
        batch.create_index("ix_messages_batch", ["batch_id", "id"], unique=False)
    with op.batch_alter_table("message_events") as batch:
        batch.drop_constraint("uq_message_events_id", type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("message_events") as batch:
        batch.create_unique_constraint("uq_message_events_id", ["id"])
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_batch")
        batch.create_index("ix_messages_batch_status", ["batch_id", "status"], unique=False)
