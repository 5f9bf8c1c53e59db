"""conversations, personas, pathways, opt-outs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import agentsms.store.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _time(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, agentsms.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("purpose", sa.String(length=20), nullable=True))
    op.create_index("ix_messages_conversation", "messages", ["conversation_id", "id"])
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("number_id", sa.String(length=40), nullable=True),
        sa.Column("agent_number", sa.String(length=20), nullable=False),
        sa.Column("user_number", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("thread_key", sa.String(length=120), nullable=True),
        sa.Column("agent_paused", sa.Boolean(), nullable=False),
        sa.Column("engaged", sa.Boolean(), nullable=False),
        sa.Column("settings", _JSON, nullable=False),
        sa.Column("metadata", _JSON, nullable=False),
        sa.Column("state", _JSON, nullable=False),
        sa.Column("current_node_id", sa.String(length=100), nullable=True),
        sa.Column("outcome", sa.String(length=100), nullable=True),
        sa.Column("extracted", _JSON, nullable=False),
        sa.Column("end_reason", sa.String(length=40), nullable=True),
        sa.Column("timer_epoch", sa.Float(), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        _time("ended_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint("thread_key", name=op.f("uq_conversations_thread_key")),
    )
    op.create_index("ix_conversations_project_id", "conversations", ["project_id", "id"])
    op.create_index("ix_conversations_project_user", "conversations", ["project_id", "user_number"])
    op.create_table(
        "optouts",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("recipient", sa.String(length=20), nullable=False),
        sa.Column("keyword", sa.String(length=40), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("project_id", "recipient", name=op.f("pk_optouts")),
    )
    op.create_table(
        "personas",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("alias", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("production_version", sa.Integer(), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personas")),
        sa.UniqueConstraint("project_id", "alias", name="uq_personas_project_alias"),
    )
    op.create_table(
        "persona_versions",
        sa.Column("persona_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("config", _JSON, nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("persona_id", "version", name=op.f("pk_persona_versions")),
    )
    op.create_table(
        "pathways",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pathways")),
    )
    op.create_index("ix_pathways_project_id", "pathways", ["project_id"])
    op.create_table(
        "pathway_versions",
        sa.Column("pathway_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", _JSON, nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("pathway_id", "version", name=op.f("pk_pathway_versions")),
    )
    op.create_table(
        "dispositions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispositions")),
        sa.UniqueConstraint("project_id", "name", name="uq_dispositions_project_name"),
    )
    op.create_table(
        "extraction_schemas",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("schema", _JSON, nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_extraction_schemas")),
        sa.UniqueConstraint("project_id", "name", name="uq_extraction_schemas_project_name"),
    )
    op.create_table(
        "simulator_people",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("replies", _JSON, nullable=False),
        sa.Column("delay_seconds", sa.Float(), nullable=False),
        sa.Column("next_index", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Boolean(), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("project_id", "number", name=op.f("pk_simulator_people")),
    )


def downgrade() -> None:
    for table in (
        "simulator_people",
        "extraction_schemas",
        "dispositions",
        "pathway_versions",
        "pathways",
        "persona_versions",
        "personas",
        "optouts",
        "conversations",
    ):
        op.drop_table(table)
    op.drop_index("ix_messages_conversation", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("purpose")
