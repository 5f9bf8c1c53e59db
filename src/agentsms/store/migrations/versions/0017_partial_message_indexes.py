"""messages: the batch and carrier-id indexes hold only the rows that have those values

Most messages are single sends (no ``batch_id``) and every message is stored before the
carrier has given it an id (no ``provider_message_id``), yet each insert wrote an entry for
it into both indexes. Every lookup through them asks for a given value, which a row without
one never matches, so the indexes now leave those rows out (partial indexes; SQLite and
PostgreSQL both use one for ``= value`` and ``IN (values)``).

Revision ID: 0017_partial_message_indexes
Revises: 0016_sticky_sender_index
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_partial_message_indexes"
down_revision: str | None = "0016_sticky_sender_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("ix_messages_batch", ["batch_id", "id"], "batch_id IS NOT NULL"),
    (
        "ix_messages_provider_ref",
        ["provider", "provider_message_id"],
        "provider_message_id IS NOT NULL",
    ),
)


def upgrade() -> None:
    for name, columns, where in _INDEXES:
        op.drop_index(name, table_name="messages")
        op.create_index(
            name,
            "messages",
            columns,
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )


def downgrade() -> None:
    for name, columns, _ in _INDEXES:
        op.drop_index(name, table_name="messages")
        op.create_index(name, "messages", columns)
