"""Telnyx Messaging v2: ``POST /v2/messages`` (JSON, bearer API key) and webhooks signed
with Ed25519 over ``{telnyx-timestamp}|{raw body}`` (headers ``telnyx-signature-ed25519``
and ``telnyx-timestamp``), verified with the account's public key."""

from __future__ import annotations

import base64
import binascii
import json
import time
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agentsms.providers.base import (
    CredentialsRejected,
    InboundMessage,
    Receipt,
    ReceiptStatus,
    SendOutcome,
    SendRequest,
    SendResult,
)
from agentsms.providers.carrier import (
    CallbackBatch,
    CallbackRequest,
    HttpCarrier,
    InboundPart,
    SignatureInvalid,
    http_error,
    json_or_empty,
)

DEFAULT_TOLERANCE_SECONDS = 300.0

# ``to[].status`` of message.sent / message.finalized events → ours (None: not yet sent).
STATUSES: dict[str, ReceiptStatus | None] = {
    "queued": None,
    "sending": None,
    "sent": "sent",
    "delivery_unconfirmed": "sent",
    "delivered": "delivered",
    "sending_failed": "failed",
    "delivery_failed": "undelivered",
    "expired": "undelivered",
}

# Documented error codes (https://developers.telnyx.com/docs/overview/errors).
ERRORS: dict[str, str] = {
    "10001": "inactive phone number",
    "10002": "invalid phone number",
    "10004": "missing required parameter",
    "10005": "resource not found",
    "10007": "unexpected error",
    "10009": "authentication failed",
    "10010": "authorization failed",
    "10011": "too many requests",
    "10015": "invalid request body",
    "40001": "not routable: the destination is a landline or non-routable number",
    "40002": "blocked as spam (temporary)",
    "40003": "blocked as spam (permanent)",
    "40004": "rejected by destination carrier",
    "40005": "message expired during transmission",
    "40006": "recipient server unavailable",
    "40008": "undeliverable",
    "40009": "invalid message body",
    "40011": "too many requests",
    "40012": "invalid destination number",
    "40013": "invalid source number",
    "40300": "blocked due to STOP message (recipient opted out)",
    "40305": "invalid 'from' address",
    "40310": "invalid 'to' address",
    "40311": "invalid messaging profile",
    "40313": "missing messaging profile secret",
}
PERMANENT = frozenset(
    {
        "10001",
        "10002",
        "10004",
        "10005",
        "10009",
        "10010",
        "10015",
        "40001",
        "40003",
        "40004",
        "40008",
        "40009",
        "40012",
        "40013",
        "40300",
        "40305",
        "40310",
        "40311",
        "40313",
    }
)
RETRYABLE = frozenset({"10007", "10011", "40002", "40006", "40011"})


def public_key(value: str) -> Ed25519PublicKey:
    """The account's webhook public key (base64 of the 32 raw bytes, as the portal shows it)."""
    try:
        raw = base64.b64decode(value, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise ValueError("must be the base64 Ed25519 public key from the Telnyx portal") from None


def verify(
    key: Ed25519PublicKey,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raise ``SignatureInvalid`` unless the request is Telnyx's, signed within tolerance."""
    if not signature or not timestamp:
        raise SignatureInvalid("missing telnyx-signature-ed25519 or telnyx-timestamp header")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise SignatureInvalid("telnyx-timestamp is not a number") from None
    if abs((now if now is not None else time.time()) - sent_at) > tolerance:
        raise SignatureInvalid("telnyx-timestamp is outside the tolerance")
    try:
        key.verify(base64.b64decode(signature), timestamp.encode() + b"|" + body)
    except (InvalidSignature, binascii.Error, ValueError):
        raise SignatureInvalid("telnyx-signature-ed25519 does not match") from None


class TelnyxProvider(HttpCarrier):
    """Sends through one Telnyx account."""

    name = "telnyx"
    title = "Telnyx"
    default_api_base_url = "https://api.telnyx.com"
    required_credentials = ("api_key", "public_key")
    optional_credentials = ("messaging_profile_id",)
    tolerance_seconds = DEFAULT_TOLERANCE_SECONDS

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials['api_key']}"}

    async def send(self, request: SendRequest) -> SendOutcome:
        payload: dict[str, Any] = {
            "from": request.from_number,
            "to": request.to_number,
            "text": request.body,
            "webhook_url": self.status_callback_url(request),
            "use_profile_webhooks": False,
        }
        if request.media_urls:
            payload["media_urls"] = list(request.media_urls)
            payload["type"] = "MMS"
        response = await self.client.post("/v2/messages", json=payload, headers=self._headers)
        body = json_or_empty(response)
        if response.status_code >= 300:
            errors = body.get("errors") or [{}]
            first = errors[0] if isinstance(errors[0], dict) else {}
            code = str(first.get("code") or response.status_code)
            text = first.get("detail") or first.get("title") or ERRORS.get(code) or "refused"
            return http_error(response, code, str(text), permanent=PERMANENT, retryable=RETRYABLE)
        data = body.get("data") or {}
        price, currency = _cost(data.get("cost"))
        return SendResult(provider_message_id=str(data["id"]), price=price, currency=currency)

    async def check_credentials(self) -> None:
        try:
            public_key(self.credentials["public_key"])
        except ValueError as error:
            raise CredentialsRejected(str(error), key="public_key") from None
        await self._check("/v2/balance", "api_key")
        profile = self.credentials.get("messaging_profile_id")
        if profile:
            await self._check(f"/v2/messaging_profiles/{profile}", "messaging_profile_id")

    async def _check(self, path: str, key: str) -> None:
        def rejection(response: httpx.Response) -> CredentialsRejected | None:
            if response.status_code not in (401, 403, 404):
                return None
            errors = json_or_empty(response).get("errors") or [{}]
            detail = errors[0].get("detail") or errors[0].get("title") or response.reason_phrase
            return CredentialsRejected(f"Telnyx refused the {key}: {detail}", key=key)

        await self.probe(path, rejection, headers=self._headers)

    def parse_callback(self, request: CallbackRequest) -> CallbackBatch:
        try:
            key = public_key(self.credentials["public_key"])
        except ValueError:
            raise SignatureInvalid("the account's public_key is not usable") from None
        verify(
            key,
            request.body,
            request.headers.get("telnyx-signature-ed25519"),
            request.headers.get("telnyx-timestamp"),
            tolerance=self.tolerance_seconds,
        )
        event = json.loads(request.body).get("data") or {}
        kind = event.get("event_type", "")
        payload: dict[str, Any] = event.get("payload") or {}
        batch = CallbackBatch()
        if kind == "message.received":
            sender = (payload.get("from") or {}).get("phone_number", "")
            to = payload.get("to") or [{}]
            media = [m["url"] for m in payload.get("media") or [] if m.get("url")]
            batch.inbound.append(
                InboundPart(
                    InboundMessage(
                        from_number=sender,
                        to_number=to[0].get("phone_number", "") if to else "",
                        body=payload.get("text") or "",
                        media_urls=tuple(media),
                        provider_message_id=payload.get("id"),
                        channel="mms" if media else "sms",
                    )
                )
            )
        elif kind in ("message.sent", "message.finalized"):
            recipients = payload.get("to") or [{}]
            mapped = STATUSES.get(recipients[0].get("status", ""))
            if mapped is not None:
                errors = payload.get("errors") or []
                code = str(errors[0].get("code")) if errors else None
                price, currency = _cost(payload.get("cost"))
                batch.receipts.append(
                    Receipt(
                        provider_message_id=payload.get("id"),
                        reference=request.query.get("ref"),
                        status=mapped,
                        error_code=code,
                        error_message=(
                            (errors[0].get("detail") or errors[0].get("title")) if errors else None
                        )
                        or ERRORS.get(code or ""),
                        price=price,
                        currency=currency,
                    )
                )
        return batch


def _cost(value: Any) -> tuple[Decimal | None, str | None]:
    if not isinstance(value, dict) or value.get("amount") in (None, ""):
        return None, None
    try:
        return Decimal(str(value["amount"])), value.get("currency")
    except InvalidOperation:
        return None, None
