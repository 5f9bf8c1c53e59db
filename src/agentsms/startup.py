"""Checks made before a process serves anything: the port is free, the database is ready."""

from __future__ import annotations

import socket
from pathlib import Path

from sqlalchemy import exc, make_url, pool
from sqlalchemy.ext.asyncio import create_async_engine

from agentsms.config import Settings
from agentsms.store import migrate

CONNECT_TIMEOUT_SECONDS = 10.0


class DatabaseNotReady(Exception):
    """The database cannot be used as it is; the message is one line for the operator."""


def bind_listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port``, ready for the server to listen on.

    Binding first means a port in use is found before anything else (a worker, the demo)
    has started. Raises ``OSError`` as ``bind`` does.
    """
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = info[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
    except OSError:
        listener.close()
        raise
    listener.set_inheritable(True)
    return listener


def _check_sqlite_directory(url: str) -> None:
    path = make_url(url).database or ""
    if path in ("", ":memory:") or path.startswith("file:"):
        return
    folder = Path(path).expanduser().resolve().parent
    if not folder.is_dir():
        raise DatabaseNotReady(
            f"the folder {folder} of the SQLite database {path} does not exist; create it "
            "or change AGENTSMS_DATABASE_URL"
        )


def describe_database(url: str) -> str:
    """The database URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


async def check_database(settings: Settings) -> None:
    """Raise ``DatabaseNotReady`` unless the database answers and its schema is the newest.

    SQLite databases are migrated by ``serve`` itself, so only their reachability matters;
    a PostgreSQL database must have been brought to the head revision by ``agentsms migrate``.
    """
    if settings.is_sqlite:
        _check_sqlite_directory(settings.database_url)
        return
    where = describe_database(settings.database_url)
    engine = create_async_engine(
        settings.database_url,
        poolclass=pool.NullPool,
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
    )
    try:
        async with engine.connect() as conn:
            current = await migrate.current_revision(conn)
    except (OSError, TimeoutError, exc.SQLAlchemyError) as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        raise DatabaseNotReady(f"cannot use the database {where}: {reason}") from error
    finally:
        await engine.dispose()
    head = migrate.head_revision()
    if current != head:
        raise DatabaseNotReady(
            f"the database {where} has its schema at revision {current or 'none (empty)'}, "
            f"the newest is {head}: run `agentsms migrate` first"
        )
