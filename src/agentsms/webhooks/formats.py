"""Payload formats for per-conversation webhook URLs.

A conversation's ``webhook_url`` normally receives the same Standard Webhooks payload as
the project's endpoints (``{"id", "type", "created_at", "data"}``). A send may name a
``webhook_format`` as well; the URL then receives what that format's formatter makes of
each event instead (still signed and retried like every delivery), or nothing for the
events the formatter returns ``None`` for. Vendor-compatible surfaces register the
formats their clients expect (``register``); the registry itself knows no vendor.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

Formatter = Callable[[Mapping[str, Any]], Mapping[str, Any] | None]
"""Turns a standard payload (``{"id", "type", "created_at", "data"}``) into the body to
send, or ``None`` when the format has no such event."""

_FORMATS: dict[str, Formatter] = {}
# Modules that register formats when imported (loaded on first use, in any process).
_PROVIDERS = ("agentsms.api.compat",)


def register(name: str, formatter: Formatter) -> None:
    """Make ``name`` a valid ``webhook_format``; registering a name again replaces it."""
    _FORMATS[name] = formatter


def _load() -> None:
    if not _FORMATS:
        for module in _PROVIDERS:
            importlib.import_module(module)


def names() -> list[str]:
    """The registered format names, sorted."""
    _load()
    return sorted(_FORMATS)


def known(name: str) -> bool:
    _load()
    return name in _FORMATS


def apply(name: str, payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``payload`` in format ``name``; ``KeyError`` for an unknown format."""
    _load()
    return _FORMATS[name](payload)
