"""Twilio Programmable Messaging: Messages create (form-encoded), status callbacks and
inbound webhooks signed with ``X-Twilio-Signature`` (HMAC-SHA1 of the URL and the sorted
POST parameters, keyed with the auth token).

As Twilio's own SDKs do, a signature is accepted for the URL with or without its scheme's
default port (``:443`` for https, ``:80`` for http), since Twilio signs whichever form it
was given. A JSON callback (``application/json``) carries ``bodySHA256`` (the body's SHA-256
in hex) in its URL: the signature covers the full URL with no parameters appended, and the
body must hash to ``bodySHA256``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx

from agentsms.providers.base import (
    CredentialsRejected,
    InboundMessage,
    Receipt,
    ReceiptStatus,
    SendOutcome,
    SendRequest,
)
from agentsms.providers.base import SendResult as Result
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

API_VERSION = "2010-04-01"

# Twilio message statuses → ours; the ones mapped to None are steps before "sent".
STATUSES: dict[str, ReceiptStatus | None] = {
    "accepted": None,
    "scheduled": None,
    "queued": None,
    "sending": None,
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "partially_delivered": "undelivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}

# Documented REST and delivery error codes (https://www.twilio.com/docs/api/errors).
ERRORS: dict[str, str] = {
    "20003": "authentication failed: check account_sid and auth_token",
    "20404": "resource not found",
    "20429": "too many requests",
    "20500": "Twilio internal error",
    "20503": "Twilio service unavailable",
    "21211": "invalid 'To' phone number",
    "21212": "invalid 'From' phone number",
    "21408": "permission to send to this region is not enabled",
    "21602": "message body is required",
    "21606": "the 'From' number is not a valid message-capable number for this account",
    "21608": "trial accounts can only send to verified numbers",
    "21610": "the recipient replied STOP (unsubscribed)",
    "21612": "the 'To' number cannot be reached from this 'From' number",
    "21614": "the 'To' number is not a mobile number",
    "21617": "message body exceeds the 1600 character limit",
    "21620": "invalid media URL",
    "21660": "the 'From' number does not belong to this account",
    "21703": "the Messaging Service has no phone numbers",
    "30001": "queue overflow",
    "30002": "account suspended",
    "30003": "unreachable destination handset",
    "30004": "message blocked",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "message filtered by the carrier",
    "30008": "unknown error",
    "30009": "missing segment",
    "30010": "message price exceeds max price",
    "30032": "toll-free number not verified",
    "30034": "message from an unregistered 10DLC number",
}
PERMANENT = frozenset(
    {
        "20003",
        "20404",
        "21211",
        "21212",
        "21408",
        "21602",
        "21606",
        "21608",
        "21610",
        "21612",
        "21614",
        "21617",
        "21620",
        "21660",
        "21703",
        "30002",
        "30003",
        "30004",
        "30005",
        "30006",
        "30007",
        "30032",
        "30034",
    }
)
RETRYABLE = frozenset({"20429", "20500", "20503", "30001", "30008", "30009"})


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's request signature: base64(HMAC-SHA1(token, url + sorted key+value pairs))."""
    data = url + "".join(key + value for key, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


DEFAULT_PORTS = {"https": 443, "http": 80}


def url_forms(url: str) -> list[str]:
    """``url`` as given, and with its scheme's default port added (if it had no port) or
    removed (if it had the default one): the forms Twilio may have signed."""
    parts = urlsplit(url)
    default = DEFAULT_PORTS.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        return [url]
    if default is None:
        return [url]
    if port is None:
        return [url, parts._replace(netloc=f"{parts.netloc}:{default}").geturl()]
    if port == default:
        return [url, parts._replace(netloc=parts.netloc.rsplit(":", 1)[0]).geturl()]
    return [url]


def verify(auth_token: str, url: str, params: Iterable[tuple[str, str]], given: str | None) -> None:
    """Raise ``SignatureInvalid`` unless ``given`` is the signature of this request (for the
    URL with or without its default port)."""
    if not given:
        raise SignatureInvalid("missing X-Twilio-Signature header")
    pairs = list(params)
    for form in url_forms(url):
        if hmac.compare_digest(signature(auth_token, form, pairs), given):
            return
    raise SignatureInvalid("X-Twilio-Signature does not match")


def verify_json(auth_token: str, url: str, body: bytes, given: str | None) -> None:
    """Raise ``SignatureInvalid`` unless this JSON callback is signed: ``given`` signs the
    full URL (``bodySHA256`` included, no parameters appended) and the body's SHA-256 in hex
    is the URL's ``bodySHA256``."""
    hashes = parse_qs(urlsplit(url).query).get("bodySHA256")
    if not hashes:
        raise SignatureInvalid("a JSON callback must carry bodySHA256 in its URL")
    verify(auth_token, url, [], given)
    if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), hashes[0].strip().lower()):
        raise SignatureInvalid("bodySHA256 does not match the body")


class TwilioProvider(HttpCarrier):
    """Sends through one Twilio account (or subaccount)."""

    name = "twilio"
    title = "Twilio"
    default_api_base_url = "https://api.twilio.com"
    required_credentials = ("account_sid", "auth_token")
    optional_credentials = ("messaging_service_sid",)
    channels = ("sms", "mms", "whatsapp")
    callback_content_type = "text/xml"
    callback_body = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

    @property
    def _auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.credentials["account_sid"], self.credentials["auth_token"])

    @property
    def _account_path(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.credentials['account_sid']}"

    async def send(self, request: SendRequest) -> SendOutcome:
        # WhatsApp goes through the same API with prefixed addresses.
        prefix = "whatsapp:" if request.channel == "whatsapp" else ""
        form: list[tuple[str, str]] = [
            ("To", prefix + request.to_number),
            ("From", prefix + request.from_number),
            ("Body", request.body),
            ("StatusCallback", self.status_callback_url(request)),
        ]
        service = self.credentials.get("messaging_service_sid")
        if service:
            form.append(("MessagingServiceSid", service))
        form.extend(("MediaUrl", url) for url in request.media_urls)
        response = await self.client.post(
            f"{self._account_path}/Messages.json", data=dict_list(form), auth=self._auth
        )
        body = json_or_empty(response)
        if response.status_code not in (200, 201):
            code = str(body.get("code") or response.status_code)
            message = str(body.get("message") or ERRORS.get(code) or response.reason_phrase)
            return http_error(response, code, message, permanent=PERMANENT, retryable=RETRYABLE)
        return Result(
            provider_message_id=str(body["sid"]),
            price=_price(body.get("price")),
            currency=(str(body["price_unit"]).upper() if body.get("price_unit") else None),
        )

    async def check_credentials(self) -> None:
        response = await self.probe(f"{self._account_path}.json", _rejection, auth=self._auth)
        status = json_or_empty(response).get("status")
        if status not in (None, "active"):
            raise CredentialsRejected(f"the Twilio account is {status}")

    def parse_callback(self, request: CallbackRequest) -> CallbackBatch:
        token = self.credentials["auth_token"]
        given = request.headers.get("x-twilio-signature")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/json":
            verify_json(token, request.url, request.body, given)
            values = _json_values(request.body)
        else:
            params = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
            verify(token, request.url, params, given)
            values = dict(params)
        batch = CallbackBatch()
        status = values.get("MessageStatus") or values.get("SmsStatus")
        if status and status not in ("received", "receiving"):
            mapped = STATUSES.get(status)
            if mapped is not None:
                code = values.get("ErrorCode") or None
                batch.receipts.append(
                    Receipt(
                        provider_message_id=values.get("MessageSid") or values.get("SmsSid"),
                        reference=request.query.get("ref"),
                        status=mapped,
                        error_code=code,
                        error_message=values.get("ErrorMessage") or ERRORS.get(code or ""),
                        price=_price(values.get("Price")),
                        currency=values.get("PriceUnit"),
                    )
                )
            return batch
        count = int(values.get("NumMedia") or 0)
        media = [values[f"MediaUrl{i}"] for i in range(count) if values.get(f"MediaUrl{i}")]
        sender = values.get("From", "")
        whatsapp = sender.startswith("whatsapp:")
        batch.inbound.append(
            InboundPart(
                InboundMessage(
                    from_number=e164(sender),
                    to_number=e164(values.get("To", "")),
                    body=values.get("Body", ""),
                    media_urls=tuple(media),
                    provider_message_id=values.get("MessageSid") or values.get("SmsSid"),
                    channel="whatsapp" if whatsapp else "mms" if media else "sms",
                )
            )
        )
        return batch

    def media_auth(self, url: str) -> httpx.Auth | None:
        return self._auth if self._on_api_host(url) else None


def dict_list(pairs: list[tuple[str, str]]) -> Mapping[str, list[str]]:
    """Form fields, repeated keys kept (``MediaUrl`` may appear several times)."""
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


def _json_values(body: bytes) -> dict[str, str]:
    """A JSON callback's top-level fields as the form fields they stand for (text values)."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("a Twilio JSON callback must be an object")
    return {
        str(key): value if isinstance(value, str) else json.dumps(value)
        for key, value in data.items()
        if value is not None
    }


def _rejection(response: httpx.Response) -> CredentialsRejected | None:
    if response.status_code not in (401, 403, 404):
        return None
    body = json_or_empty(response)
    return CredentialsRejected(
        f"Twilio refused account_sid/auth_token ({body.get('code', response.status_code)}"
        f" {body.get('message', response.reason_phrase)})"
    )


def _price(value: object) -> Decimal | None:
    amount = decimal_or_none(value)
    # Twilio reports what was charged as a negative amount.
    return None if amount is None else abs(amount)
