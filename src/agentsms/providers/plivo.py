"""Plivo Message API: ``POST /v1/Account/{auth_id}/Message/`` (JSON, basic auth) with a
status ``url``; callbacks (form-encoded) signed with ``X-Plivo-Signature-V3`` (HMAC-SHA256
of the URL, the sorted parameters and ``X-Plivo-Signature-V3-Nonce``, keyed with the auth
token)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx

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
    decimal_or_none,
    e164,
    http_error,
    json_or_empty,
)

STATUSES: dict[str, ReceiptStatus | None] = {
    "queued": None,
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "rejected": "failed",
}

# Documented message error codes (https://www.plivo.com/docs/messaging/troubleshooting).
ERRORS: dict[str, str] = {
    "10": "invalid message",
    "20": "network error",
    "30": "spam detected",
    "40": "invalid source number",
    "50": "invalid destination number",
    "60": "loop detected",
    "70": "destination permanently unavailable",
    "80": "destination temporarily unavailable",
    "90": "no route available",
    "100": "prohibited by carrier",
    "110": "message too long",
    "200": "source number blocked by STOP from destination",
    "300": "failed to dispatch message",
    "420": "message expired",
    "900": "insufficient credit",
    "910": "account disabled",
    "1000": "unknown error",
}
PERMANENT = frozenset(
    {"10", "30", "40", "50", "60", "70", "90", "100", "110", "200", "900", "910", "401", "404"}
)
RETRYABLE = frozenset({"20", "80", "300", "1000"})


def _sorted_query(params: dict[str, list[str]]) -> str:
    parts = []
    for key in sorted(params):
        parts.append("&".join(f"{key}={value}" for value in sorted(params[key])))
    return "&".join(parts)


def _sorted_params(params: dict[str, list[str]]) -> str:
    return "".join(
        "".join(f"{key}{value}" for value in sorted(params[key])) for key in sorted(params)
    )


def _grouped(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


def signed_string(method: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The string Plivo signs (before ``.{nonce}``) for a callback to ``url``."""
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    query = _grouped(parse_qsl(parts.query, keep_blank_values=True))
    body = _grouped(params)
    if method.upper() == "GET":
        query = {**query, **body}
        text = _sorted_query(query)
        return f"{base}?{text}" if text else base
    text = _sorted_query(query)
    if not body:
        return f"{base}?{text}" if text else base
    return f"{base}?{text}{'.' if text else ''}{_sorted_params(body)}"


def signature(
    auth_token: str, method: str, url: str, params: Iterable[tuple[str, str]], nonce: str
) -> str:
    """Plivo's V3 signature: base64(HMAC-SHA256(token, signed_string + "." + nonce))."""
    data = f"{signed_string(method, url, params)}.{nonce}".encode()
    return base64.b64encode(hmac.new(auth_token.encode(), data, hashlib.sha256).digest()).decode()


def verify(
    auth_token: str,
    method: str,
    url: str,
    params: Iterable[tuple[str, str]],
    given: str | None,
    nonce: str | None,
) -> None:
    """Raise ``SignatureInvalid`` unless one of the comma-separated signatures fits."""
    if not given or not nonce:
        raise SignatureInvalid("missing X-Plivo-Signature-V3 or X-Plivo-Signature-V3-Nonce")
    expected = signature(auth_token, method, url, list(params), nonce)
    if not any(hmac.compare_digest(expected, part.strip()) for part in given.split(",")):
        raise SignatureInvalid("X-Plivo-Signature-V3 does not match")


class PlivoProvider(HttpCarrier):
    """Sends through one Plivo account."""

    name = "plivo"
    title = "Plivo"
    default_api_base_url = "https://api.plivo.com"
    required_credentials = ("auth_id", "auth_token")
    channels = ("sms", "mms", "whatsapp")

    @property
    def _auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.credentials["auth_id"], self.credentials["auth_token"])

    @property
    def _account_path(self) -> str:
        return f"/v1/Account/{self.credentials['auth_id']}"

    async def send(self, request: SendRequest) -> SendOutcome:
        payload: dict[str, Any] = {
            "src": request.from_number.removeprefix("+"),
            "dst": request.to_number.removeprefix("+"),
            "text": request.body,
            "url": self.status_callback_url(request),
            "method": "POST",
            "type": "sms",
        }
        if request.media_urls:
            payload["type"] = "mms"
            payload["media_urls"] = list(request.media_urls)
        elif request.channel == "whatsapp":
            payload["type"] = "whatsapp"
        response = await self.client.post(
            f"{self._account_path}/Message/", json=payload, auth=self._auth
        )
        body = json_or_empty(response)
        if response.status_code >= 300:
            code = str(response.status_code)
            text = body.get("error") or response.text.strip() or response.reason_phrase
            return http_error(response, code, str(text), permanent=PERMANENT, retryable=RETRYABLE)
        uuids = body.get("message_uuid") or []
        return SendResult(provider_message_id=str(uuids[0]))

    async def check_credentials(self) -> None:
        await self.probe(f"{self._account_path}/", _rejection, auth=self._auth)

    def parse_callback(self, request: CallbackRequest) -> CallbackBatch:
        params = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
        verify(
            self.credentials["auth_token"],
            request.method,
            request.url,
            params,
            request.headers.get("x-plivo-signature-v3"),
            request.headers.get("x-plivo-signature-v3-nonce"),
        )
        values = dict(params)
        batch = CallbackBatch()
        if "Status" in values:
            mapped = STATUSES.get(values["Status"])
            if mapped is not None:
                code = values.get("ErrorCode") or None
                if code in ("", "000"):
                    code = None
                batch.receipts.append(
                    Receipt(
                        provider_message_id=values.get("ParentMessageUUID")
                        or values.get("MessageUUID"),
                        reference=request.query.get("ref"),
                        status=mapped,
                        error_code=code,
                        error_message=ERRORS.get(code or "") if code else None,
                        price=decimal_or_none(values.get("TotalAmount")),
                    )
                )
            return batch
        count = int(values.get("MediaCount") or 0)
        media = [values[f"Media{i}"] for i in range(1, count + 1) if values.get(f"Media{i}")]
        kind = values.get("Type", "sms")
        batch.inbound.append(
            InboundPart(
                InboundMessage(
                    from_number=e164(values.get("From", "")),
                    to_number=e164(values.get("To", "")),
                    body=values.get("Text") or values.get("Body") or "",
                    media_urls=tuple(media),
                    provider_message_id=values.get("MessageUUID"),
                    channel="whatsapp" if kind == "whatsapp" else "mms" if media else "sms",
                )
            )
        )
        return batch

    def media_auth(self, url: str) -> httpx.Auth | None:
        return self._auth if self._on_api_host(url) else None


def _rejection(response: httpx.Response) -> CredentialsRejected | None:
    if response.status_code in (401, 403, 404):
        return CredentialsRejected("Plivo refused auth_id/auth_token")
    return None
