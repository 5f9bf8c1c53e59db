"""Plumbing shared by the vendor-compatible APIs mounted under ``/compat/<vendor>``.

A vendor module builds an ``APIRouter(prefix="/compat/<vendor>")`` and a ``Vendor`` naming
it and the function that renders a ``Failure`` in the vendor's own error body.
``install`` (called by ``api.compat.vendors.install``) then makes every error under the vendor's
prefix come out in that body: our domain errors, request validation, unknown paths (404),
wrong methods (405), rate limits (429), a request body that does not arrive in time (408),
and unexpected failures (500, or 503 / 504 when the database cannot be reached or does
not answer in time). Nothing outside the prefix changes.

Credentials: ``bearer_token`` reads ``Authorization: Bearer``; ``project_for_api_key``
maps a vendor's API key to our project (cached, rate-limited); ``issue_token`` and
``project_for_token`` implement short-lived signed bearer tokens for vendors that
exchange credentials for a token first. ``parse_json`` reads a JSON body into a pydantic
model, optionally matching keys case-insensitively, and fails with field-named errors.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import secrets
import time
import types
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, Union, get_args, get_origin

import jwt
import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentsms.api.deps import project_for_key
from agentsms.api.problems import content_type_error, validation_errors
from agentsms.api.state import AppState
from agentsms.config import Settings
from agentsms.core import credentials, projects
from agentsms.core.projects import Project
from agentsms.core.sending import EMPTY_BODY
from agentsms.errors import (
    AgentsmsError,
    FieldError,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)
from agentsms.store.faults import DatabaseUnavailable, unavailable_cause

log = structlog.get_logger("agentsms.compat")

COMPAT_ROOT = "/compat"
TOKEN_ALGORITHM = "HS256"
TOKEN_PURPOSE = "compat-tokens"
M = TypeVar("M", bound=BaseModel)


# -- errors -----------------------------------------------------------------------------------


class Forbidden(AgentsmsError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class GatewayTimeout(AgentsmsError):
    status = 504
    code = "gateway_timeout"
    title = "Gateway timeout"


@dataclass(frozen=True, slots=True)
class Failure:
    """Any error, reduced to what a vendor error body can say.

    ``detail`` is one sentence naming the bad fields by our internal names; ``errors``
    lists them (a vendor renamer maps them to the vendor's field names). For server-side
    failures (500/503/504) ``detail`` is generic: internals are logged, never returned.
    """

    status: int
    code: str
    detail: str
    errors: Sequence[FieldError] = ()
    headers: Mapping[str, str] = field(default_factory=dict)


ErrorRenderer = Callable[[Failure], Response]


@dataclass(frozen=True, slots=True)
class Vendor:
    """One vendor surface: ``router`` has the prefix ``/compat/{name}``."""

    name: str
    router: APIRouter
    render_error: ErrorRenderer
    case_insensitive_paths: bool = False

    @property
    def prefix(self) -> str:
        return f"{COMPAT_ROOT}/{self.name}"

    def owns(self, path: str) -> bool:
        candidate = path.lower() if self.case_insensitive_paths else path
        return candidate == self.prefix or candidate.startswith(self.prefix + "/")


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "request_too_large",
    429: "rate_limited",
}


def failure_from(error: BaseException) -> Failure:
    """What went wrong, whatever raised it."""
    if isinstance(error, AgentsmsError):
        headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else {}
        return Failure(error.status, error.code, error.detail, error.errors, headers)
    if isinstance(error, RequestValidationError | ValidationError):
        errors = validation_errors(error.errors())  # type: ignore[arg-type]
        return Failure(422, "validation_failed", _summary(errors), errors)
    if isinstance(error, StarletteHTTPException):
        return Failure(
            error.status_code,
            _HTTP_CODES.get(error.status_code, "http_error"),
            str(error.detail),
            (),
            dict(getattr(error, "headers", None) or {}),
        )
    return server_failure(error)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def server_failure(error: BaseException) -> Failure:
    """An unexpected exception: 503 (with ``Retry-After``) if the database is locked, busy
    or could not be reached, 504 if it did not answer in time, else 500."""
    for cause in _chain(error):
        if isinstance(cause, DatabaseUnavailable):
            return Failure(
                503,
                "service_unavailable",
                "the database is unavailable",
                headers={"Retry-After": str(cause.retry_after)},
            )
        if isinstance(cause, TimeoutError | sa_exc.TimeoutError):
            return Failure(504, "gateway_timeout", "the database did not answer in time")
        if unavailable_cause(cause):
            return Failure(503, "service_unavailable", "the database cannot be reached")
    return Failure(500, "internal_error", "an unexpected error occurred")


def _summary(errors: Sequence[FieldError]) -> str:
    return joined(errors[:20])


def joined(errors: Sequence[FieldError]) -> str:
    """``field: message; field: message``: the errors in one sentence."""
    return "; ".join(f"{e.field}: {e.message}" for e in errors)


def error_text(failure: Failure) -> str:
    """The failure's field errors in one sentence, else its detail."""
    return joined(failure.errors) if failure.errors else failure.detail


def invalid(errors: Sequence[FieldError]) -> ValidationFailed:
    """A ``ValidationFailed`` for these field errors, its detail naming them all."""
    return ValidationFailed(joined(errors), errors=list(errors))


def renamed(error: ValidationFailed, rename: Callable[[str], str]) -> ValidationFailed:
    """``error`` with each field renamed (our names to the vendor's), same code; its detail
    names the renamed fields (the original detail when there are none)."""
    errors = [FieldError(rename(e.field), e.message) for e in error.errors]
    return ValidationFailed(joined(errors) or error.detail, errors=errors, code=error.code)


# The body a vendor without media fields may leave out: the conversation's agent writes it.
NO_AGENT_TO_WRITE = "is required unless the agent writes it: no persona/default agent configured"


def agent_writes(text: str) -> str:
    """``text`` with the empty-body reason told for a vendor that has no media fields (the
    core's reason names ``media_urls``, a field the vendor does not have)."""
    return text.replace(EMPTY_BODY, NO_AGENT_TO_WRITE)


def json_errors(error_body: Callable[[Failure], tuple[int, Any]]) -> ErrorRenderer:
    """The ``render_error`` of a vendor whose ``error_body`` gives a status and JSON body."""

    def render_error(failure: Failure) -> Response:
        status, body = error_body(failure)
        return JSONResponse(body, status_code=status, headers=dict(failure.headers) or None)

    return render_error


def iso_z(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, as the vendors write times."""
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


class Strict(BaseModel):
    """A vendor request shape: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


# -- mounting ---------------------------------------------------------------------------------

Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def install(app: FastAPI, settings: Settings, vendors: Sequence[Vendor]) -> None:
    """Mount each vendor's router and scope error rendering to its prefix.

    Call after ``problems.install`` (whose handlers stay in force outside the prefixes).
    """
    for vendor in vendors:
        if vendor.router.prefix != vendor.prefix:
            raise ValueError(f"{vendor.name}: its router's prefix must be {vendor.prefix}")
        app.include_router(vendor.router)
    for kind in (
        AgentsmsError,
        RequestValidationError,
        StarletteHTTPException,
        DatabaseUnavailable,
    ):
        original: Handler = app.exception_handlers[kind]
        app.exception_handlers[kind] = _scoped(vendors, original)
    app.add_middleware(
        CompatGuard,
        vendors=list(vendors),
        body_timeout_seconds=settings.request_body_timeout_seconds,
        response_timeout_seconds=settings.compat_response_timeout_seconds,
    )


def vendor_for(vendors: Sequence[Vendor], path: str) -> Vendor | None:
    if path[: len(COMPAT_ROOT)].lower() != COMPAT_ROOT:
        return None
    for vendor in vendors:
        if vendor.owns(path):
            return vendor
    return None


def _scoped(vendors: Sequence[Vendor], original: Handler) -> Handler:
    async def handler(request: Request, error: Any) -> Response:
        # The path is already case-folded by ``CompatGuard`` for case-insensitive vendors.
        vendor = vendor_for(vendors, request.scope["path"])
        if vendor is None:
            answer = original(request, error)
            return await answer if inspect.isawaitable(answer) else answer
        return vendor.render_error(failure_from(error))

    return handler


class CompatGuard:
    """ASGI middleware for the vendor prefixes: folds the path's case for vendors whose
    paths are case-insensitive, bounds the time the request body may take to arrive
    (408) and the time until the answer starts (504), and renders unexpected exceptions
    in the vendor's error body."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        vendors: Sequence[Vendor],
        body_timeout_seconds: float,
        response_timeout_seconds: float,
    ) -> None:
        self.app = app
        self.vendors = vendors
        self.body_timeout = body_timeout_seconds
        self.response_timeout = response_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        vendor = vendor_for(self.vendors, scope["path"]) if scope["type"] == "http" else None
        if vendor is None:
            await self.app(scope, receive, send)
            return
        if vendor.case_insensitive_paths:
            # In place, so the outer middleware sees the route the router matched.
            scope["path"] = scope["path"].lower()
        deadline = time.monotonic() + self.body_timeout
        body_done = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                # FastAPI re-raises an HTTPException met while reading the body.
                raise StarletteHTTPException(
                    408,
                    detail=f"the request body did not arrive within {self.body_timeout:g} s",
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        answer_by = asyncio.timeout(self.response_timeout)

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                answer_by.reschedule(None)  # the deadline is for starting the answer
            await send(message)

        try:
            try:
                async with answer_by:
                    await self.app(scope, timed_receive, tracking_send)
            except TimeoutError:
                if not answer_by.expired():
                    raise
                raise GatewayTimeout(
                    f"no answer within {self.response_timeout:g} s; the database did not "
                    "answer in time"
                ) from None
        except Exception as error:
            if started:
                raise
            failure = failure_from(error)
            if failure.status >= 500:
                log.exception("compat.unhandled", vendor=vendor.name, status=failure.status)
            await vendor.render_error(failure)(scope, receive, send)


# -- credentials ------------------------------------------------------------------------------


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def rate_limit(state: AppState, project: Project) -> None:
    """The project's request rate limit (``RateLimited`` when over it)."""
    await state.limiter.check(project, state.settings.default_rate_limit_per_second)


async def project_for_api_key(state: AppState, api_key: str | None, client: str) -> Project:
    """The project of an agentsms API key, rate-limited (``Unauthorized`` if none; failures
    counted against the address ``client``)."""
    if not api_key:
        raise Unauthorized("missing API key")
    project = await project_for_key(state, api_key, client)
    await rate_limit(state, project)
    return project


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a compat bearer token says: whose it is, where it may be used, until when."""

    project_id: str
    key_id: str
    scope: str
    expires_at: datetime


async def exchange_api_key(
    state: AppState, project_id: str, api_key: str, client: str
) -> tuple[Project, str]:
    """Check that ``api_key`` is a live key of ``project_id``: the project and the key id.

    ``Unauthorized`` for an unknown key (counted against the address ``client``; past the
    limit, ``RateLimited``), ``Forbidden`` for a key of another project.
    """
    per_minute = state.settings.auth_failures_per_minute
    async with state.limiter.guard_credentials(client, per_minute), state.db.read() as conn:
        project, key_id = await projects.authenticate_key(conn, api_key)
    if project.id != project_id:
        raise Forbidden("the API key does not belong to this project")
    await rate_limit(state, project)
    return project, key_id


def issue_token(
    settings: Settings, vendor: str, project_id: str, key_id: str, scope: str, ttl: float
) -> tuple[str, datetime]:
    """A signed bearer token for ``vendor``'s surface and its expiry time.

    Signed (HS256 with a key derived from ``AGENTSMS_SECRET_KEY``), not stored: any API
    process sharing the secret verifies it without a database write per exchange. It
    names the API key it was issued from, so revoking that key ends the token too.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    expires = now + timedelta(seconds=ttl)
    claims = {
        "iss": "agentsms",
        "aud": vendor,
        "sub": project_id,
        "key": key_id,
        "scope": scope,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": secrets.token_urlsafe(12),
    }
    key = credentials.signing_keys(settings, TOKEN_PURPOSE)[0]
    return jwt.encode(claims, key, algorithm=TOKEN_ALGORITHM), expires


def read_token(settings: Settings, vendor: str, token: str) -> TokenClaims:
    """The claims of a token ``issue_token`` made for ``vendor``; ``Unauthorized`` if it is
    expired, tampered with, for another vendor, or signed with a key we no longer have."""
    expired = False
    for key in credentials.signing_keys(settings, TOKEN_PURPOSE):
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[TOKEN_ALGORITHM],
                audience=vendor,
                issuer="agentsms",
                options={"require": ["exp", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            expired = True
            continue
        except jwt.InvalidTokenError:
            continue
        if not isinstance(claims.get("key"), str) or not isinstance(claims.get("scope"), str):
            break
        return TokenClaims(
            project_id=str(claims["sub"]),
            key_id=claims["key"],
            scope=claims["scope"],
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )
    raise Unauthorized("the bearer token has expired" if expired else "invalid bearer token")


async def project_for_token(
    state: AppState, vendor: str, token: str | None
) -> tuple[Project, TokenClaims]:
    """The project a bearer token of ``vendor`` acts for, rate-limited.

    ``Unauthorized`` when the token is missing or unreadable, or its API key is revoked
    (checked on every use; the answer is cached like API keys).
    """
    if not token:
        raise Unauthorized("missing bearer token")
    claims = read_token(state.settings, vendor, token)
    cache_key = f"key_id:{claims.key_id}"
    cached = state.key_cache.get(cache_key)
    now = time.monotonic()
    if cached is not None and cached[1] > now:
        project = cached[0]
    else:
        async with state.db.read() as conn:
            project = await projects.project_for_key_id(conn, claims.key_id)
        state.remember_key(cache_key, project, now)
    if project.id != claims.project_id:
        raise Unauthorized("invalid bearer token")
    await rate_limit(state, project)
    return project, claims


# -- request bodies ---------------------------------------------------------------------------


async def parse_json(request: Request, model: type[M], *, case_insensitive: bool = False) -> M:
    """The request's JSON body as ``model``; ``ValidationFailed`` naming each bad field.

    With ``case_insensitive``, object keys match the model's field names (aliases) in any
    case, as ASP.NET and other frameworks bind them.
    """
    raw = await request.body()
    try:
        data = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError):
        header = content_type_error(request)
        if header is not None:  # e.g. a form-encoded body (curl -d without -H)
            raise invalid([header]) from None
        raise ValidationFailed(
            "body: is not valid JSON", errors=[FieldError("body", "is not valid JSON")]
        ) from None
    if not isinstance(data, dict):
        raise ValidationFailed(
            "body: must be a JSON object", errors=[FieldError("body", "must be a JSON object")]
        )
    if case_insensitive:
        data = fold_keys(data, model)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        errors = validation_errors(error.errors())  # type: ignore[arg-type]
        raise ValidationFailed(_summary(errors), errors=errors) from None


def fold_keys(value: Any, annotation: Any) -> Any:
    """``value`` with object keys renamed to ``annotation``'s field names, matched without
    regard to case, through nested models, lists and optionals."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            if arg is not type(None):
                return fold_keys(value, arg)
        return value
    if origin in (list, tuple, Sequence) and isinstance(value, list):
        args = get_args(annotation)
        return [fold_keys(item, args[0]) for item in value] if args else value
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not isinstance(value, dict):
            return value
        fields = {
            (info.alias or name).lower(): (info.alias or name, info.annotation)
            for name, info in annotation.model_fields.items()
        }
        folded: dict[Any, Any] = {}
        for key, item in value.items():
            hit = fields.get(key.lower()) if isinstance(key, str) else None
            if hit is None:
                folded[key] = item
            else:
                folded[hit[0]] = fold_keys(item, hit[1])
        return folded
    return value


def json_body_docs(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body that ``parse_json`` reads (inlined schema)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    content = {"application/json": {"schema": inline(schema)}}
    return {"requestBody": {"required": True, "content": content}}
