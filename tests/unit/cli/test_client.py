"""The CLI's local parsing: recipient CSV files and ``--send-at`` times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer

from agentsms.cli.client import parse_moment, read_recipients


def write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "recipients.csv"
    path.write_text(text, encoding=encoding)
    return path


def test_other_columns_become_variables_and_known_ones_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Phone,name,body,send_at,external_id,plan\n"
        "+14155552671,Ann,,,ext-1,gold\n"
        "\n"
        '+14155552672,"Bob, Jr.",Custom {{name}},2030-01-01T00:00:00Z,,\n',
    )

    rows = read_recipients(path)

    assert [row.line for row in rows] == [2, 4]
    assert rows[0].recipient == {
        "to": "+14155552671",
        "external_id": "ext-1",
        "variables": {"name": "Ann", "plan": "gold"},
    }
    assert rows[1].recipient == {
        "to": "+14155552672",
        "body": "Custom {{name}}",
        "send_at": "2030-01-01T00:00:00Z",
        "variables": {"name": "Bob, Jr.", "plan": ""},
    }


def test_a_byte_order_mark_and_the_number_column_name_are_understood(tmp_path: Path) -> None:
    path = write(tmp_path, "number\n+14155552671\n", encoding="utf-8-sig")

    assert [row.recipient for row in read_recipients(path)] == [{"to": "+14155552671"}]


def test_a_file_without_a_recipient_column_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "name,mobile\nAnn,+14155552671\n")

    with pytest.raises(typer.Exit) as raised:
        read_recipients(path)

    assert raised.value.exit_code == 1


def test_send_at_accepts_relative_unix_and_zoned_iso_times() -> None:
    now = datetime.now(UTC)

    relative = parse_moment("+90s")
    assert relative is not None
    assert abs(relative - (now + timedelta(seconds=90))) < timedelta(seconds=5)
    assert parse_moment("+2h") is not None
    assert parse_moment("1700000000") == datetime.fromtimestamp(1_700_000_000, UTC)
    assert parse_moment("2030-01-01T09:00:00+02:00") == datetime(2030, 1, 1, 7, tzinfo=UTC)
    assert parse_moment("2030-01-01T09:00:00") is None
    assert parse_moment("tomorrow") is None
