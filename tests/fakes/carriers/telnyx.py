"""A fake Telnyx: v2 messages (JSON, bearer key), balance, messaging profiles, and
webhooks signed with Ed25519 over ``timestamp|body``."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.carriers.server import Callback, FakeCarrier, Scripted

STATUS_NAMES = {"sent": "sent", "delivered": "delivered", "undelivered": "delivery_failed"}


def _errors(status: int, code: str, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"code": code, "title": title, "detail": detail}]}, status_code=status
    )


def _public(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


class FakeTelnyx(FakeCarrier):
    provider = "telnyx"
    opted_out_code = "40300"
    price = "0.0040"

    def __init__(self) -> None:
        self.api_key = "KEY" + secrets.token_hex(16)
        self.signing_key = Ed25519PrivateKey.generate()
        self.profile_id = str(uuid.uuid4())
        self.opted_out: set[str] = set()
        super().__init__()

    def credentials(self) -> dict[str, str]:
        return {
            "api_key": self.api_key,
            "public_key": _public(self.signing_key),
            "messaging_profile_id": self.profile_id,
        }

    def bad_credentials(self) -> dict[str, str]:
        return {**self.credentials(), "api_key": "KEY" + "0" * 32}

    def routes(self) -> list[Route]:
        return [
            *super().routes(),
            Route("/v2/messages", self.create, methods=["POST"]),
            Route("/v2/balance", self.balance, methods=["GET"]),
            Route("/v2/messaging_profiles/{id}", self.profile, methods=["GET"]),
        ]

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    def _unauthorized(self) -> JSONResponse:
        return _errors(401, "10009", "Authentication failed", "The API key provided is not valid.")

    async def balance(self, request: Request) -> Response:
        await self.record(request)
        if not self._authorized(request):
            return self._unauthorized()
        return JSONResponse(
            {
                "data": {
                    "record_type": "balance",
                    "balance": "300.00",
                    "credit_limit": "100.00",
                    "available_credit": "400.00",
                    "currency": "USD",
                }
            }
        )

    async def profile(self, request: Request) -> Response:
        await self.record(request)
        if not self._authorized(request):
            return self._unauthorized()
        if request.path_params["id"] != self.profile_id:
            return _errors(
                404, "10005", "Resource not found", "The requested resource was not found."
            )
        return JSONResponse({"data": {"record_type": "messaging_profile", "id": self.profile_id}})

    async def create(self, request: Request) -> Response:
        recorded = await self.record(request)
        if not self._authorized(request):
            return self._unauthorized()
        scripted = self.next_scripted()
        if scripted is not None:
            return scripted
        assert request.headers["content-type"] == "application/json"
        payload: dict[str, Any] = json.loads(recorded.body)
        to = str(payload.get("to", ""))
        if not to.startswith("+") or not to[1:].isdigit():
            return _errors(400, "40310", "Invalid 'to' address", "The 'to' address is invalid.")
        if to in self.opted_out:
            return _errors(
                400, "40300", "Blocked due to STOP message", "The recipient replied STOP."
            )
        message_id = str(uuid.uuid4())
        media = list(payload.get("media_urls") or [])
        self.sent[message_id] = {
            "id": message_id,
            "to": to,
            "from": payload.get("from"),
            "body": payload.get("text"),
            "media": media,
            "status_callback": payload.get("webhook_url"),
            "payload": payload,
        }
        return JSONResponse({"data": self._message(message_id, "queued")})

    def _message(
        self, message_id: str, status: str, errors: list[Any] | None = None
    ) -> dict[str, Any]:
        sent = self.sent[message_id]
        return {
            "record_type": "message",
            "direction": "outbound",
            "id": message_id,
            "type": "MMS" if sent["media"] else "SMS",
            "messaging_profile_id": self.profile_id,
            "from": {"phone_number": sent["from"], "carrier": "Telnyx", "line_type": "Wireless"},
            "to": [
                {
                    "phone_number": sent["to"],
                    "status": status,
                    "carrier": "T-Mobile USA",
                    "line_type": "Wireless",
                }
            ],
            "text": sent["body"],
            "media": [
                {"url": u, "content_type": None, "sha256": None, "size": None}
                for u in sent["media"]
            ],
            "webhook_url": sent["status_callback"],
            "encoding": "GSM-7",
            "parts": 1,
            "cost": {"amount": self.price, "currency": "USD"},
            "errors": errors or [],
        }

    def rate_limit_next(self, retry_after: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"errors": [{"code": "10011", "title": "Too many requests", "detail": "Slow down."}]}
        self.scripted.append(Scripted(429, json.dumps(body).encode(), headers))

    def _signed(
        self,
        url: str,
        event: dict[str, Any],
        key: Ed25519PrivateKey | None = None,
        at: int | None = None,
    ) -> Callback:
        body = json.dumps({"data": event, "meta": {"attempt": 1, "delivered_to": url}}).encode()
        timestamp = str(at if at is not None else int(time.time()))
        sig = (key or self.signing_key).sign(timestamp.encode() + b"|" + body)
        return Callback(
            url=url,
            headers={
                "telnyx-signature-ed25519": base64.b64encode(sig).decode(),
                "telnyx-timestamp": timestamp,
            },
            body=body,
            content_type="application/json",
        )

    def _event(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "event_type": kind,
            "id": str(uuid.uuid4()),
            "occurred_at": datetime.now(UTC).isoformat(),
            "payload": payload,
            "record_type": "event",
        }

    def status_callback(
        self, message_id: str, status: str, error_code: str | None = None
    ) -> Callback:
        errors = (
            [{"code": error_code, "title": "Delivery failed", "detail": "carrier said no"}]
            if error_code
            else []
        )
        payload = self._message(message_id, STATUS_NAMES[status], errors)
        kind = "message.sent" if status == "sent" else "message.finalized"
        return self._signed(self.sent[message_id]["status_callback"], self._event(kind, payload))

    def inbound(
        self,
        callback_url: str,
        from_: str,
        to: str,
        body: str,
        media: tuple[str, ...] = (),
        message_id: str | None = None,
    ) -> Callback:
        payload = {
            "record_type": "message",
            "direction": "inbound",
            "id": message_id or str(uuid.uuid4()),
            "type": "MMS" if media else "SMS",
            "from": {"phone_number": from_, "carrier": "T-Mobile USA", "line_type": "Wireless"},
            "to": [{"phone_number": to, "status": "webhook_delivered"}],
            "text": body,
            "media": [{"url": u, "content_type": "image/png", "size": 1032} for u in media],
            "parts": 1,
            "encoding": "GSM-7",
        }
        return self._signed(callback_url, self._event("message.received", payload))

    def forgeries(self, callback: Callback) -> dict[str, Callback]:
        event = json.loads(callback.body)["data"]
        changed = json.loads(callback.body)
        changed["data"]["payload"]["text"] = "changed"
        return {
            "wrong_key": self._signed(callback.url, event, key=Ed25519PrivateKey.generate()),
            "stale_timestamp": self._signed(callback.url, event, at=int(time.time()) - 3600),
            "changed_param": Callback(
                callback.url, callback.headers, json.dumps(changed).encode(), callback.content_type
            ),
            "missing_header": Callback(callback.url, {}, callback.body, callback.content_type),
        }
