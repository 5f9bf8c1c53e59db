"""Webhook endpoints in the dashboard: list, create (the secret shown once), delete, and
each endpoint's delivery log with a resend button."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from agentsms.core import webhook_endpoints as service
from agentsms.core.webhook_endpoints import EndpointInput
from agentsms.dashboard.web import (
    PREFIX,
    DashboardRoute,
    Protected,
    SignedIn,
    errors_by_field,
    form_page,
    page,
)
from agentsms.errors import AgentsmsError, FieldError
from agentsms.webhooks.events import EVENT_TYPES
from agentsms.webhooks.ssrf import url_problem

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)

LOG_SIZE = 50


async def _list_page(
    request: Request, viewer: SignedIn, extra: dict[str, Any], status_code: int = 200
) -> Response:
    async with viewer.state.db.read() as conn:
        rows = await service.list_endpoints(conn, viewer.project.id, limit=200)
    context = {"endpoints": rows, "event_types": EVENT_TYPES, "created": None}
    return form_page(
        request, "webhooks.html", context, extra, status_code=status_code, nav="webhooks"
    )


@router.get("/webhooks")
async def webhooks_page(request: Request, viewer: SignedIn) -> Response:
    return await _list_page(request, viewer, {})


@router.post("/webhooks", dependencies=[Protected])
async def create_webhook(
    request: Request,
    viewer: SignedIn,
    url: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    event_types: Annotated[str, Form()] = "",
) -> Response:
    types = [word for word in re.split(r"[\s,]+", event_types.strip()) if word]
    spec = EndpointInput(
        url=url.strip() or None, event_types=types, description=description.strip() or None
    )
    try:
        try:
            service.normalize_event_types(types)
        except AgentsmsError as error:
            # Name the URL's problem too, so that every field shows its error at once.
            problem = url_problem(url.strip(), viewer.state.settings) if url.strip() else None
            if problem is not None:
                error.errors.append(FieldError("url", problem))
            raise
        async with viewer.state.db.write() as conn:
            row = await service.create_endpoint(
                conn, viewer.project.id, spec, viewer.state.settings
            )
    except AgentsmsError as error:
        found = errors_by_field(error.errors) or {"url": [error.detail]}
        # "event_types[2]" is shown beside the one event types field.
        errors: dict[str, list[str]] = {}
        for field, messages in found.items():
            errors.setdefault(field.split("[", 1)[0], []).extend(messages)
        form = {"url": url, "description": description, "event_types": event_types}
        return await _list_page(request, viewer, {"errors": errors, "form": form}, 422)
    # The secret is in this answer only; pages are never cached (Cache-Control: no-store).
    return await _list_page(request, viewer, {"created": row}, 201)


@router.post("/webhooks/{endpoint_id}/delete", dependencies=[Protected])
async def delete_webhook(request: Request, viewer: SignedIn, endpoint_id: str) -> Response:
    async with viewer.state.db.write() as conn:
        await service.delete_endpoint(conn, viewer.project.id, endpoint_id)
    query = urlencode({"notice": f"Deleted {endpoint_id}."})
    return RedirectResponse(f"{PREFIX}/webhooks?{query}", status_code=303)


@router.get("/webhooks/{endpoint_id}")
async def webhook_page(
    request: Request, viewer: SignedIn, endpoint_id: str, cursor: str | None = None
) -> Response:
    async with viewer.state.db.read() as conn:
        row = await service.get_endpoint(conn, viewer.project.id, endpoint_id)
        log = await service.list_deliveries(
            conn, viewer.project.id, endpoint_id, before_id=cursor or None, limit=LOG_SIZE + 1
        )
    next_url = (
        f"{PREFIX}/webhooks/{endpoint_id}?cursor={log[LOG_SIZE - 1]['id']}"
        if len(log) > LOG_SIZE
        else None
    )
    context = {
        "e": row,
        "log": log[:LOG_SIZE],
        "next_url": next_url,
        "notice": request.query_params.get("notice"),
    }
    return page(request, "webhook.html", context, nav="webhooks")


@router.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/resend", dependencies=[Protected])
async def resend(
    request: Request, viewer: SignedIn, endpoint_id: str, delivery_id: str
) -> Response:
    try:
        async with viewer.state.db.write() as conn:
            row = await service.resend(conn, viewer.project.id, endpoint_id, delivery_id)
    except AgentsmsError as error:
        if error.status == 404:
            raise
        notice = error.errors[0].message if error.errors else error.detail
        return _back(endpoint_id, notice)
    return _back(
        endpoint_id, f"Queued one more attempt of {row['event_type']} ({row['event_id']})."
    )


def _back(endpoint_id: str, notice: str) -> Response:
    query = urlencode({"notice": notice})
    return RedirectResponse(f"{PREFIX}/webhooks/{endpoint_id}?{query}", status_code=303)
