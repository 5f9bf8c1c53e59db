"""Migration 0011_message_purpose on existing data: every message gets a purpose (the timer
ones renamed), every opt-out a source; and back down."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import create_engine, text

from agentsms.store.migrate import alembic_config

BEFORE = "0010_llm_credentials"
NOW = datetime(2026, 1, 1, tzinfo=UTC).isoformat()


def _message(message_id: str, direction: str, purpose: str | None) -> dict[str, Any]:
    return {
        "id": message_id,
        "direction": direction,
        "purpose": purpose,
        "now": NOW,
    }


_INSERT = text(
    "INSERT INTO messages (id, project_id, direction, to_number, from_number, contact, body, "
    "media_urls, channel, status, segments, encoding, price_estimate, currency, metadata, "
    "provider, in_flight, attempts, created_at, updated_at, purpose) VALUES (:id, 'proj_1', "
    ":direction, '+14155550100', '+14155550101', '+14155550101', 'hi', '[]', 'sms', "
    "'queued', 1, 'GSM-7', 0, 'USD', '{}', 'simulator', 0, 0, :now, :now, :purpose)"
)


def test_existing_rows_get_a_purpose_and_a_source(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    config = alembic_config(f"sqlite+aiosqlite:///{path}")
    command.upgrade(config, BEFORE)
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        for row in (
            _message("msg_1", "outbound", None),
            _message("msg_2", "inbound", None),
            _message("msg_3", "outbound", "warning"),
            _message("msg_4", "outbound", "timeout"),
            _message("msg_5", "outbound", "agent"),
        ):
            conn.execute(_INSERT, row)
        conn.execute(
            text("INSERT INTO optouts VALUES ('proj_1', '+14155550101', 'STOP', :now)"),
            {"now": NOW},
        )
    command.upgrade(config, "head")
    with engine.begin() as conn:
        purposes = dict(conn.execute(text("SELECT id, purpose FROM messages ORDER BY id")).all())
        optout = conn.execute(text("SELECT keyword, source, number FROM optouts")).one()
    assert purposes == {
        "msg_1": "api",
        "msg_2": "inbound",
        "msg_3": "timeout_warning",
        "msg_4": "timeout_message",
        "msg_5": "agent",
    }
    assert tuple(optout) == ("STOP", "keyword", None)

    command.downgrade(config, BEFORE)
    with engine.begin() as conn:
        purposes = dict(conn.execute(text("SELECT id, purpose FROM messages ORDER BY id")).all())
    engine.dispose()
    assert purposes == {
        "msg_1": None,
        "msg_2": None,
        "msg_3": "warning",
        "msg_4": "timeout",
        "msg_5": "agent",
    }
