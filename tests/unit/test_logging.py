"""The log formatter's quick path for plain standard-library records writes the same text
as structlog's ``ProcessorFormatter``."""

from __future__ import annotations

import logging
import re
import sys

import pytest
import structlog

from agentsms.logging import configure

STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def _record(name: str, level: int, msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def _both(record: logging.LogRecord) -> tuple[str, str]:
    formatter = logging.getLogger().handlers[0].formatter
    assert isinstance(formatter, structlog.stdlib.ProcessorFormatter)
    quick = formatter.format(record)
    reference = structlog.stdlib.ProcessorFormatter.format(formatter, record)
    assert STAMP.search(quick) is not None, quick
    return STAMP.sub("<t>", quick), STAMP.sub("<t>", reference)


@pytest.fixture
def restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield None
    root.handlers, root.level = handlers, level


@pytest.mark.parametrize("log_format", ["console", "json"])
@pytest.mark.usefixtures("restore_logging")
def test_plain_records_render_as_processor_formatter_does(log_format: str) -> None:
    configure(log_format, "INFO")
    records = [
        _record(
            "uvicorn.access",
            logging.INFO,
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5",
            "POST",
            "/v1/messages",
            "1.1",
            202,
        ),
        _record(
            "uvicorn.access", logging.INFO, '%s - "%s %s HTTP/%s" %d', "::1", "GET", "/", "1.1", 404
        ),
        _record("sqlalchemy.engine", logging.WARNING, "short"),
        _record("x", logging.ERROR, "with %s", {"a": "dict"}),
        _record("x", logging.INFO, "has extra", custom="value"),
    ]
    for record in records:
        quick, reference = _both(record)
        assert quick == reference
        assert record.name in quick
        assert record.getMessage().split()[-1] in quick
    assert records[0].args  # the record itself was not changed
    try:
        raise ValueError("boom")
    except ValueError:
        failed = _record("x", logging.ERROR, "failed", exc_info=sys.exc_info())
    quick, reference = _both(failed)
    assert quick == reference
    assert "boom" in quick
