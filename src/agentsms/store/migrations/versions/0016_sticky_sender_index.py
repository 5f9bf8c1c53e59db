"""messages: the contact index carries the sender, so the sticky-sender lookup reads it alone

Each send to a pool of several numbers asks which number its recipient last talked to. With
``number_id`` in ``ix_messages_project_contact`` the newest message's sender is read from the
index entry itself, one leaf page, instead of the message row (a random page of the largest
table, plus its id index).

Revision ID: 0016_sticky_sender_index
Revises: 0015_housekeeping_indexes
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016_sticky_sender_index"
down_revision: str | None = "0015_housekeeping_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ix_messages_project_contact"


def upgrade() -> None:
    op.drop_index(_NAME, table_name="messages")
    op.create_index(_NAME, "messages", ["project_id", "contact", "id", "number_id"])


def downgrade() -> None:
    op.drop_index(_NAME, table_name="messages")
    op.create_index(_NAME, "messages", ["project_id", "contact", "id"])
