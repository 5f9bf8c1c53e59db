"""messages: iMessage expressive effect, inline replies and reactions; webhook endpoints: signing
scheme, payload format, timeout and format options

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import agentsms.store.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = agentsms.store.types.UTCDateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("send_style", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("reply_to_message_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("reply_parent_unresolved", sa.Boolean(), nullable=True))
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("signing_scheme", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("payload_format", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("timeout_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("options", _JSON, nullable=True))

    op.create_table(
        "message_reactions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("conversation_id", sa.String(length=40), nullable=True),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("reaction", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("from_number", sa.String(length=20), nullable=False),
        sa.Column("to_number", sa.String(length=20), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_message_reactions_message", "message_reactions", ["message_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_message_reactions_message", table_name="message_reactions")
    op.drop_table("message_reactions")
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("options")
        batch.drop_column("timeout_seconds")
        batch.drop_column("payload_format")
        batch.drop_column("signing_scheme")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("reply_parent_unresolved")
        batch.drop_column("reply_to_message_id")
        batch.drop_column("send_style")
