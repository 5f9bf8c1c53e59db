"""``/v1/webhook-endpoints``: where the customer's systems hear about events, and the log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from agentsms.api.deps import CurrentProject, State
from agentsms.core import webhook_endpoints as service
from agentsms.core.webhook_endpoints import EndpointInput
from agentsms.store.repositories import Row
from agentsms.store.types import utcnow
from agentsms.webhooks.events import EVENT_TYPES

router = APIRouter(tags=["webhooks"])
PREFIX = "/v1/webhook-endpoints"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookEndpointCreate(_Strict):
    """``POST /v1/webhook-endpoints``."""

    url: str = Field(description="https URL that receives signed POSTs", max_length=2048)
    event_types: list[str] = Field(
        default_factory=list,
        description="Event types, 'group.*' or '*'; empty means every event",
        examples=[["message.delivered", "message.failed", "conversation.*"]],
    )
    description: str | None = Field(default=None, max_length=500)
    enabled: bool = True
    signing_scheme: Literal["standard-webhooks", "hmac-sha256-timestamped"] | None = Field(
        default=None,
        description="standard-webhooks (default), or hmac-sha256-timestamped: X-Webhook-"
        "Signature: sha256=HEX(HMAC-SHA256(secret, '{X-Webhook-Timestamp}.{body}'))",
    )
    payload_format: Literal["native", "agentphone"] | None = Field(
        default=None, description="native (default) or agentphone (agent.message bodies)"
    )
    timeout_seconds: float | None = Field(default=None, gt=0, description="Per attempt")
    options: dict[str, Any] | None = Field(
        default=None, description="Payload format options, e.g. {'context_limit': 10}"
    )


class WebhookEndpointUpdate(_Strict):
    """``PATCH /v1/webhook-endpoints/{id}``: only the fields given change."""

    url: str | None = Field(default=None, max_length=2048)
    event_types: list[str] | None = None
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = Field(default=None, description="true re-enables after a 410")


class WebhookEndpoint(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    kind: Literal["endpoint", "override"] = Field(
        description="'override' endpoints are per-send webhook_url targets, made on first use"
    )
    url: str
    description: str | None
    event_types: list[str] = Field(description="['*'] means every event")
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    secret: str | None = Field(
        default=None, description="Only in the answer to create and rotate-secret"
    )
    previous_secret_expires_at: datetime | None = Field(
        description="During a rotation: when the old secret stops signing"
    )
    created_at: datetime
    updated_at: datetime
    signing_scheme: str = "standard-webhooks"
    payload_format: str = "native"
    timeout_seconds: float | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class WebhookEndpointPage(BaseModel):
    data: list[WebhookEndpoint]
    next_cursor: str | None


class WebhookDelivery(BaseModel):
    id: str
    object: Literal["webhook_delivery"] = "webhook_delivery"
    endpoint_id: str
    event_id: str = Field(description="Also the webhook-id header, equal on every attempt")
    event_type: str
    attempt: int
    status: Literal["succeeded", "failed"]
    status_code: int | None
    error: str | None
    response_body: str | None = Field(description="First 1000 characters")
    duration_ms: int
    next_retry_at: datetime | None = Field(description="null: no further automatic attempt")
    created_at: datetime


class WebhookDeliveryPage(BaseModel):
    data: list[WebhookDelivery]
    next_cursor: str | None


class ResendAccepted(BaseModel):
    object: Literal["webhook_resend"] = "webhook_resend"
    endpoint_id: str
    event_id: str
    status: Literal["queued"] = "queued"


class SigningSecret(BaseModel):
    object: Literal["webhook_signing_secret"] = "webhook_signing_secret"
    secret: str
    previous_secret_expires_at: datetime | None


class EventTypes(BaseModel):
    data: list[str]


def _endpoint(row: Row, *, with_secret: bool = False) -> WebhookEndpoint:
    expires = row["previous_secret_expires_at"]
    return WebhookEndpoint(
        id=row["id"],
        kind=row["kind"],
        url=row["url"],
        description=row["description"],
        event_types=list(row["event_types"]) or ["*"],
        enabled=row["disabled_at"] is None,
        disabled_at=row["disabled_at"],
        disabled_reason=row["disabled_reason"],
        secret=row["secret"] if with_secret else None,
        previous_secret_expires_at=expires if expires is not None and expires > utcnow() else None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        signing_scheme=row.get("signing_scheme") or "standard-webhooks",
        payload_format=row.get("payload_format") or "native",
        timeout_seconds=row.get("timeout_seconds"),
        options=dict(row.get("options") or {}),
    )


def _delivery(row: Row) -> WebhookDelivery:
    return WebhookDelivery(**{k: row[k] for k in WebhookDelivery.model_fields if k != "object"})


def _secret(row: Row) -> SigningSecret:
    expires = row["previous_secret_expires_at"]
    return SigningSecret(
        secret=row["secret"],
        previous_secret_expires_at=expires if expires is not None and expires > utcnow() else None,
    )


@router.post(
    PREFIX,
    status_code=201,
    response_model=WebhookEndpoint,
    response_model_exclude_none=False,
    summary="Add a webhook endpoint (its secret is shown only in this answer)",
)
async def create_endpoint(
    body: WebhookEndpointCreate, project: CurrentProject, state: State
) -> WebhookEndpoint:
    """Subscribe a URL to event types (all when none are named). Each event is POSTed to it signed
    (Standard Webhooks headers by default) and retried on failure. The signing secret is in this
    answer only. ``422`` ``unsafe_url`` for a URL that is not https or points at a private address.
    """
    spec = EndpointInput(
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        enabled=body.enabled,
        signing_scheme=body.signing_scheme,
        payload_format=body.payload_format,
        timeout_seconds=body.timeout_seconds,
        options=body.options,
    )
    async with state.db.write() as conn:
        row = await service.create_endpoint(conn, project.id, spec, state.settings)
    return _endpoint(row, with_secret=True)


@router.get(PREFIX, response_model=WebhookEndpointPage, summary="List webhook endpoints")
async def list_endpoints(
    project: CurrentProject,
    state: State,
    kind: Literal["endpoint", "override"] | None = None,
    cursor: str | None = Query(default=None, description="next_cursor of the previous page"),
    limit: int = Query(default=50, ge=1, le=500),
) -> WebhookEndpointPage:
    """The project's webhook endpoints with their subscriptions and state, newest first; secrets
    are not shown.
    """
    async with state.db.read() as conn:
        rows = await service.list_endpoints(
            conn, project.id, kind=kind, before_id=cursor, limit=limit + 1
        )
    page = [_endpoint(row) for row in rows[:limit]]
    return WebhookEndpointPage(data=page, next_cursor=page[-1].id if len(rows) > limit else None)


@router.get("/v1/webhook-event-types", response_model=EventTypes, summary="Every event type")
async def event_types(project: CurrentProject) -> EventTypes:
    """The names of every event type an endpoint can subscribe to."""
    return EventTypes(data=list(EVENT_TYPES))


@router.get(
    "/v1/webhook-signing-secret",
    response_model=SigningSecret,
    summary="The project secret that signs per-send webhook_url deliveries",
)
async def get_signing_secret(project: CurrentProject, state: State) -> SigningSecret:
    """The project secret that signs deliveries to a send's own ``webhook_url`` (endpoints have
    secrets of their own).
    """
    async with state.db.write() as conn:
        return _secret(await service.project_secret(conn, project.id))


@router.post(
    "/v1/webhook-signing-secret/rotate",
    response_model=SigningSecret,
    summary="Rotate the project signing secret (the old one signs too for 24 h)",
)
async def rotate_signing_secret(project: CurrentProject, state: State) -> SigningSecret:
    """Make a new project signing secret; deliveries are signed with both for 24 h, so receivers
    can switch without losing any.
    """
    async with state.db.write() as conn:
        return _secret(await service.rotate_project_secret(conn, project.id))


@router.get(
    PREFIX + "/{endpoint_id}", response_model=WebhookEndpoint, summary="Get a webhook endpoint"
)
async def get_endpoint(endpoint_id: str, project: CurrentProject, state: State) -> WebhookEndpoint:
    """One webhook endpoint. ``404`` when it is not in this project."""
    async with state.db.read() as conn:
        return _endpoint(await service.get_endpoint(conn, project.id, endpoint_id))


@router.patch(
    PREFIX + "/{endpoint_id}",
    response_model=WebhookEndpoint,
    summary="Change a webhook endpoint, or enable / disable it",
)
async def update_endpoint(
    endpoint_id: str, body: WebhookEndpointUpdate, project: CurrentProject, state: State
) -> WebhookEndpoint:
    """Change an endpoint's URL, event types or description, or enable / disable it; fields not
    given stay. Disabling drops its queued deliveries. ``422`` ``unsafe_url`` for a URL that may
    not be used.
    """
    spec = EndpointInput(
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        enabled=body.enabled,
    )
    async with state.db.write() as conn:
        row = await service.update_endpoint(conn, project.id, endpoint_id, spec, state.settings)
    return _endpoint(row)


@router.delete(PREFIX + "/{endpoint_id}", status_code=204, summary="Remove a webhook endpoint")
async def delete_endpoint(endpoint_id: str, project: CurrentProject, state: State) -> Response:
    """Remove the endpoint; its queued deliveries are dropped at once. ``204``; ``404`` when it is
    not in this project.
    """
    async with state.db.write() as conn:
        await service.delete_endpoint(conn, project.id, endpoint_id)
    return Response(status_code=204)


@router.post(
    PREFIX + "/{endpoint_id}/rotate-secret",
    response_model=WebhookEndpoint,
    summary="New secret; the old one keeps signing beside it for 24 h",
)
async def rotate_secret(endpoint_id: str, project: CurrentProject, state: State) -> WebhookEndpoint:
    """Give the endpoint a new signing secret (shown in this answer only); the old one keeps
    signing beside it for 24 h.
    """
    async with state.db.write() as conn:
        row = await service.rotate_secret(conn, project.id, endpoint_id)
    return _endpoint(row, with_secret=True)


@router.get(
    PREFIX + "/{endpoint_id}/deliveries",
    response_model=WebhookDeliveryPage,
    summary="The delivery log: every attempt, newest first",
)
async def list_deliveries(
    endpoint_id: str,
    project: CurrentProject,
    state: State,
    event_id: str | None = None,
    status: Literal["succeeded", "failed"] | None = None,
    cursor: str | None = Query(default=None, description="next_cursor of the previous page"),
    limit: int = Query(default=50, ge=1, le=500),
) -> WebhookDeliveryPage:
    """The endpoint's delivery log, newest first: every attempt with its event, status code, error
    and the first 1,000 characters of the answer.
    """
    async with state.db.read() as conn:
        rows = await service.list_deliveries(
            conn,
            project.id,
            endpoint_id,
            event_id=event_id,
            status=status,
            before_id=cursor,
            limit=limit + 1,
        )
    page = [_delivery(row) for row in rows[:limit]]
    return WebhookDeliveryPage(data=page, next_cursor=page[-1].id if len(rows) > limit else None)


@router.post(
    PREFIX + "/{endpoint_id}/deliveries/{delivery_id}/resend",
    status_code=202,
    response_model=ResendAccepted,
    summary="Send a delivery's event again (one attempt, no automatic retries)",
)
async def resend(
    endpoint_id: str, delivery_id: str, project: CurrentProject, state: State
) -> ResendAccepted:
    """Send a logged delivery's event to the endpoint again: one attempt, no automatic retries.
    ``202``; ``404`` for an unknown endpoint or delivery.
    """
    async with state.db.write() as conn:
        row = await service.resend(conn, project.id, endpoint_id, delivery_id)
    return ResendAccepted(endpoint_id=endpoint_id, event_id=row["event_id"])
