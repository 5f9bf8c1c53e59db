"""Telegent's messaging API, drop-in at ``/compat/telegent``.

``POST /v1.0/oauth2/tokens`` exchanges ``AccountKey`` (the project id) and
``AccountSecret`` (one of its API keys) for a short-lived signed bearer token;
``POST /v1.0/message/outbound`` sends one message per ``To`` recipient as one agentsms
batch, whose id is the request's ``MessageId`` (``TMID-<batch ULID>``);
``GET /v1.0/message/details?MessageId=`` reads it back with per-recipient details.
Paths and JSON keys match case-insensitively, as Telegent's ASP.NET service does.
Errors are ``{"StatusCode": N, "Message": "..."}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import JSONResponse, Response

from agentsms.api.compat._common import (
    Failure,
    Forbidden,
    Strict,
    TokenClaims,
    Vendor,
    bearer_token,
    error_text,
    exchange_api_key,
    failure_from,
    invalid,
    issue_token,
    json_body_docs,
    json_errors,
    parse_json,
    project_for_token,
)
from agentsms.api.deps import State, client_address
from agentsms.core import media, numbers, statuses
from agentsms.core import messages as service
from agentsms.core.messages import MessageFilter
from agentsms.core.phone import InvalidPhoneNumberError, parse_phone, parse_phone_field
from agentsms.core.sending import BatchSpec, OutboundSpec
from agentsms.core.spend import CODE as SPEND_CAP
from agentsms.errors import AgentsmsError, FieldError, NotFound, ValidationFailed
from agentsms.store.records import MessageRecord

NAME = "telegent"
ID_PREFIX = "TMID-"
router = APIRouter(prefix=f"/compat/{NAME}", tags=["compat: Telegent"])

# -- errors -----------------------------------------------------------------------------------

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    413: "Request too large",
}
# The page's own sentences, for failures whose details are not the caller's business.
_FIXED = {
    405: "Method not allowed: verify the HTTP method required for this endpoint.",
    408: "Request timeout: the server did not receive a complete request within the allowed "
    "time. Retry with exponential backoff.",
    429: "Too many requests: rate limit exceeded. Slow your request cadence and retry after a "
    "short delay.",
    500: "Internal server error: an unexpected error occurred.",
    503: "Service unavailable: the API is temporarily unavailable. Retry after a short delay.",
    504: "Gateway timeout: an upstream service did not respond in time. Retry with exponential "
    "backoff.",
}
# Telegent has no 409 or 422: conflicts and validation failures are bad requests.
_STATUS = {409: 400, 422: 400}


def error_body(failure: Failure) -> tuple[int, dict[str, Any]]:
    """Telegent's status and ``{"StatusCode", "Message"}`` body for ``failure``."""
    status = _STATUS.get(failure.status, failure.status)
    if failure.code == SPEND_CAP:
        message = f"Too many requests: {failure.detail}"
    elif status in _FIXED:
        message = _FIXED[status]
    else:
        message = f"{_TITLES.get(status, 'Error')}: {error_text(failure).rstrip('.')}."
        if status == 401:
            message += " Re-authenticate via POST /v1.0/oauth2/tokens."
    return status, {"StatusCode": status, "Message": message}


render_error = json_errors(error_body)


# -- request and response shapes --------------------------------------------------------------


class TokenRequest(Strict):
    AccountKey: str = Field(min_length=1, max_length=100, description="The project id (proj_…)")
    AccountSecret: str = Field(min_length=1, max_length=500, description="A project API key")
    ApiEndpoint: str | None = Field(
        default=None,
        max_length=2000,
        description="The API base URL; a path below it limits the token to that path",
    )


class TokenResponse(BaseModel):
    token: str | None
    successful: bool
    tokenExpiry: str | None
    error: str | None


class Number(Strict):
    Number: str = Field(max_length=32)


class MmsMediaItem(Strict):
    MediaUrl: str = Field(max_length=2000)


class MmsBase64Item(Strict):
    Base64: str
    BaseType: str = Field(max_length=200)


class OutboundRequest(Strict):
    CampaignId: str | None = Field(default=None, max_length=200)
    To: list[Number] = Field(min_length=1)
    From: str = Field(max_length=32)
    Owner: str | None = Field(default=None, max_length=32)
    Body: str
    MmsMedia: list[MmsMediaItem] | None = None
    MmsBase64: list[MmsBase64Item] | None = None


class OutboundResponse(BaseModel):
    MessageId: str
    Direction: str
    Type: str
    CampaignId: str | None
    Cost: float
    Status: str
    To: list[Number]
    From: str
    Owner: str | None
    Body: str
    CreatedOn: str
    MessageType: str
    MmsMedia: list[MmsMediaItem]
    MmsBase64: list[MmsBase64Item]


class RecipientDetails(BaseModel):
    """agentsms addition: one recipient's own message."""

    Number: str
    Status: str
    Cost: float
    Segments: int
    Region: str | None
    SentOn: str | None
    DeliveredOn: str | None
    ErrorCode: str | None
    ErrorMessage: str | None


class DetailsResponse(BaseModel):
    MessageId: str
    Direction: str
    Type: str
    CampaignId: str | None
    Cost: float
    To: list[Number]
    From: str
    Body: str
    Region: str | None
    CreatedOn: str
    MessageType: str
    Status: str
    Recipients: list[RecipientDetails]


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": _TITLES.get(status, _FIXED.get(status, ""))}
    for status in (400, 401, 403, 404, 405, 408, 429, 500, 503, 504)
}

# -- tokens -----------------------------------------------------------------------------------


def _scope(api_endpoint: str | None) -> str:
    """The path prefix a token is limited to ('' for the whole API) from ``ApiEndpoint``."""
    path = urlsplit((api_endpoint or "").strip()).path.lower().rstrip("/")
    prefix = f"/compat/{NAME}"
    if path.startswith(prefix):
        path = path[len(prefix) :]
    if path and not path.startswith("/"):
        path = "/" + path
    if path in ("", "/v1.0"):
        return ""
    return path if path.startswith("/v1.0/") else "/v1.0" + path


def _check_scope(claims: TokenClaims, request: Request) -> None:
    path = request.scope["path"].removeprefix(f"/compat/{NAME}")
    if claims.scope and not (path == claims.scope or path.startswith(claims.scope + "/")):
        raise Forbidden(
            f"your token does not have permission to access this resource; it was issued "
            f"for ApiEndpoint {claims.scope}. Check the ApiEndpoint scope"
        )


@router.post(
    "/v1.0/oauth2/tokens",
    response_model=TokenResponse,
    responses=_ERRORS,
    summary="Exchange AccountKey and AccountSecret for a bearer token",
    openapi_extra=json_body_docs(TokenRequest),
)
async def create_token(request: Request, state: State) -> Response:
    """``AccountKey`` is the project id, ``AccountSecret`` one of its API keys."""
    try:
        body = await parse_json(request, TokenRequest, case_insensitive=True)
        project, key_id = await exchange_api_key(
            state, body.AccountKey, body.AccountSecret, client_address(request)
        )
        token, expires = issue_token(
            state.settings,
            NAME,
            project.id,
            key_id,
            _scope(body.ApiEndpoint),
            state.settings.compat_token_seconds,
        )
    except AgentsmsError as error:
        # Both shapes a token client may read: the token's own and the error body.
        status, error_shape = error_body(failure_from(error))
        headers = dict(failure_from(error).headers) or None
        failed = TokenResponse(token=None, successful=False, tokenExpiry=None, error=None)
        return JSONResponse(
            error_shape | failed.model_dump() | {"error": error_shape["Message"]},
            status_code=status,
            headers=headers,
        )
    answer = TokenResponse(
        token=token,
        successful=True,
        tokenExpiry=expires.isoformat().replace("+00:00", "Z"),
        error=None,
    )
    return JSONResponse(answer.model_dump())


# -- messages ---------------------------------------------------------------------------------


def _stamp(moment: datetime | None) -> str | None:
    """Telegent's time format (``16:45:59 MST 2025-01-23``), in UTC."""
    return None if moment is None else moment.strftime("%H:%M:%S UTC %Y-%m-%d")


def _status(status: str) -> str:
    return status.capitalize()


_PENDING_ORDER = (statuses.SCHEDULED, statuses.QUEUED, statuses.SENDING, statuses.SENT)


def _overall(rows: Sequence[MessageRecord]) -> str:
    """One status for the request: the recipients' own if they agree, else the least
    advanced pending one, else ``Mixed`` (see ``Recipients`` for each)."""
    found = {row.status for row in rows}
    if len(found) == 1:
        return _status(found.pop())
    for status in _PENDING_ORDER:
        if status in found:
            return _status(status)
    return "Mixed"


def _cost(rows: Sequence[MessageRecord]) -> float:
    prices = (row.price if row.price is not None else row.price_estimate for row in rows)
    total = sum((Decimal(price) for price in prices), Decimal(0))
    return float(round(total, 6))


def _region(number: str) -> str | None:
    try:
        return parse_phone(number).country
    except InvalidPhoneNumberError:
        return None


_MEDIA_FIELD = re.compile(r"^recipients\[\d+\]\.media_urls\[(\d+)\]$")


def _telegent_field(name: str, urls: int) -> str:
    """Our field path in a validation error as the Telegent field the caller sent."""
    match = _MEDIA_FIELD.match(name)
    if match:
        index = int(match.group(1))
        return f"MmsMedia[{index}].MediaUrl" if index < urls else f"MmsBase64[{index - urls}]"
    recipient = re.match(r"^recipients\[(\d+)\]\.(.*)$", name)
    if recipient:
        position, rest = recipient.groups()
        if rest == "to":
            return f"To[{position}].Number"
        name = rest
    renames = {
        "recipients": "To",
        "from": "From",
        "channel": "From",
        "body": "Body",
        "media_urls": "MmsMedia",
    }
    if name in renames:
        return renames[name]
    return name.replace(".content_type", ".BaseType").replace(".data", ".Base64")


def _renamed(error: ValidationFailed, urls: int) -> ValidationFailed:
    fields: dict[tuple[str, str], FieldError] = {}
    for item in error.errors:
        renamed = FieldError(_telegent_field(item.field, urls), item.message)
        fields.setdefault((renamed.field, renamed.message), renamed)
    errors = list(fields.values())
    return invalid(errors)


@router.post(
    "/v1.0/message/outbound",
    response_model=OutboundResponse,
    responses=_ERRORS,
    summary="Send Outbound Message",
    openapi_extra=json_body_docs(OutboundRequest),
)
async def send_outbound(request: Request, state: State) -> OutboundResponse:
    """One message per ``To`` recipient from ``From``; ``MessageId`` names them all."""
    project, claims = await project_for_token(state, NAME, bearer_token(request))
    _check_scope(claims, request)
    body = await parse_json(request, OutboundRequest, case_insensitive=True)
    settings = state.settings
    urls = [item.MediaUrl for item in body.MmsMedia or []]
    faults: list[FieldError] = []
    owner = None
    if body.Owner is not None:
        try:
            owner = parse_phone_field(body.Owner, "Owner").e164
        except ValidationFailed as error:
            faults.extend(error.errors)
    checked = [
        media.check_upload(
            f"MmsBase64[{i}]",
            item.BaseType,
            media.decode_base64(item.Base64),
            settings.media_max_bytes,
        )
        for i, item in enumerate(body.MmsBase64 or [])
    ]
    try:
        uploads = media.require_uploads([*checked, (None, faults)])
    except ValidationFailed as error:
        raise _renamed(error, len(urls)) from None
    has_media = bool(urls or uploads)
    metadata = {
        key: value
        for key, value in (("campaign_id", body.CampaignId), ("owner", owner))
        if value is not None
    }
    try:
        async with state.db.write() as conn:
            stored = await media.store_uploads(conn, settings, project.id, uploads)
            spec = BatchSpec(
                items=[
                    OutboundSpec(
                        to=recipient.Number,
                        body=body.Body,
                        from_=body.From,
                        media_urls=[*urls, *stored],
                        channel="mms" if has_media else "sms",
                        literal=True,
                    )
                    for recipient in body.To
                ],
                metadata=metadata,
            )
            result = await state.outbox.send_batch(
                conn, project.id, spec, project_settings=project.settings
            )
            rows = await _batch_messages(conn, project.id, result.batch["id"], len(body.To))
    except ValidationFailed as error:
        raise _renamed(error, len(urls)) from None
    return OutboundResponse(
        MessageId=ID_PREFIX + str(result.batch["id"]).removeprefix("batch_"),
        Direction="Outbound",
        Type="p2p",
        CampaignId=body.CampaignId,
        Cost=_cost(rows),
        Status=_overall(rows),
        To=[Number(Number=row.to_number) for row in rows],
        From=rows[0].from_number,
        Owner=owner,
        Body=rows[0].body,
        CreatedOn=_stamp(result.batch["created_at"]) or "",
        MessageType=rows[0].channel,
        MmsMedia=body.MmsMedia or [],
        MmsBase64=body.MmsBase64 or [],
    )


async def _batch_messages(
    conn: AsyncConnection, project_id: str, batch_id: str, total: int
) -> list[MessageRecord]:
    where = MessageFilter(project_id=project_id, batch_id=batch_id)
    rows = await service.list_messages(conn, where, max(total, 1))
    return sorted(rows, key=lambda row: row.id)


@router.get(
    "/v1.0/message/details",
    response_model=DetailsResponse,
    responses=_ERRORS,
    summary="Get message details",
)
async def message_details(request: Request, state: State) -> DetailsResponse:
    """The request ``MessageId`` names, with each recipient's own status and cost."""
    project, claims = await project_for_token(state, NAME, bearer_token(request))
    _check_scope(claims, request)
    values = [v for k, v in request.query_params.multi_items() if k.lower() == "messageid"]
    if not values or not values[0].strip():
        raise ValidationFailed(
            "MessageId: is required", errors=[FieldError("MessageId", "is required")]
        )
    message_id = values[0].strip()
    if not message_id.upper().startswith(ID_PREFIX):
        raise NotFound(f"no message {message_id} in this account")
    batch_id = "batch_" + message_id[len(ID_PREFIX) :].upper()
    async with state.db.read() as conn:
        try:
            batch, _ = await service.get_batch(conn, project.id, batch_id)
        except NotFound:
            raise NotFound(
                f"message {message_id} does not exist or belongs to a different account"
            ) from None
        rows = await _batch_messages(conn, project.id, batch_id, int(batch["total"]))
    if not rows:
        raise NotFound(f"message {message_id} has no recipients")
    first = rows[0]
    return DetailsResponse(
        MessageId=ID_PREFIX + batch_id.removeprefix("batch_"),
        Direction="Outbound",
        Type="p2p",
        CampaignId=(batch["metadata"] or {}).get("campaign_id"),
        Cost=_cost(rows),
        To=[Number(Number=row.to_number) for row in rows],
        From=first.from_number,
        Body=first.body,
        Region=_region(first.from_number),
        CreatedOn=_stamp(batch["created_at"]) or "",
        MessageType=first.channel,
        Status=_overall(rows),
        Recipients=[
            RecipientDetails(
                Number=row.to_number,
                Status=_status(row.status),
                Cost=_cost([row]),
                Segments=row.segments,
                Region=_region(row.to_number),
                SentOn=_stamp(row.sent_at),
                DeliveredOn=_stamp(row.delivered_at),
                ErrorCode=row.error_code,
                ErrorMessage=row.error_message,
            )
            for row in rows
        ],
    )


# -- numbers --------------------------------------------------------------------------------


class ProvisionRequest(Strict):
    Country: str = Field(default="US", min_length=2, max_length=2)
    AreaCode: str | None = Field(default=None, max_length=3)
    MessagingEnabled: bool = Field(default=True, description="Only messaging numbers exist here")


class ProvisionResponse(BaseModel):
    NumberId: str
    PhoneNumber: str
    Country: str | None
    MessagingEnabled: bool
    Status: str
    CreatedOn: str


@router.post(
    "/v1.0/numbers/provision",
    response_model=ProvisionResponse,
    responses=_ERRORS,
    summary="Provision a phone number",
    openapi_extra=json_body_docs(ProvisionRequest),
)
async def provision_number(request: Request, state: State) -> ProvisionResponse:
    """A free simulator number of ``Country`` (``AreaCode`` for US and CA) added to the
    sender pool, ready to be the ``From`` of ``POST /v1.0/message/outbound``. A body may be
    omitted (a US number)."""
    project, claims = await project_for_token(state, NAME, bearer_token(request))
    _check_scope(claims, request)
    raw = await request.body()
    body = (
        await parse_json(request, ProvisionRequest, case_insensitive=True)
        if raw.strip()
        else ProvisionRequest()
    )
    if not body.MessagingEnabled:
        raise invalid([FieldError("MessagingEnabled", "agentsms numbers are messaging numbers")])
    try:
        async with state.db.write() as conn:
            row = await numbers.provision_simulator_number(
                conn, project.id, country=body.Country.upper(), area_code=body.AreaCode
            )
    except ValidationFailed as error:
        raise _renamed_provision(error) from None
    return ProvisionResponse(
        NumberId=row["id"],
        PhoneNumber=row["number"],
        Country=row["country"],
        MessagingEnabled=True,
        Status="Active",
        CreatedOn=_stamp(row["created_at"]) or "",
    )


def _renamed_provision(error: ValidationFailed) -> ValidationFailed:
    names = {"country": "Country", "area_code": "AreaCode"}
    return invalid([FieldError(names.get(e.field, e.field), e.message) for e in error.errors])


VENDOR = Vendor(NAME, router, render_error, case_insensitive_paths=True)
