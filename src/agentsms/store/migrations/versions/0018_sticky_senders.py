"""sticky_senders: each person's newest message and sender, instead of a contact index

Every send to a pool of several numbers asks which number its recipient last talked to. The
answer came from ``ix_messages_project_contact``, an index over every message by person: at
500,000 messages it is 66 MB, and each send read a random page of it from disk (and wrote
one). ``sticky_senders`` holds one row per person of a project (their newest message id and
its number), kept as messages are inserted, so the lookup reads a table the size of the
address book. It is filled from the messages here; the index goes.

Revision ID: 0018_sticky_senders
Revises: 0017_partial_message_indexes
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_sticky_senders"
down_revision: str | None = "0017_partial_message_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_messages_project_contact"
_FILL = {
    # SQLite takes a bare column from the row that holds the group's max().
    "sqlite": (
        "INSERT INTO sticky_senders (project_id, contact, message_id, number_id)"
        " SELECT project_id, contact, max(id), number_id FROM messages"
        " GROUP BY project_id, contact"
    ),
    "postgresql": (
        "INSERT INTO sticky_senders (project_id, contact, message_id, number_id)"
        " SELECT DISTINCT ON (project_id, contact) project_id, contact, id, number_id"
        " FROM messages ORDER BY project_id, contact, id DESC"
    ),
}


def upgrade() -> None:
    op.create_table(
        "sticky_senders",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("contact", sa.String(length=20), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("number_id", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("project_id", "contact", name=op.f("pk_sticky_senders")),
        sqlite_with_rowid=False,
    )
    op.execute(_FILL[op.get_bind().dialect.name])
    op.drop_index(_INDEX, table_name="messages")


def downgrade() -> None:
    op.create_index(_INDEX, "messages", ["project_id", "contact", "id", "number_id"])
    op.drop_table("sticky_senders")
