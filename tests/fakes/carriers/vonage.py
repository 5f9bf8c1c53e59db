"""A fake Vonage: Messages API v1 (JSON, RS256 application JWT), Applications API v2
(basic auth), and webhooks signed with an HS256 JWT carrying ``payload_hash``."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.carriers.server import Callback, FakeCarrier, Scripted

STATUS_NAMES = {"sent": "submitted", "delivered": "delivered", "undelivered": "undeliverable"}
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # one per test run


def _problem(status: int, kind: str, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": kind, "title": title, "detail": detail, "instance": str(uuid.uuid4())},
        status_code=status,
    )


class FakeVonage(FakeCarrier):
    provider = "vonage"
    opted_out_code = "1240"
    price = "0.0333"

    def __init__(self) -> None:
        self.api_key = secrets.token_hex(4)
        self.api_secret = secrets.token_hex(8)
        self.application_id = str(uuid.uuid4())
        self.signature_secret = secrets.token_urlsafe(32)
        self.private_pem = _KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.public_pem = (
            _KEY.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        self.opted_out: set[str] = set()
        super().__init__()

    def credentials(self) -> dict[str, str]:
        return {
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "application_id": self.application_id,
            "private_key": self.private_pem,
            "signature_secret": self.signature_secret,
        }

    def bad_credentials(self) -> dict[str, str]:
        return {**self.credentials(), "api_secret": "0" * 16}

    def routes(self) -> list[Route]:
        return [
            *super().routes(),
            Route("/v1/messages", self.create, methods=["POST"]),
            Route("/v2/applications/{id}", self.application, methods=["GET"]),
        ]

    async def application(self, request: Request) -> Response:
        await self.record(request)
        expected = base64.b64encode(f"{self.api_key}:{self.api_secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return _problem(
                401,
                "https://developer.nexmo.com/api-errors#unauthorized",
                "Invalid credentials supplied",
                "You did not provide correct credentials.",
            )
        if request.path_params["id"] != self.application_id:
            return _problem(
                404,
                "https://developer.nexmo.com/api-errors#not-found",
                "Not Found",
                "The requested resource does not exist",
            )
        return JSONResponse(
            {
                "id": self.application_id,
                "name": "agentsms",
                "keys": {"public_key": self.public_pem},
                "capabilities": {"messages": {"webhooks": {}}},
            }
        )

    def _jwt_ok(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return False
        try:
            claims = jwt.decode(header[7:], self.public_pem, algorithms=["RS256"])
        except jwt.PyJWTError:
            return False
        return bool(claims.get("application_id") == self.application_id)

    async def create(self, request: Request) -> Response:
        recorded = await self.record(request)
        if not self._jwt_ok(request):
            return _problem(
                401,
                "https://developer.nexmo.com/api-errors#unauthorized",
                "Unauthorized",
                "You did not provide correct credentials.",
            )
        scripted = self.next_scripted()
        if scripted is not None:
            return scripted
        payload: dict[str, Any] = json.loads(recorded.body)
        to = str(payload.get("to", ""))
        if not to.isdigit():
            return _problem(
                422,
                "https://developer.nexmo.com/api-errors/messages-olympus#1150",
                "Invalid params",
                "The value of one or more parameters is invalid.",
            )
        if f"+{to}" in self.opted_out:
            return _problem(
                422,
                "https://developer.nexmo.com/api-errors/messages-olympus#1240",
                "Illegal Number",
                "The destination number has opted out.",
            )
        message_id = str(uuid.uuid4())
        image = payload.get("image") or {}
        self.sent[message_id] = {
            "id": message_id,
            "to": f"+{to}",
            "from": f"+{payload.get('from')}",
            "body": payload.get("text") or image.get("caption"),
            "media": [image["url"]] if image.get("url") else [],
            "status_callback": payload.get("webhook_url"),
            "payload": payload,
        }
        return JSONResponse({"message_uuid": message_id}, status_code=202)

    def rate_limit_next(self, retry_after: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {
            "type": "https://developer.nexmo.com/api-errors#throttled",
            "title": "Rate Limit Hit",
            "detail": "Please wait, then retry your request",
        }
        self.scripted.append(Scripted(429, json.dumps(body).encode(), headers))

    def _signed(self, url: str, event: dict[str, Any], secret: str | None = None) -> Callback:
        body = json.dumps(event).encode()
        claims = {
            "iat": int(time.time()),
            "jti": str(uuid.uuid4()),
            "iss": "Vonage",
            "payload_hash": hashlib.sha256(body).hexdigest(),
            "api_key": self.api_key,
            "application_id": self.application_id,
        }
        token = jwt.encode(claims, secret or self.signature_secret, algorithm="HS256")
        return Callback(url, {"Authorization": f"Bearer {token}"}, body, "application/json")

    def status_callback(
        self, message_id: str, status: str, error_code: str | None = None
    ) -> Callback:
        sent = self.sent[message_id]
        event: dict[str, Any] = {
            "message_uuid": message_id,
            "to": sent["to"].removeprefix("+"),
            "from": sent["from"].removeprefix("+"),
            "timestamp": datetime.now(UTC).isoformat(),
            "status": STATUS_NAMES[status],
            "usage": {"currency": "EUR", "price": self.price},
            "client_ref": sent["payload"].get("client_ref"),
            "channel": sent["payload"].get("channel"),
        }
        if error_code:
            event["error"] = {
                "type": f"https://developer.nexmo.com/api-errors/messages-olympus#{error_code}",
                "title": error_code,
                "detail": "Message was not delivered",
            }
        return self._signed(sent["status_callback"], event)

    def inbound(
        self,
        callback_url: str,
        from_: str,
        to: str,
        body: str,
        media: tuple[str, ...] = (),
        message_id: str | None = None,
        concat: tuple[str, int, int] | None = None,
    ) -> Callback:
        event: dict[str, Any] = {
            "channel": "mms" if media else "sms",
            "message_uuid": message_id or str(uuid.uuid4()),
            "to": to.removeprefix("+"),
            "from": from_.removeprefix("+"),
            "timestamp": datetime.now(UTC).isoformat(),
        }
        if media:
            event["message_type"] = "image"
            event["image"] = {"url": media[0], "caption": body}
        else:
            event["message_type"] = "text"
            event["text"] = body
            event["sms"] = {"num_messages": "1"}
        if concat is not None:
            ref, total, part = concat
            event["sms"].update(
                {
                    "concat": "true",
                    "concat-ref": ref,
                    "concat-total": str(total),
                    "concat-part": str(part),
                }
            )
        return self._signed(callback_url, event)

    def forgeries(self, callback: Callback) -> dict[str, Callback]:
        event = json.loads(callback.body)
        changed = dict(event, to="15550000000")
        return {
            "wrong_secret": self._signed(callback.url, event, secret="not-the-secret" * 3),
            "changed_param": Callback(
                callback.url, callback.headers, json.dumps(changed).encode(), callback.content_type
            ),
            "missing_header": Callback(callback.url, {}, callback.body, callback.content_type),
        }
