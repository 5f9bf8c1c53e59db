"""structlog set-up: console for people, JSON for machines, on every line.

Lines from libraries that use the standard ``logging`` module (uvicorn's access log, the
database drivers) go through the same renderer, so ``AGENTSMS_LOG_FORMAT=json`` gives JSON on
every line. httpx's one INFO line per outbound request is not logged.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

QUIET_LIBRARIES = {
    "alembic": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
}
"""Libraries that narrate routine work at INFO, and the level they log at here instead."""


class _Formatter(structlog.stdlib.ProcessorFormatter):
    """``ProcessorFormatter`` that renders a plain standard-library record (uvicorn's access
    log line, one per request) without first copying the record.

    The copy only protects the record from the chain's changes, and such a record (no
    exception, no stack, no structlog event dict) is not changed by it: the text is the
    same as ``ProcessorFormatter.format`` makes, for a fraction of the time.
    """

    def format(self, record: logging.LogRecord) -> str:
        if (
            record.exc_info
            or record.stack_info
            or self.pass_foreign_args
            or not self.use_get_message
            or hasattr(record, "_logger")
        ):
            return super().format(record)
        method = record.levelname.lower()
        event: Any = {"event": record.getMessage(), "_record": record, "_from_structlog": False}
        for processor in self.foreign_pre_chain or ():
            event = processor(self.logger, method, event)
        for processor in self.processors:
            event = processor(self.logger, method, event)
        return str(event)


def configure(log_format: str = "console", level: str = "INFO") -> None:
    """Send structlog's and the standard library's log lines through one renderer."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamp,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        _Formatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                stamp,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric)
    for name, quiet_level in QUIET_LIBRARIES.items():
        logging.getLogger(name).setLevel(max(numeric, quiet_level))
