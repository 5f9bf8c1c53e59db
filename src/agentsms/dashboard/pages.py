"""The dashboard's pages: sign in and out, overview, messages, batches, numbers, settings,
API keys. Each page reads through core services and renders its first content at once."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from agentsms.api.deps import client_address
from agentsms.core import (
    compliance,
    dashboard_sessions,
    inbox,
    projects,
    stats,
    statuses,
    webhook_endpoints,
)
from agentsms.core import events as core_events
from agentsms.core import messages as messages_service
from agentsms.core import numbers as numbers_service
from agentsms.core.phone import parse_phone_field
from agentsms.dashboard import charts
from agentsms.dashboard.sessions import new_session
from agentsms.dashboard.web import (
    PREFIX,
    DashboardRoute,
    Protected,
    SignedIn,
    current_session,
    errors_by_field,
    page,
    set_session,
    state_of,
)
from agentsms.errors import AgentsmsError, FieldError, RateLimited, Unauthorized
from agentsms.numeric import whole_number
from agentsms.store.repositories import Row
from agentsms.store.repositories.messages import MessageFilter
from agentsms.store.types import utcnow

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)

PAGE_SIZE = 50
ATTENTION_ROWS = 10


def _safe_next(target: str | None) -> str:
    """Only a path inside the dashboard: never an open redirect."""
    if target and target.startswith(PREFIX) and not target.startswith("//"):
        return target
    return PREFIX


# -- signing in and out --------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    session = current_session(request)
    if session is None:
        session = new_session()
        request.state.dashboard_session = session
    response = page(request, "login.html", {"next": _safe_next(next), "errors": {}})
    set_session(request, response, session)
    return response


@router.post("/login", dependencies=[Protected])
async def login(
    request: Request,
    api_key: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = PREFIX,
) -> Response:
    """Sign in with an API key; failures count against the caller's address (then 429)."""
    state = state_of(request)
    settings = state.settings
    try:
        if not api_key.strip():
            raise Unauthorized("enter an API key")
        async with (
            state.limiter.guard_credentials(
                client_address(request), settings.auth_failures_per_minute
            ),
            state.db.write() as conn,
        ):
            _, key_id = await projects.authenticate_key(conn, api_key.strip())
            session_id = await dashboard_sessions.open_session(
                conn, key_id, settings.dashboard_session_hours * 3600
            )
    except RateLimited as error:
        message = f"Too many failed sign-ins from your address: try again in {error.retry_after} s."
        context = {"next": _safe_next(next), "errors": {"api_key": [message]}}
        response = page(request, "login.html", context, status_code=429)
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    except Unauthorized as error:
        errors = {"api_key": [error.detail]}
        context = {"next": _safe_next(next), "errors": errors}
        return page(request, "login.html", context, status_code=401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session(request, response, new_session(session_id))
    return response


@router.post("/logout", dependencies=[Protected])
async def logout(request: Request) -> Response:
    """Sign out: the server-side session ends, so a saved copy of the cookie is dead too."""
    session = current_session(request)
    if session is not None and session.session_id is not None:
        async with state_of(request).db.write() as conn:
            await dashboard_sessions.close_session(conn, session.session_id)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    set_session(request, response, new_session())
    return response


# -- overview ------------------------------------------------------------------------------


@router.get("")
async def overview(request: Request, viewer: SignedIn) -> Response:
    async with viewer.state.db.read() as conn:
        figures = await stats.overview(conn, viewer.project.id, utcnow())
        attention = await inbox.needing_attention(conn, viewer.project.id, ATTENTION_ROWS + 1)
    context = {
        "figures": figures,
        "chart": charts.hourly(figures.hours),
        "viewer": viewer,
        "attention": attention[:ATTENTION_ROWS],
        "more_attention": len(attention) > ATTENTION_ROWS,
    }
    return page(request, "overview.html", context, nav="overview")


# -- messages ------------------------------------------------------------------------------


def _day(value: str | None, field: str, errors: list[FieldError]) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(), UTC)
    except ValueError:
        errors.append(FieldError(field, "must be a date like 2026-11-29"))
        return None


@router.get("/messages")
async def messages(
    request: Request,
    viewer: SignedIn,
    status: str | None = None,
    number: str | None = None,
    batch: str | None = None,
    since: str | None = None,
    until: str | None = None,
    cursor: str | None = None,
) -> Response:
    errors: list[FieldError] = []
    status = status or None
    if status is not None and status not in statuses.ALL:
        errors.append(FieldError("status", f"must be one of {', '.join(statuses.ALL)}"))
    e164 = None
    if number:
        try:
            e164 = parse_phone_field(number.strip(), "number").e164
        except AgentsmsError as error:
            errors.extend(error.errors)
    after = _day(since, "since", errors)
    before = _day(until, "until", errors)
    filters = {"status": status, "number": number, "batch": batch, "since": since, "until": until}
    rows: list[dict[str, object]] = []
    next_cursor = None
    async with viewer.state.db.read() as conn:
        seq = await core_events.last_seq(conn, viewer.project.id)
        if not errors:
            where = MessageFilter(
                project_id=viewer.project.id,
                status=status,
                number=e164,
                batch_id=batch or None,
                created_after=after,
                created_before=before + timedelta(days=1) if before else None,
                before_id=cursor or None,
            )
            found = await messages_service.list_messages(conn, where, PAGE_SIZE + 1)
            rows = [row.as_dict() for row in found[:PAGE_SIZE]]
            if len(found) > PAGE_SIZE:
                next_cursor = str(rows[-1]["id"])
    query = {k: v for k, v in filters.items() if v}
    context = {
        "rows": rows,
        "filters": filters,
        "errors": errors_by_field(errors),
        "next_url": (
            f"{PREFIX}/messages?{urlencode(query | {'cursor': next_cursor})}"
            if next_cursor
            else None
        ),
        "first_url": f"{PREFIX}/messages?{urlencode(query)}" if cursor else None,
        "seq": seq,
    }
    return page(
        request, "messages.html", context, status_code=422 if errors else 200, nav="messages"
    )


@router.get("/messages/{message_id}")
async def message_detail(request: Request, viewer: SignedIn, message_id: str) -> Response:
    async with viewer.state.db.read() as conn:
        seq = await core_events.last_seq(conn, viewer.project.id)
        row = await messages_service.get_message(conn, viewer.project.id, message_id)
        timeline = await messages_service.timeline(conn, viewer.project.id, message_id)
        deliveries = await webhook_endpoints.deliveries_about_message(
            conn, viewer.project.id, message_id
        )
    context = {"m": row, "timeline": timeline, "seq": seq, "deliveries": deliveries}
    return page(request, "message.html", context, nav="messages")


@router.post("/messages/{message_id}/cancel", dependencies=[Protected])
async def cancel_message(request: Request, viewer: SignedIn, message_id: str) -> Response:
    async with viewer.state.db.write() as conn:
        await messages_service.cancel_message(conn, viewer.project.id, message_id)
    return RedirectResponse(f"{PREFIX}/messages/{message_id}", status_code=303)


# -- batches -------------------------------------------------------------------------------


@router.get("/batches")
async def batches(request: Request, viewer: SignedIn, cursor: str | None = None) -> Response:
    async with viewer.state.db.read() as conn:
        seq = await core_events.last_seq(conn, viewer.project.id)
        found = await messages_service.list_batches(
            conn, viewer.project.id, before_id=cursor or None, limit=PAGE_SIZE + 1
        )
    rows = [progress(row, counts) for row, counts in found[:PAGE_SIZE]]
    next_url = f"{PREFIX}/batches?cursor={rows[-1]['id']}" if len(found) > PAGE_SIZE else None
    context = {
        "rows": rows,
        "next_url": next_url,
        "first_url": f"{PREFIX}/batches" if cursor else None,
        "seq": seq,
    }
    return page(request, "batches.html", context, nav="batches")


def progress(row: Row, counts: dict[str, int]) -> dict[str, Any]:
    """A batch with its counts as shares of the total, for progress bars."""
    batch = dict(row)
    total = max(int(batch["total"]), 1)
    done = sum(n for status, n in counts.items() if status in statuses.FINAL)
    pending = sum(n for status, n in counts.items() if status in statuses.CANCELABLE)
    order = [s for s in charts.STACK_ORDER if counts.get(s)] + [
        s for s in counts if s not in charts.STACK_ORDER
    ]
    batch.update(
        counts=counts,
        parts=[(s, counts[s], counts[s] * 100 / total) for s in order],
        done=done,
        done_percent=int(done * 100 / total),
        pending=pending,
    )
    return batch


@router.get("/batches/{batch_id}")
async def batch_detail(request: Request, viewer: SignedIn, batch_id: str) -> Response:
    async with viewer.state.db.read() as conn:
        seq = await core_events.last_seq(conn, viewer.project.id)
        row, counts = await messages_service.get_batch(conn, viewer.project.id, batch_id)
        where = MessageFilter(project_id=viewer.project.id, batch_id=batch_id)
        recent = await messages_service.list_messages(conn, where, 10)
    canceled = request.query_params.get("canceled")
    context = {"b": progress(row, counts), "seq": seq, "recent": recent, "canceled": canceled}
    return page(request, "batch.html", context, nav="batches")


@router.post("/batches/{batch_id}/cancel", dependencies=[Protected])
async def cancel_batch(request: Request, viewer: SignedIn, batch_id: str) -> Response:
    async with viewer.state.db.write() as conn:
        canceled = await messages_service.cancel_batch(conn, viewer.project.id, batch_id)
    return RedirectResponse(f"{PREFIX}/batches/{batch_id}?canceled={canceled}", status_code=303)


# -- numbers -------------------------------------------------------------------------------


@router.get("/numbers")
async def numbers(request: Request, viewer: SignedIn) -> Response:
    async with viewer.state.db.read() as conn:
        health = await numbers_service.number_health(conn, viewer.project.id, utcnow())
    return page(request, "numbers.html", {"numbers": health}, nav="numbers")


# -- settings ------------------------------------------------------------------------------


KEYWORD_KINDS: tuple[compliance.Keyword, ...] = ("opt_out", "opt_in", "help")


def _compliance_form(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The project's compliance settings as the form shows them (defaults when unset)."""
    quiet = settings.get("quiet_hours")
    quiet = quiet if isinstance(quiet, Mapping) else {}
    form: dict[str, Any] = {
        "quiet_enabled": bool(quiet),
        "quiet_start": quiet.get("start", "21:00"),
        "quiet_end": quiet.get("end", "08:00"),
        "quiet_timezone": quiet.get("timezone") or "",
    }
    for kind in KEYWORD_KINDS:
        words = settings.get(f"{kind}_keywords") or compliance.default_keywords(kind)
        form[f"{kind}_keywords"] = ", ".join(words)
        form[f"{kind}_message"] = compliance.message_for(kind, settings)
    return form


def _settings_context(
    viewer: SignedIn, saved: bool = False, compliance_saved: bool = False
) -> dict[str, object]:
    default = viewer.state.settings.default_rate_limit_per_second
    return {
        "project": viewer.project,
        "rate_limit": viewer.project.rate_limit(default),
        "default_rate_limit": default,
        "errors": {},
        "saved": saved,
        "compliance_saved": compliance_saved,
        "c": _compliance_form(viewer.project.settings),
    }


@router.get("/settings")
async def settings_page(
    request: Request, viewer: SignedIn, saved: bool = False, compliance_saved: bool = False
) -> Response:
    context = _settings_context(viewer, saved, compliance_saved)
    return page(request, "settings.html", context, nav="settings")


def _words(text: str) -> list[str]:
    """Keywords typed in a form: comma-separated (phrases allowed), else one per word."""
    separators = r"[,\n]+" if "," in text or "\n" in text else r"\s+"
    return [word.strip() for word in re.split(separators, text.strip()) if word.strip()]


@router.post("/settings/compliance", dependencies=[Protected])
async def save_compliance(request: Request, viewer: SignedIn) -> Response:
    form = await request.form()
    given = {key: str(value) for key, value in form.items() if isinstance(value, str)}
    changes: dict[str, Any] = {}
    if given.get("quiet_enabled"):
        quiet = {"start": given.get("quiet_start", ""), "end": given.get("quiet_end", "")}
        if given.get("quiet_timezone", "").strip():
            quiet["timezone"] = given["quiet_timezone"].strip()
        changes["quiet_hours"] = quiet
    else:
        changes["quiet_hours"] = False
    for kind in KEYWORD_KINDS:
        changes[f"{kind}_keywords"] = _words(given.get(f"{kind}_keywords", ""))
        changes[f"{kind}_message"] = given.get(f"{kind}_message", "").strip()
    errors = [
        FieldError(key, problem)
        for key, value in changes.items()
        if (problem := compliance.setting_problem(key, value)) is not None
    ]
    if not errors:
        try:
            async with viewer.state.db.write() as conn:
                await projects.update_project(conn, viewer.project, changes)
        except AgentsmsError as error:
            errors = [
                FieldError(e.field.removeprefix("settings."), e.message) for e in error.errors
            ]
    if errors:
        context = _settings_context(viewer)
        shown = _compliance_form({})
        shown.update(
            quiet_enabled=bool(given.get("quiet_enabled")),
            quiet_start=given.get("quiet_start", ""),
            quiet_end=given.get("quiet_end", ""),
            quiet_timezone=given.get("quiet_timezone", ""),
        )
        for kind in KEYWORD_KINDS:
            shown[f"{kind}_keywords"] = given.get(f"{kind}_keywords", "")
            shown[f"{kind}_message"] = given.get(f"{kind}_message", "")
        context.update(c=shown, errors=errors_by_field(errors))
        return page(request, "settings.html", context, status_code=422, nav="settings")
    viewer.state.key_cache.clear()
    return RedirectResponse(f"{PREFIX}/settings?compliance_saved=1", status_code=303)


@router.post("/settings", dependencies=[Protected])
async def save_settings(
    request: Request,
    viewer: SignedIn,
    name: Annotated[str, Form()] = "",
    rate_limit_per_second: Annotated[str, Form()] = "",
) -> Response:
    context = _settings_context(viewer)
    context.update(name=name, rate_limit=rate_limit_per_second)
    changes: dict[str, object] = {}
    text = rate_limit_per_second.strip()
    try:
        if text:
            number = whole_number(text)
            changes["rate_limit_per_second"] = text if number is None else number
        async with viewer.state.db.write() as conn:
            await projects.update_project(conn, viewer.project, changes, name=name)
    except AgentsmsError as error:
        found = errors_by_field(error.errors)
        context["errors"] = {key.removeprefix("settings."): value for key, value in found.items()}
        return page(request, "settings.html", context, status_code=422, nav="settings")
    viewer.state.key_cache.clear()
    return RedirectResponse(f"{PREFIX}/settings?saved=1", status_code=303)


# -- API keys ------------------------------------------------------------------------------


async def _keys_page(
    request: Request, viewer: SignedIn, extra: Mapping[str, object], status_code: int = 200
) -> Response:
    async with viewer.state.db.read() as conn:
        keys = await projects.list_api_keys(conn, viewer.project.id)
    context: dict[str, object] = {
        "keys": keys,
        "current_key": viewer.session.key_id,
        "errors": {},
        "created": None,
        "notice": None,
    }
    context.update(extra)
    return page(request, "api_keys.html", context, status_code=status_code, nav="keys")


@router.get("/api-keys")
async def api_keys(request: Request, viewer: SignedIn) -> Response:
    return await _keys_page(request, viewer, {})


@router.post("/api-keys", dependencies=[Protected])
async def create_api_key(
    request: Request, viewer: SignedIn, name: Annotated[str, Form()] = ""
) -> Response:
    try:
        async with viewer.state.db.write() as conn:
            row, key = await projects.create_api_key(conn, viewer.project.id, name)
    except AgentsmsError as error:
        extra = {"errors": errors_by_field(error.errors), "name": name}
        return await _keys_page(request, viewer, extra, 422)
    # Shown in this answer only; the page is not cached (Cache-Control: no-store).
    return await _keys_page(request, viewer, {"created": {"row": row, "key": key}}, 201)


@router.post("/api-keys/{key_id}/revoke", dependencies=[Protected])
async def revoke_api_key(request: Request, viewer: SignedIn, key_id: str) -> Response:
    try:
        async with viewer.state.db.write() as conn:
            row = await projects.revoke_api_key(conn, viewer.project.id, key_id)
    except AgentsmsError as error:
        if error.status == 404:
            raise
        return await _keys_page(request, viewer, {"notice": error.detail}, error.status)
    viewer.state.key_cache.clear()
    if key_id == viewer.session.key_id:
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        set_session(request, response, new_session())
        return response
    return await _keys_page(request, viewer, {"notice": f"Revoked {row['name']}."})
