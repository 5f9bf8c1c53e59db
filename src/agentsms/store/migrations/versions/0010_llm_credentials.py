"""a project's own LLM API key, encrypted at rest; stored agent configs lose ``api_key_env``

A tenant may no longer name a server environment variable: stored configs drop the field,
so an LLM persona without a ``base_url`` keeps using the operator's key on the operator's
server, and one with its own ``base_url`` gets the project's stored key.

Revision ID: 0010_llm_credentials
Revises: 0009_spend_cap
Create Date: 2026-12-06
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import agentsms.store.types

revision: str = "0010_llm_credentials"
down_revision: str | None = "0009_spend_cap"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_FIELD = "api_key_env"
# The JSON columns that hold agent configs, with each table's primary key.
_HOLDERS = {
    "persona_versions": (("persona_id", "version"), "config"),
    "pathway_versions": (("pathway_id", "version"), "document"),
    "conversations": (("id",), "settings"),
    "numbers": (("id",), "settings"),
    "projects": (("id",), "settings"),
}


def _without_field(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_field(v) for k, v in value.items() if k != _FIELD}
    if isinstance(value, list):
        return [_without_field(item) for item in value]
    return value


def _drop_env_names() -> None:
    bind = op.get_bind()
    for name, (keys, column) in _HOLDERS.items():
        table = sa.table(name, *(sa.column(key) for key in keys), sa.column(column, _JSON))
        holders = sa.cast(table.c[column], sa.Text).like(f"%{_FIELD}%")
        for row in bind.execute(sa.select(table).where(holders)).mappings().all():
            match = sa.and_(*(table.c[key] == row[key] for key in keys))
            bind.execute(
                sa.update(table).where(match).values({column: _without_field(row[column])})
            )


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
    _drop_env_names()


def downgrade() -> None:
    op.drop_table("llm_credentials")
