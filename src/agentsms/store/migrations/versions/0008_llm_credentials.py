"""a project's own LLM API key, encrypted at rest

Revision ID: 0008_llm_credentials
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import agentsms.store.types

revision: str = "0008_llm_credentials"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "llm_credentials",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("api_key", sa.Text(), nullable=False),
        sa.Column("hint", sa.String(length=16), nullable=False),
        sa.Column("updated_at", agentsms.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_llm_credentials_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_llm_credentials")),
    )


def downgrade() -> None:
    op.drop_table("llm_credentials")
