"""Lease tokens: each claim of a job takes the next token, which fences what that claim
may still change (finish, retry, release, renew) once its lease may have been lost

Revision ID: 0012_lease_tokens
Revises: 0011_message_purpose
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_lease_tokens"
down_revision: str | None = "0011_message_purpose"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("lease_token", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("lease_token")
