"""structlog set-up: console for people, JSON for machines, on every line.

Lines from libraries that use the standard ``logging`` module (uvicorn's access log, the
database drivers) go through the same renderer, so ``AGENTSMS_LOG_FORMAT=json`` gives JSON on
every line. httpx's one INFO line per outbound request is not logged.
"""

from __future__ import annotations

import logging

import structlog

QUIET_LIBRARIES = {
    "alembic": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
}
"""Libraries that narrate routine work at INFO, and the level they log at here instead."""


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
        structlog.stdlib.ProcessorFormatter(
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
