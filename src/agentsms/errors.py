"""Errors agentsms reports to a caller. The API turns each into an RFC 9457 problem with a
stable ``code``.

At the bottom of the layers (it imports nothing of ours) so that every layer raises the
same classes: the domain (``core``), agents, webhooks and providers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AgentsmsError",
    "Conflict",
    "FieldError",
    "NotFound",
    "RateLimited",
    "Unauthorized",
    "ValidationFailed",
    "invalid",
]


@dataclass(frozen=True, slots=True)
class FieldError:
    """What is wrong with one input field (``field`` is a dotted path like ``recipients[3].to``)."""

    field: str
    message: str


class AgentsmsError(Exception):
    """Base of every error agentsms reports to a caller."""

    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(
        self, detail: str, *, errors: Sequence[FieldError] = (), code: str | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)
        if code is not None:
            self.code = code


class ValidationFailed(AgentsmsError):
    status = 422
    code = "validation_failed"
    title = "Validation failed"


class NotFound(AgentsmsError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(AgentsmsError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Unauthorized(AgentsmsError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class RateLimited(AgentsmsError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def invalid(field: str, message: str, *, code: str | None = None) -> ValidationFailed:
    """A validation failure about one field."""
    return ValidationFailed(f"{field}: {message}", errors=[FieldError(field, message)], code=code)
