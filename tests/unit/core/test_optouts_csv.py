"""Reading a suppression list from CSV: headers, bare columns, dates, and every bad row named."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentsms.core.optouts import export_csv, parse_csv
from agentsms.errors import ValidationFailed


def _fields(text: str) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as failed:
        parse_csv(text)
    return {e.field: e.message for e in failed.value.errors}


def test_a_byte_order_mark_any_case_header_and_repeats() -> None:
    entries = parse_csv("\ufeffPhone_Number,Keyword\r\n+14155550101,Stop\r\n+1 415 555 0101,\r\n")
    assert [(e["recipient"], e["keyword"]) for e in entries] == [("+14155550101", "Stop")]


def test_dates_are_kept_naive_ones_read_as_utc_and_future_ones_refused() -> None:
    (entry,) = parse_csv("phone_number,created_at\n+14155550101,2025-04-11T09:30:00\n")
    assert entry["created_at"] == datetime(2025, 4, 11, 9, 30, tzinfo=UTC)
    fields = _fields(
        "phone_number,created_at\n+14155550101,yesterday\n+14155550102,2999-01-01T00:00:00Z\n"
    )
    assert set(fields) == {"rows[2].created_at", "rows[3].created_at"}
    assert "future" in fields["rows[3].created_at"]


def test_every_bad_row_is_named_by_its_line() -> None:
    fields = _fields("phone_number,keyword\n+14155550101,\n\n123,\n,only words\n,\n+999,\n")
    assert set(fields) == {"rows[4].phone_number", "rows[5].phone_number", "rows[7].phone_number"}
    assert fields["rows[5].phone_number"] == "is empty"


def test_files_without_numbers_are_refused_whole() -> None:
    assert set(_fields("")) == {"file"}
    assert set(_fields("name,email\nAna,a@example.com\n")) == {"file"}


def test_an_export_reads_back() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    row = {
        "recipient": "+14155550101",
        "source": "keyword",
        "keyword": "STOP",
        "number": "+14155550100",
        "created_at": at,
    }
    text = export_csv([row])
    assert (
        text.splitlines()[1]
        == "+14155550101,project,keyword,STOP,+14155550100,2026-01-02T03:04:05Z"
    )
    assert parse_csv(text) == [{"recipient": "+14155550101", "keyword": "STOP", "created_at": at}]
