"""Reading recipients CSVs for the compose page."""

from __future__ import annotations

import pytest

from agentsms.core.compose import read_csv
from agentsms.errors import ValidationFailed


def test_columns_become_variables_and_lines_are_kept() -> None:
    text = (
        "\ufeffName,Phone,Body,city\nAnn,+14155552671,,Paris\n\n,,,\nBob,+14155552672,Own text,\n"
    )
    rows = read_csv(text, max_rows=10)
    assert [(r.line, r.to, r.body) for r in rows] == [
        (2, "+14155552671", None),
        (5, "+14155552672", "Own text"),
    ]
    assert rows[0].variables == {"Name": "Ann", "city": "Paris"}
    assert rows[1].variables == {"Name": "Bob"}  # an empty cell is a missing value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name\nAnn\n", "no recipient column; name one of to, phone, number (found: name)"),
        ("", "no recipient column; name one of to, phone, number (found: no header)"),
        ("to\n\n", "has no recipients"),
        ("to\n+1\n+2\n+3\n", "has more than 2 recipients"),
    ],
)
def test_unusable_files_name_the_field(text: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        read_csv(text, max_rows=2, field_name="file")
    assert [(e.field, e.message) for e in caught.value.errors] == [("file", message)]
