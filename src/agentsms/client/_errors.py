"""The exceptions the client raises: the API's problem responses, and unreachable servers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import httpx


class AgentsmsClientError(Exception):
    """Base of every exception the agentsms client raises."""


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One ``{field, message}`` item of a problem response."""

    field: str
    message: str


@dataclass(eq=False)
class ApiError(AgentsmsClientError):
    """The API answered with an error: its RFC 9457 problem detail, field by field.

    Subclasses name the common statuses (:class:`NotFoundError`, :class:`ConflictError`,
    ...); ``code`` is the API's stable machine code (``not_found``, ``validation_failed``,
    ``recipient_opted_out``, ...) and ``errors`` lists ``{field, message}`` items.
    """

    status: int
    title: str
    detail: str
    code: str = "http_error"
    errors: list[FieldProblem] = field(default_factory=list)
    type: str = "about:blank"

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.detail}"

    def problem(self) -> dict[str, Any]:
        """The problem detail as the API sent it (a JSON-ready dict)."""
        return {
            "type": self.type,
            "status": self.status,
            "code": self.code,
            "title": self.title,
            "detail": self.detail,
            "errors": [{"field": e.field, "message": e.message} for e in self.errors],
        }

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """Read a problem+json body; fall back to the status line for anything else.

        The instance is of the subclass for the status (e.g. :class:`NotFoundError` for 404).
        """
        kind = _BY_STATUS.get(response.status_code)
        if kind is None:
            kind = ServerError if response.status_code >= 500 else ApiError
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            text = response.text.strip()[:300] or response.reason_phrase
            return kind(response.status_code, response.reason_phrase, text)
        raw_errors = body.get("errors")
        errors = [
            FieldProblem(str(item.get("field", "")), str(item.get("message", "")))
            for item in (raw_errors if isinstance(raw_errors, list) else [])
            if isinstance(item, dict)
        ]
        detail = body.get("detail")
        title = str(body.get("title") or response.reason_phrase)
        return kind(
            status=response.status_code,
            title=title,
            detail=str(detail) if detail is not None else title,
            code=str(body.get("code") or "http_error"),
            errors=errors,
            type=str(body.get("type") or "about:blank"),
        )


class BadRequestError(ApiError):
    """400: the request could not be read."""


class AuthenticationError(ApiError):
    """401: no API key, or one that is unknown or revoked."""


class PermissionDeniedError(ApiError):
    """403: the key may not do this."""


class NotFoundError(ApiError):
    """404: no such resource in the calling project."""


class ConflictError(ApiError):
    """409: the resource's state forbids it (e.g. canceling a sent message)."""


class UnprocessableError(ApiError):
    """422: validation failed; ``errors`` names each field and why."""


class RateLimitError(ApiError):
    """429: the project's rate limit; retried automatically before this is raised."""


class ServerError(ApiError):
    """5xx: the server failed."""


_BY_STATUS: Final[dict[int, type[ApiError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableError,
    429: RateLimitError,
}


class ConnectionFailed(AgentsmsClientError):
    """The server could not be reached (refused, DNS, TLS, timeout)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach agentsms at {url}: {reason}")
        self.url = url
        self.reason = reason


class StreamIdle(ConnectionFailed):
    """An event stream sent nothing (not even a ping) for longer than its read timeout."""


def describe(error: httpx.TransportError) -> str:
    """A one-line reason for a network error (some have an empty message)."""
    text = str(error).strip()
    return text or type(error).__name__
