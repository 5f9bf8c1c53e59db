"""A fake Twilio: Messages create (form-encoded, basic auth), Accounts fetch, media, and
status / inbound webhooks signed with X-Twilio-Signature."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from email.utils import formatdate
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentsms.providers.twilio import signature
from tests.fakes.carriers.server import Callback, FakeCarrier, Scripted

STATUS_NAMES = {"sent": "sent", "delivered": "delivered", "undelivered": "undelivered"}


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


class FakeTwilio(FakeCarrier):
    provider = "twilio"
    opted_out_code = "21610"
    price = "0.0079"

    def __init__(self) -> None:
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self.opted_out: set[str] = set()
        super().__init__()

    def credentials(self) -> dict[str, str]:
        return {"account_sid": self.account_sid, "auth_token": self.auth_token}

    def bad_credentials(self) -> dict[str, str]:
        return {"account_sid": self.account_sid, "auth_token": "0" * 32}

    def routes(self) -> list[Route]:
        return [
            *super().routes(),
            Route("/2010-04-01/Accounts/{sid}.json", self.account, methods=["GET"]),
            Route("/2010-04-01/Accounts/{sid}/Messages.json", self.create, methods=["POST"]),
        ]

    def _authorized(self, request: Request, sid: str) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return sid == self.account_sid and request.headers.get("authorization") == (
            f"Basic {expected}"
        )

    def media_authorized(self, request: Request) -> bool:
        return self._authorized(request, self.account_sid)

    async def account(self, request: Request) -> Response:
        await self.record(request)
        if not self._authorized(request, request.path_params["sid"]):
            return _error(401, 20003, "Authenticate")
        return JSONResponse(
            {"sid": self.account_sid, "friendly_name": "fake", "status": "active", "type": "Full"}
        )

    async def create(self, request: Request) -> Response:
        recorded = await self.record(request)
        if not self._authorized(request, request.path_params["sid"]):
            return _error(401, 20003, "Authenticate")
        scripted = self.next_scripted()
        if scripted is not None:
            return scripted
        assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
        form = parse_qsl(recorded.body.decode(), keep_blank_values=True)
        values = dict(form)
        to = values.get("To", "")
        if not to.startswith("+") or not to[1:].isdigit():
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to in self.opted_out:
            return _error(400, 21610, "Attempt to send to unsubscribed recipient")
        sid = "SM" + secrets.token_hex(16)
        media = [v for k, v in form if k == "MediaUrl"]
        self.sent[sid] = {
            "id": sid,
            "to": to,
            "from": values.get("From"),
            "body": values.get("Body"),
            "media": media,
            "status_callback": values.get("StatusCallback"),
            "messaging_service_sid": values.get("MessagingServiceSid"),
        }
        return JSONResponse(
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": to,
                "from": values.get("From"),
                "messaging_service_sid": values.get("MessagingServiceSid"),
                "body": values.get("Body"),
                "status": "queued",
                "num_segments": "1",
                "num_media": str(len(media)),
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "price": f"-{self.price}",
                "price_unit": "USD",
                "error_code": None,
                "error_message": None,
                "date_created": formatdate(usegmt=True),
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
            status_code=201,
        )

    def rate_limit_next(self, retry_after: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"code": 20429, "message": "Too Many Requests", "status": 429}
        self.scripted.append(Scripted(429, json.dumps(body).encode(), headers))

    def _signed(
        self, url: str, params: list[tuple[str, str]], token: str | None = None
    ) -> Callback:
        sig = signature(token or self.auth_token, url, params)
        return Callback(
            url=url,
            headers={"X-Twilio-Signature": sig, "I-Twilio-Idempotency-Token": secrets.token_hex(8)},
            body=urlencode(params).encode(),
            content_type="application/x-www-form-urlencoded",
        )

    def status_callback(
        self, message_id: str, status: str, error_code: str | None = None
    ) -> Callback:
        sent = self.sent[message_id]
        params = [
            ("AccountSid", self.account_sid),
            ("ApiVersion", "2010-04-01"),
            ("From", sent["from"] or ""),
            ("MessageSid", message_id),
            ("MessageStatus", STATUS_NAMES[status]),
            ("SmsSid", message_id),
            ("SmsStatus", STATUS_NAMES[status]),
            ("To", sent["to"]),
        ]
        if error_code:
            params.append(("ErrorCode", error_code))
        return self._signed(sent["status_callback"], params)

    def json_status_callback(self, message_id: str, status: str) -> Callback:
        """A status callback with a JSON body, as Twilio signs one: ``bodySHA256`` (the
        body's SHA-256, hex) added to the URL, and the signature over that full URL alone."""
        sent = self.sent[message_id]
        body = json.dumps(
            {
                "AccountSid": self.account_sid,
                "MessageSid": message_id,
                "MessageStatus": STATUS_NAMES[status],
                "From": sent["from"],
                "To": sent["to"],
            }
        ).encode()
        url = sent["status_callback"]
        url += ("&" if "?" in url else "?") + f"bodySHA256={hashlib.sha256(body).hexdigest()}"
        return Callback(
            url=url,
            headers={"X-Twilio-Signature": signature(self.auth_token, url, [])},
            body=body,
            content_type="application/json",
        )

    def inbound(
        self,
        callback_url: str,
        from_: str,
        to: str,
        body: str,
        media: tuple[str, ...] = (),
        message_id: str | None = None,
    ) -> Callback:
        sid = message_id or ("MM" if media else "SM") + secrets.token_hex(16)
        params = [
            ("AccountSid", self.account_sid),
            ("ApiVersion", "2010-04-01"),
            ("Body", body),
            ("From", from_),
            ("MessageSid", sid),
            ("NumMedia", str(len(media))),
            ("NumSegments", "1"),
            ("SmsMessageSid", sid),
            ("SmsSid", sid),
            ("SmsStatus", "received"),
            ("To", to),
        ]
        for index, url in enumerate(media):
            params += [(f"MediaUrl{index}", url), (f"MediaContentType{index}", "image/png")]
        return self._signed(callback_url, params)

    def forgeries(self, callback: Callback) -> dict[str, Callback]:
        """The same callback with a wrong token, a wrong URL, a changed parameter, or no
        signature header."""
        params = parse_qsl(callback.body.decode(), keep_blank_values=True)
        changed = [(k, v + "0" if k == "To" else v) for k, v in params]
        wrong_url = self._signed(callback.url.replace("/callbacks/", "/callbacks//"), params)
        wrong_url.url = callback.url
        no_header = Callback(callback.url, {}, callback.body, callback.content_type)
        return {
            "wrong_token": self._signed(callback.url, params, token="f" * 32),
            "wrong_url": wrong_url,
            "changed_param": Callback(
                callback.url, callback.headers, urlencode(changed).encode(), callback.content_type
            ),
            "missing_header": no_header,
        }
