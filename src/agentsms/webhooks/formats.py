"""Payload formats for per-conversation webhook URLs.

A conversation's ``webhook_url`` normally receives the same Standard Webhooks payload as
the project's endpoints (``{"id", "type", "created_at", "data"}``). A send may name a
``webhook_format`` as well; the URL then receives what that format's formatter makes of
each event instead (still signed and retried like every delivery), or nothing for the
events the formatter returns ``None`` for. Vendor-compatible surfaces register the
formats their clients expect: the process registers them at start-up (``register``, called
by ``runtime.register_webhook_formats`` in the API and the worker alike); the registry itself
knows no vendor and loads nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Formatter = Callable[[Mapping[str, Any]], Mapping[str, Any] | None]
"""Turns a standard payload (``{"id", "type", "created_at", "data"}``) into the body to
send, or ``None`` when the format has no such event."""

_FORMATS: dict[str, Formatter] = {}


def register(name: str, formatter: Formatter) -> None:
    """Make ``name`` a valid ``webhook_format``; registering a name again replaces it."""
    _FORMATS[name] = formatter


def names() -> list[str]:
    """The registered format names, sorted."""
    return sorted(_FORMATS)


def known(name: str) -> bool:
    return name in _FORMATS


def apply(name: str, payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``payload`` in format ``name``; ``KeyError`` for an unknown format."""
    return _FORMATS[name](payload)


# -- endpoint payload formats -----------------------------------------------------------------
# A webhook endpoint may name a ``payload_format`` too: its deliveries are then shaped at
# delivery time, with the endpoint's ``options`` (e.g. how much history to include). Vendor
# surfaces register these as well (``register_endpoint_format``); ``native`` is built in.

EndpointFormatter = Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any] | None]
"""(standard payload, endpoint options) -> the body to send, or ``None`` to skip the event."""

NATIVE = "native"
_ENDPOINT_FORMATS: dict[str, EndpointFormatter] = {NATIVE: lambda payload, options: payload}


def register_endpoint_format(name: str, formatter: EndpointFormatter) -> None:
    """Make ``name`` a valid endpoint ``payload_format``."""
    _ENDPOINT_FORMATS[name] = formatter


def endpoint_format_names() -> list[str]:
    return sorted(_ENDPOINT_FORMATS)


def render(
    name: str | None, payload: Mapping[str, Any], options: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """The body endpoint format ``name`` (``None``: native) makes of ``payload``."""
    if name is None or name == NATIVE:
        return payload
    return _ENDPOINT_FORMATS[name](payload, options or {})
