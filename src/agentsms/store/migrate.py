"""Apply and inspect Alembic migrations."""

from __future__ import annotations

import asyncio
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


@cache
def head_revision() -> str | None:
    """The newest migration's revision. Read once per process: finding it loads every
    migration script (about 200 ms, on the event loop when ``/readyz`` asks)."""
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (blocking; no event loop running)."""
    command.upgrade(alembic_config(url), "head")


async def upgrade_async(url: str) -> None:
    """Bring the database to the newest schema from inside a running event loop."""
    await asyncio.to_thread(upgrade, url)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(conn: AsyncConnection) -> str | None:
    return await conn.run_sync(_current)
