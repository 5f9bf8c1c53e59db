"""Indexes the periodic purges find old rows through, a chunk at a time

Revision ID: 0015_housekeeping_indexes
Revises: 0014_contact_timezone
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015_housekeeping_indexes"
down_revision: str | None = "0014_contact_timezone"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("ix_idempotency_keys_expires_at", "idempotency_keys", "expires_at"),
    ("ix_webhook_events_created_at", "webhook_events", "created_at"),
    ("ix_webhook_deliveries_created_at", "webhook_deliveries", "created_at"),
)


def upgrade() -> None:
    for name, table, column in _INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _ in _INDEXES:
        op.drop_index(name, table_name=table)
