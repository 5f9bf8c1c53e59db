"""What every dashboard page shares: templates, the signed-in viewer, CSRF, HTML errors."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.responses import RedirectResponse, Response

from agentsms.api.problems import validation_errors
from agentsms.api.state import AppState
from agentsms.core import dashboard_sessions, statuses
from agentsms.core.projects import Project
from agentsms.dashboard.sessions import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    Session,
    SessionSigner,
    load_secrets,
    tokens_match,
)
from agentsms.errors import AgentsmsError, FieldError, Unauthorized
from agentsms.version import __version__

PREFIX = "/dashboard"
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

NAV = (
    ("overview", "Overview", ""),
    ("conversations", "Inbox", "/conversations"),
    ("messages", "Messages", "/messages"),
    ("batches", "Batches", "/batches"),
    ("compose", "Compose", "/compose"),
    ("numbers", "Numbers", "/numbers"),
    ("webhooks", "Webhooks", "/webhooks"),
    ("personas", "Personas", "/personas"),
    ("optouts", "Opt-outs", "/opt-outs"),
    ("settings", "Settings", "/settings"),
    ("keys", "API keys", "/api-keys"),
)


# Scripts only from our own static files; no framing (clickjacking); pages never cached
# (a new API key is shown once). Inline styles carry the progress bars' widths.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SignInRequired(Exception):
    """The page needs a signed-in session."""


class CsrfRefused(Exception):
    """A state-changing request without the session's CSRF token."""


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.agentsms
    return state


def signer_of(request: Request) -> SessionSigner:
    signer: SessionSigner | None = getattr(request.app.state, "dashboard_signer", None)
    if signer is None:
        settings = state_of(request).settings
        signer = SessionSigner(load_secrets(settings), settings.dashboard_session_hours * 3600)
        request.app.state.dashboard_signer = signer
    return signer


def current_session(request: Request) -> Session | None:
    cached: Session | None = getattr(request.state, "dashboard_session", None)
    if cached is None:
        cached = signer_of(request).loads(request.cookies.get(COOKIE))
        request.state.dashboard_session = cached
    return cached


def set_session(request: Request, response: Response, session: Session | None) -> None:
    """Write (or with None, delete) the session cookie on ``response``."""
    secure = request.url.scheme == "https"
    if session is None:
        response.delete_cookie(COOKIE, path=PREFIX, secure=secure, httponly=True, samesite="strict")
        return
    response.set_cookie(
        COOKIE,
        signer_of(request).dumps(session),
        max_age=signer_of(request).max_age,
        path=PREFIX,
        secure=secure,
        httponly=True,
        samesite="strict",
    )


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in person: their project, their session and the app's state."""

    project: Project
    session: Session
    state: AppState


async def viewer(request: Request) -> Viewer:
    session = current_session(request)
    if session is None or session.session_id is None:
        raise SignInRequired
    state = state_of(request)
    try:
        async with state.db.read() as conn:
            project, key_id = await dashboard_sessions.session_project(conn, session.session_id)
    except Unauthorized:
        raise SignInRequired from None
    return Viewer(project=project, session=replace(session, key_id=key_id), state=state)


async def csrf_protect(request: Request) -> None:
    """Refuse a POST whose form field or header does not carry the session's CSRF token."""
    session = current_session(request)
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if session is None or not tokens_match(session.csrf, given):
        raise CsrfRefused


async def viewer_or_none(request: Request) -> Viewer | None:
    try:
        return await viewer(request)
    except SignInRequired:
        return None


SignedIn = Annotated[Viewer, Depends(viewer)]
MaybeSignedIn = Annotated[Viewer | None, Depends(viewer_or_none)]
Protected = Depends(csrf_protect)


def errors_by_field(errors: list[FieldError]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for error in errors:
        found.setdefault(error.field, []).append(error.message)
    return found


def page(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    nav: str | None = None,
) -> Response:
    """Render template ``name`` with what every page needs."""
    session = current_session(request)
    full: dict[str, Any] = {
        "csrf_token": session.csrf if session else "",
        "csrf_field": CSRF_FIELD,
        "nav": NAV,
        "active": nav,
        "prefix": PREFIX,
        "version": __version__,
    }
    full.update(context or {})
    response = templates.TemplateResponse(request, name, full, status_code=status_code)
    response.headers.update(PAGE_HEADERS)
    return response


def form_page(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    nav: str | None = None,
) -> Response:
    """``page`` for a page with a form that a failed post shows again: no field errors, an
    empty form and the query's ``notice`` unless ``context`` has them, then ``extra`` (what the
    failed post shows: its errors, the form as sent) over all."""
    full: dict[str, Any] = {
        "errors": {},
        "form": {},
        "notice": request.query_params.get("notice"),
        **context,
        **(extra or {}),
    }
    return page(request, name, full, status_code=status_code, nav=nav)


class DashboardRoute(APIRoute):
    """Turns errors into HTML pages (the API's own routes keep problem+json)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                target = f"{PREFIX}/login?next={quote(request.url.path)}"
                if request.headers.get("HX-Request"):
                    return Response(status_code=401, headers={"HX-Redirect": target})
                if request.method != "GET":
                    return error_page(request, 401, "Sign in first", "Your session has ended.")
                return RedirectResponse(target, status_code=303)
            except CsrfRefused:
                return error_page(
                    request,
                    403,
                    "Refused",
                    "This form was not sent with a valid security token. "
                    "Reload the page and try again.",
                )
            except AgentsmsError as error:
                return error_page(request, error.status, error.title, error.detail)
            except RequestValidationError as error:
                found = validation_errors(error.errors())
                detail = "; ".join(f"{e.field}: {e.message}" for e in found[:20])
                return error_page(request, 422, "Validation failed", detail)

        return handle


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    return page(request, "error.html", {"title": title, "detail": detail}, status_code=status)


# -- template filters ---------------------------------------------------------------------


def when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def money(value: Decimal | float | str | None, currency: str | None = None) -> str:
    if value is None:
        return "—"
    amount = Decimal(value).normalize()
    text = f"{amount:f}"
    if "." in text:
        whole, _, fraction = text.partition(".")
        text = f"{whole}.{fraction.ljust(2, '0')}"
    else:
        text += ".00"
    return f"{text} {currency}" if currency else text


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


templates.env.filters.update(when=when, money=money, seconds=seconds, percent=percent)
templates.env.globals.update(STATUSES=statuses.ALL, FINAL=statuses.FINAL)
