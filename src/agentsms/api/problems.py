"""RFC 9457 problem responses for every error the API returns."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from agentsms.errors import AgentsmsError, FieldError, RateLimited
from agentsms.store.faults import DatabaseUnavailable

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> Response:
    body = {
        "type": f"https://agentsms.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "errors": [{"field": e.field, "message": e.message} for e in errors],
    }
    return Response(json.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def from_error(error: AgentsmsError) -> Response:
    headers = None
    if isinstance(error, RateLimited):
        headers = {"Retry-After": str(error.retry_after)}
    return problem(error.status, error.code, error.title, error.detail, error.errors, headers)


def unavailable(error: DatabaseUnavailable) -> Response:
    """``503``: the database is locked, busy or unreachable; retry after ``Retry-After`` s."""
    return problem(
        503,
        "database_unavailable",
        "Service unavailable",
        f"{error.reason}; the request was not carried out, retry after {error.retry_after} s",
        headers={"Retry-After": str(error.retry_after)},
    )


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "request_too_large",
}


def from_http_error(error: StarletteHTTPException) -> Response:
    """The problem response of an ``HTTPException`` (404, 405, 413, ...)."""
    code = _HTTP_CODES.get(error.status_code, "http_error")
    return problem(
        error.status_code,
        code,
        str(error.detail),
        str(error.detail),
        headers=getattr(error, "headers", None),
    )


def _field(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("str", "Recipient") or str(part).startswith("function-"):
            continue
        else:
            path += ("." if path else "") + str(part)
    return path or "body"


def _message(error: dict[str, Any]) -> str:
    if error.get("type") == "extra_forbidden":
        return "unknown field"
    if error.get("type") == "missing":
        return "is required"
    message = str(error.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")


def content_type_error(request: Request) -> FieldError | None:
    """Why a request's body was not read as JSON: its ``Content-Type`` is another (curl's
    ``-d`` sends ``application/x-www-form-urlencoded``), or missing while a body came;
    ``None`` when it is JSON or there is no body at all."""
    given = request.headers.get("content-type", "")
    media = given.partition(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return None
    sized = request.headers.get("content-length", "0") not in ("", "0")
    if not media and not sized and "transfer-encoding" not in request.headers:
        return None
    return FieldError(
        "Content-Type",
        "send the body as JSON with Content-Type: application/json "
        f"(got {given or 'no Content-Type'})",
    )


def validation_errors(errors: Sequence[dict[str, Any]]) -> list[FieldError]:
    seen: dict[tuple[str, str], FieldError] = {}
    for error in errors:
        item = FieldError(_field(error.get("loc", ())), _message(error))
        seen.setdefault((item.field, item.message), item)
    return list(seen.values())


def body_not_json(request: Request, error: RequestValidationError) -> FieldError | None:
    """The ``Content-Type`` error when the body failed because it was not sent as JSON."""
    if not any(tuple(e.get("loc", ()))[:1] == ("body",) for e in error.errors()):
        return None
    return content_type_error(request)


def install(app: FastAPI) -> None:
    """Register the handlers that turn errors into problem responses."""

    @app.exception_handler(AgentsmsError)
    async def _agentsms_error(_: Request, error: AgentsmsError) -> Response:
        return from_error(error)

    @app.exception_handler(DatabaseUnavailable)
    async def _unavailable(_: Request, error: DatabaseUnavailable) -> Response:
        return unavailable(error)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> Response:
        header = body_not_json(request, error)
        if header is not None:
            detail = f"{header.field}: {header.message}"
            return problem(
                415, "unsupported_media_type", "Unsupported media type", detail, [header]
            )
        errors = validation_errors(error.errors())
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:20])
        return problem(422, "validation_failed", "Validation failed", detail, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, error: StarletteHTTPException) -> Response:
        return from_http_error(error)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> Response:
        # Starlette's last resort: the error is logged and re-raised after this answer.
        return problem(500, "internal_error", "Internal error", "an unexpected error occurred")
