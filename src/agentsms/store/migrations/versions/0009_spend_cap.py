"""The daily spend cap: what each capped project has been charged per UTC day

Revision ID: 0009_spend_cap
Revises: 0008_dashboard_sessions
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_spend_cap"
down_revision: str | None = "0008_dashboard_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "project_daily_usage",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("segments", sa.BigInteger(), nullable=False),
        sa.Column("spend", sa.Numeric(precision=18, scale=6), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "day", name=op.f("pk_project_daily_usage")),
    )


def downgrade() -> None:
    op.drop_table("project_daily_usage")
