"""Vonage Messages API v1: ``POST /v1/messages`` (JSON; a JWT signed with the application's
private key, or basic auth), ``client_ref`` = our reference, and webhooks signed with a
JWT (HS256, the account's signature secret) whose ``payload_hash`` is the SHA-256 of the
body."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from agentsms.providers.base import (
    Channel,
    CredentialsRejected,
    InboundMessage,
    Receipt,
    ReceiptStatus,
    SendError,
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

DEFAULT_TOLERANCE_SECONDS = 300.0
_TOKEN_SECONDS = 900

STATUSES: dict[str, ReceiptStatus | None] = {
    "submitted": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "rejected": "failed",
    "undeliverable": "undelivered",
    "failed": "failed",
}

# Documented Messages API error codes (the number after '#' in the problem ``type``).
ERRORS: dict[str, str] = {
    "1000": "throttled: you exceeded the submission capacity allowed on this account",
    "1010": "missing parameters",
    "1020": "invalid parameters",
    "1021": "invalid 'to' number",
    "1022": "invalid 'from' number",
    "1030": "internal error",
    "1040": "invalid message",
    "1050": "number barred",
    "1060": "partner account barred",
    "1070": "partner quota exceeded (low balance)",
    "1080": "account not enabled for this channel",
    "1090": "message too long",
    "1120": "illegal sender address",
    "1150": "invalid parameters",
    "1160": "destination is not on the allow list",
    "1170": "invalid or missing MSISDN",
    "1210": "anti-spam rejection",
    "1240": "illegal number: the recipient opted out",
    "1250": "unroutable",
    "1260": "destination unreachable",
    "1270": "destination rejected",
    "1300": "invalid sender",
    "1320": "message already sent",
    "1330": "unknown error",
    "1340": "destination carrier throttled",
    "1360": "time to live expired",
    "1380": "invalid resource",
    "1410": "payload too large",
}
PERMANENT = frozenset(
    {
        "1010",
        "1020",
        "1021",
        "1022",
        "1040",
        "1050",
        "1060",
        "1070",
        "1080",
        "1090",
        "1120",
        "1150",
        "1160",
        "1170",
        "1210",
        "1240",
        "1250",
        "1270",
        "1300",
        "1380",
        "1410",
        "401",
        "402",
        "403",
        "422",
    }
)
RETRYABLE = frozenset({"1000", "1030", "1260", "1330", "1340"})


def verify(
    signature_secret: str,
    body: bytes,
    authorization: str | None,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> dict[str, Any]:
    """The verified claims of a signed webhook, or ``SignatureInvalid``."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise SignatureInvalid("missing Authorization: Bearer <JWT> header")
    token = authorization.split(" ", 1)[1].strip()
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            signature_secret,
            algorithms=["HS256"],
            options={"require": ["iat"], "verify_aud": False},
            leeway=tolerance,
        )
    except jwt.PyJWTError as error:
        raise SignatureInvalid(f"webhook JWT rejected: {error}") from None
    if abs(time.time() - float(claims["iat"])) > tolerance:
        raise SignatureInvalid("webhook JWT is too old")
    given = str(claims.get("payload_hash", ""))
    if not hmac.compare_digest(given, hashlib.sha256(body).hexdigest()):
        raise SignatureInvalid("payload_hash does not match the body")
    return claims


def _private_key(pem: str) -> RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("must be the application's PEM private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("must be an RSA private key")
    return key


def _digits(number: str) -> str:
    return number.removeprefix("+")


class VonageProvider(HttpCarrier):
    """Sends through one Vonage application."""

    name = "vonage"
    title = "Vonage"
    default_api_base_url = "https://api.nexmo.com"
    required_credentials = (
        "api_key",
        "api_secret",
        "application_id",
        "private_key",
        "signature_secret",
    )
    channels = ("sms", "mms", "whatsapp")
    tolerance_seconds = DEFAULT_TOLERANCE_SECONDS
    _token: tuple[str, float] | None = None

    def _bearer(self) -> dict[str, str]:
        now = time.time()
        if self._token is None or self._token[1] < now + 60:
            claims = {
                "application_id": self.credentials["application_id"],
                "iat": int(now),
                "exp": int(now) + _TOKEN_SECONDS,
                "jti": str(uuid.uuid4()),
            }
            token = jwt.encode(claims, self.credentials["private_key"], algorithm="RS256")
            self._token = (token, now + _TOKEN_SECONDS)
        return {"Authorization": f"Bearer {self._token[0]}"}

    def _payload(self, request: SendRequest) -> dict[str, Any] | SendError:
        channel: str = request.channel
        if request.media_urls and channel == "sms":
            channel = "mms"
        payload: dict[str, Any] = {
            "channel": channel,
            "to": _digits(request.to_number),
            "from": _digits(request.from_number),
            "client_ref": request.reference,
            "webhook_url": self.status_callback_url(request),
        }
        if request.media_urls:
            if len(request.media_urls) > 1:
                return SendError(
                    code="too_many_media",
                    message="a Vonage MMS or WhatsApp message carries one image",
                    retryable=False,
                )
            payload["message_type"] = "image"
            payload["image"] = {"url": request.media_urls[0]}
            if request.body:
                payload["image"]["caption"] = request.body
        else:
            payload["message_type"] = "text"
            payload["text"] = request.body
        return payload

    async def send(self, request: SendRequest) -> SendOutcome:
        payload = self._payload(request)
        if isinstance(payload, SendError):
            return payload
        response = await self.client.post("/v1/messages", json=payload, headers=self._bearer())
        body = json_or_empty(response)
        if response.status_code >= 300:
            kind = str(body.get("type") or "")
            code = kind.rsplit("#", 1)[1] if "#" in kind else str(response.status_code)
            text = body.get("detail") or body.get("title") or ERRORS.get(code) or "refused"
            return http_error(response, code, str(text), permanent=PERMANENT, retryable=RETRYABLE)
        return SendResult(provider_message_id=str(body["message_uuid"]))

    async def check_credentials(self) -> None:
        try:
            key = _private_key(self.credentials["private_key"])
        except ValueError as error:
            raise CredentialsRejected(str(error), key="private_key") from None
        response = await self.probe(
            f"/v2/applications/{self.credentials['application_id']}",
            _rejection,
            auth=httpx.BasicAuth(self.credentials["api_key"], self.credentials["api_secret"]),
        )
        ours = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        theirs = ((json_or_empty(response).get("keys") or {}).get("public_key") or "").strip()
        if theirs and theirs != ours.strip():
            raise CredentialsRejected(
                "private_key does not belong to this Vonage application", key="private_key"
            )

    def parse_callback(self, request: CallbackRequest) -> CallbackBatch:
        verify(
            self.credentials["signature_secret"],
            request.body,
            request.headers.get("authorization"),
            tolerance=self.tolerance_seconds,
        )
        event: dict[str, Any] = json.loads(request.body)
        batch = CallbackBatch()
        if "status" in event:
            mapped = STATUSES.get(str(event["status"]))
            if mapped is None:
                return batch
            error = event.get("error") or {}
            code: str | None = None
            if error:
                kind = str(error.get("type") or "")
                code = kind.rsplit("#", 1)[1] if "#" in kind else str(error.get("title") or "")
            usage = event.get("usage") or {}
            batch.receipts.append(
                Receipt(
                    provider_message_id=event.get("message_uuid"),
                    reference=event.get("client_ref") or request.query.get("ref"),
                    status=mapped,
                    error_code=code or None,
                    error_message=(error.get("detail") or ERRORS.get(code or "")) if code else None,
                    price=decimal_or_none(usage.get("price")),
                    currency=usage.get("currency"),
                )
            )
            return batch
        media: list[str] = []
        for kind in ("image", "video", "audio", "file"):
            url = (event.get(kind) or {}).get("url")
            if url:
                media.append(url)
        text = event.get("text") or (event.get("image") or {}).get("caption") or ""
        channel: Channel = "sms"
        if event.get("channel") in ("mms", "whatsapp"):
            channel = event["channel"]
        message = InboundMessage(
            from_number=e164(str(event.get("from", ""))),
            to_number=e164(str(event.get("to", ""))),
            body=text,
            media_urls=tuple(media),
            provider_message_id=event.get("message_uuid"),
            channel="mms" if media and channel == "sms" else channel,
        )
        concat = {**event, **(event.get("sms") or {})}
        if str(concat.get("concat", "")).lower() == "true" and concat.get("concat-ref"):
            batch.inbound.append(
                InboundPart(
                    message,
                    concat_ref=str(concat["concat-ref"]),
                    part=int(concat.get("concat-part") or 1),
                    total=int(concat.get("concat-total") or 1),
                )
            )
        else:
            batch.inbound.append(InboundPart(message))
        return batch

    def media_auth(self, url: str) -> httpx.Auth | None:
        return None


def _rejection(response: httpx.Response) -> CredentialsRejected | None:
    if response.status_code in (401, 403):
        return CredentialsRejected("Vonage refused api_key/api_secret", key="api_secret")
    if response.status_code == 404:
        return CredentialsRejected(
            "Vonage has no application with this application_id", key="application_id"
        )
    return None
