"""A fake Plivo: Message API (JSON, basic auth), Account API, media, and form-encoded
callbacks signed with X-Plivo-Signature-V3."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentsms.providers.plivo import signature
from tests.fakes.carriers.server import Callback, FakeCarrier, Scripted

STATUS_NAMES = {"sent": "sent", "delivered": "delivered", "undelivered": "undelivered"}


class FakePlivo(FakeCarrier):
    provider = "plivo"
    opted_out_code = "400"  # the Message API answers 400 with an error text, no code
    price = "0.00500"

    def __init__(self) -> None:
        self.auth_id = "MA" + secrets.token_hex(9).upper()
        self.auth_token = secrets.token_urlsafe(30)
        self.opted_out: set[str] = set()
        super().__init__()

    def credentials(self) -> dict[str, str]:
        return {"auth_id": self.auth_id, "auth_token": self.auth_token}

    def bad_credentials(self) -> dict[str, str]:
        return {"auth_id": self.auth_id, "auth_token": "x" * 40}

    def routes(self) -> list[Route]:
        return [
            *super().routes(),
            Route("/v1/Account/{auth_id}/", self.account, methods=["GET"]),
            Route("/v1/Account/{auth_id}/Message/", self.create, methods=["POST"]),
        ]

    def _authorized(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.auth_id}:{self.auth_token}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    def media_authorized(self, request: Request) -> bool:
        return self._authorized(request)

    def _error(self, status: int, text: str) -> JSONResponse:
        return JSONResponse({"api_id": str(uuid.uuid4()), "error": text}, status_code=status)

    async def account(self, request: Request) -> Response:
        await self.record(request)
        if not self._authorized(request) or request.path_params["auth_id"] != self.auth_id:
            return self._error(401, "authentication failed")
        return JSONResponse(
            {
                "account_type": "standard",
                "auth_id": self.auth_id,
                "cash_credits": "10.00000",
                "api_id": str(uuid.uuid4()),
            }
        )

    async def create(self, request: Request) -> Response:
        recorded = await self.record(request)
        if not self._authorized(request) or request.path_params["auth_id"] != self.auth_id:
            return self._error(401, "authentication failed")
        scripted = self.next_scripted()
        if scripted is not None:
            return scripted
        payload: dict[str, Any] = json.loads(recorded.body)
        dst = str(payload.get("dst", ""))
        if not dst.isdigit():
            return self._error(400, "invalid dst number")
        if f"+{dst}" in self.opted_out:
            return self._error(400, "dst number is blocked: opted out (STOP)")
        message_id = str(uuid.uuid4())
        self.sent[message_id] = {
            "id": message_id,
            "to": f"+{dst}",
            "from": f"+{payload.get('src')}",
            "body": payload.get("text"),
            "media": list(payload.get("media_urls") or []),
            "status_callback": payload.get("url"),
            "payload": payload,
        }
        return JSONResponse(
            {
                "api_id": str(uuid.uuid4()),
                "message": "message(s) queued",
                "message_uuid": [message_id],
            },
            status_code=202,
        )

    def rate_limit_next(self, retry_after: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"api_id": str(uuid.uuid4()), "error": "too many requests"}
        self.scripted.append(Scripted(429, json.dumps(body).encode(), headers))

    def _signed(
        self, url: str, params: list[tuple[str, str]], token: str | None = None
    ) -> Callback:
        nonce = str(secrets.randbelow(10**20))
        sig = signature(token or self.auth_token, "POST", url, params, nonce)
        return Callback(
            url,
            {"X-Plivo-Signature-V3": sig, "X-Plivo-Signature-V3-Nonce": nonce},
            urlencode(params).encode(),
            "application/x-www-form-urlencoded",
        )

    def status_callback(
        self, message_id: str, status: str, error_code: str | None = None
    ) -> Callback:
        sent = self.sent[message_id]
        params = [
            ("From", sent["from"].removeprefix("+")),
            ("MessageUUID", message_id),
            ("Status", STATUS_NAMES[status]),
            ("To", sent["to"].removeprefix("+")),
            ("TotalAmount", self.price),
            ("TotalRate", self.price),
            ("Units", "1"),
            ("MCC", "310"),
            ("MNC", "260"),
            ("Sequence", "1"),
        ]
        if error_code:
            params.append(("ErrorCode", error_code))
        return self._signed(sent["status_callback"], params)

    def inbound(
        self,
        callback_url: str,
        from_: str,
        to: str,
        body: str,
        media: tuple[str, ...] = (),
        message_id: str | None = None,
    ) -> Callback:
        params = [
            ("From", from_.removeprefix("+")),
            ("MessageUUID", message_id or str(uuid.uuid4())),
            ("To", to.removeprefix("+")),
            ("TotalAmount", "0.00000"),
            ("TotalRate", "0.00000"),
            ("Type", "mms" if media else "sms"),
            ("Units", "1"),
        ]
        if media:
            params.append(("Body", body))
            params.append(("MediaCount", str(len(media))))
            params += [(f"Media{i}", url) for i, url in enumerate(media, start=1)]
        else:
            params.append(("Text", body))
        return self._signed(callback_url, params)

    def forgeries(self, callback: Callback) -> dict[str, Callback]:
        params = parse_qsl(callback.body.decode(), keep_blank_values=True)
        changed = [(k, v + "0" if k == "To" else v) for k, v in params]
        wrong_url = self._signed(callback.url + "x", params)
        wrong_url.url = callback.url
        return {
            "wrong_token": self._signed(callback.url, params, token="y" * 40),
            "wrong_url": wrong_url,
            "changed_param": Callback(
                callback.url, callback.headers, urlencode(changed).encode(), callback.content_type
            ),
            "missing_header": Callback(callback.url, {}, callback.body, callback.content_type),
        }
