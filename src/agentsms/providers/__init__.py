"""Carrier adapters. ``registry`` maps a provider name to its adapter."""

from agentsms.providers.base import (
    InboundMessage,
    Lookup,
    Provider,
    Receipt,
    SendError,
    SendOutcome,
    SendRequest,
    SendResult,
)

__all__ = [
    "InboundMessage",
    "Lookup",
    "Provider",
    "Receipt",
    "SendError",
    "SendOutcome",
    "SendRequest",
    "SendResult",
]
