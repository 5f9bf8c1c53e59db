"""carrier provider accounts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import agentsms.store.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_TIME = agentsms.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "provider_accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("api_base_url", sa.String(length=500), nullable=False),
        sa.Column("credentials", sa.Text(), nullable=False),
        sa.Column("credential_keys", _JSON, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_provider_accounts_project_id_projects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_accounts")),
    )
    op.create_index(
        op.f("ix_provider_accounts_project_id"), "provider_accounts", ["project_id"], unique=False
    )
    with op.batch_alter_table("numbers") as batch:
        batch.add_column(sa.Column("provider_account_id", sa.String(length=40), nullable=True))
    op.create_table(
        "inbound_seen",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("provider_message_id", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "provider_message_id", name=op.f("pk_inbound_seen")),
    )
    op.create_table(
        "inbound_parts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("group_key", sa.String(length=200), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("provider_message_id", sa.String(length=200), nullable=True),
        sa.Column("from_number", sa.String(length=32), nullable=False),
        sa.Column("to_number", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_parts")),
        sa.UniqueConstraint("account_id", "group_key", "part", name="uq_inbound_parts_group_part"),
    )
    op.create_table(
        "media",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("content_type", sa.String(length=200), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_media")),
    )
    op.create_index(op.f("ix_media_project_id"), "media", ["project_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_media_project_id"), table_name="media")
    op.drop_table("media")
    op.drop_table("inbound_parts")
    op.drop_table("inbound_seen")
    with op.batch_alter_table("numbers") as batch:
        batch.drop_column("provider_account_id")
    op.drop_index(op.f("ix_provider_accounts_project_id"), table_name="provider_accounts")
    op.drop_table("provider_accounts")
