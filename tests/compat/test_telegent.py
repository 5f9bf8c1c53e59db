"""Telegent at ``/compat/telegent``: every example of the seed page sent as written (only
the base URL and the token placeholder changed), each response field and its type, the
messages and media stored, and every error status the page lists in Telegent's body."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shlex
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select, text, update

from agentsms.api.compat import _common
from agentsms.app import create_app
from agentsms.core import projects
from agentsms.core.numbers import NumberInput, add_number
from agentsms.store import migrate, tables
from agentsms.store.types import utcnow
from tests.conftest import Gateway, open_gateway
from tests.conftest import test_settings as settings_for
from tests.integration.helpers import message_rows

BASE = "/compat/telegent"
SENDER = "+18018018011"
PRICE = Decimal("0.0045")

# -- the seed page's examples, verbatim -------------------------------------------------------

JSON_SAMPLE = """{
  "CampaignId": "JCID-dsuhofh3882",
  "To": [
    {"Number": "+18015737111"},
    {"Number": "+18014271919"}
  ],
  "From": "+18018018011",
  "Owner": "+18018018011",
  "Body": "Hello there!!!",
  "MmsMedia": [
    {"MediaUrl": "https://results2.com"},
    {"MediaUrl": "https://results.com"}
  ],
  "MmsBase64": [
    {"Base64": "dkjjkdflajdfjo3ji3jjljfkjaskjfad", "BaseType": "audio/wav"},
    {"Base64": "dkjjkdflajdfjo3ji3jjljfkjaskjfad", "BaseType": "video/mpg"}
  ]
}"""

CURL_SAMPLE = """curl -X POST https://api.telegent.com/v1.0/message/outbound \\
  -H 'Authorization: Bearer YOUR_TOKEN' \\
  -H 'Content-Type: application/json' \\
  -d '{
    "CampaignId": "JCID-dsuhofh3882",
    "To": [{"Number": "+18015737111"}, {"Number": "+18014271919"}],
    "From": "+18018018011",
    "Owner": "+18018018011",
    "Body": "Hello there!!!",
    "MmsMedia": [{"MediaUrl": "https://results2.com"}, {"MediaUrl": "https://results.com"}],
    "MmsBase64": [{"Base64": "dkjjkdflajdfjo3ji3jjljfkjaskjfad", "BaseType": "audio/wav"}, \
{"Base64": "dkjjkdflajdfjo3ji3jjljfkjaskjfad", "BaseType": "video/mpg"}]
  }'"""

RESPONSE_EXAMPLE: dict[str, Any] = {
    "MessageId": "TMID-00348008102307aK01",
    "Direction": "Outbound",
    "Type": "p2p",
    "CampaignId": "TCID-dsuhofh3882",
    "Cost": 0.0045,
    "Status": "Queued",
    "To": [{"Number": "+12016093801"}, {"Number": "+12232233180"}],
    "From": "+18018018011",
    "Owner": "+18018018011",
    "Body": "Hello there!!!",
    "CreatedOn": "16:45:59 MST 2025-01-23",
    "MessageType": "mms",
    "MmsMedia": [{"MediaUrl": "https://results2.com"}, {"MediaUrl": "https://results.com"}],
    "MmsBase64": [
        {"Base64": "dkjjkdflajdfjo3ji3jjljfkjaskjfad", "BaseType": "audio/wav"},
        {"Base64": "dkjjkdflajdfjo3ji3jjljfkjaskjfad", "BaseType": "video/mpg"},
    ],
}

# The page's error examples: status -> the start of its Message.
ERROR_EXAMPLES = {
    400: "Bad request:",
    401: "Unauthorized:",
    403: "Forbidden:",
    404: "Not found:",
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

TMID = re.compile(r"^TMID-[0-9A-HJKMNP-TV-Z]{26}$")
CREATED_ON = re.compile(r"^(\d{2}:\d{2}:\d{2}) UTC (\d{4}-\d{2}-\d{2})$")
DETAILS_FIELDS = {
    "MessageId",
    "Direction",
    "Type",
    "CampaignId",
    "Cost",
    "To",
    "From",
    "Body",
    "Region",
    "CreatedOn",
    "MessageType",
    "Status",
    "Recipients",
}

PUBLIC_URL = "https://agentsms.example.com"

# -- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture(scope="session")
async def telegent_app(backend_url: str) -> AsyncIterator[FastAPI]:
    """The app as deployed: a shared secret (tokens are signed with a key derived from it;
    PostgreSQL deployments must set one) and a public URL (where carriers fetch media)."""
    settings = settings_for(backend_url, public_url=PUBLIC_URL, secret_key="telegent tests")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def gateway(telegent_app: FastAPI) -> AsyncIterator[Gateway]:
    async with open_gateway(telegent_app, "telegent") as opened:
        yield opened


def assert_telegent_error(response: httpx.Response, status: int, *mentions: str) -> str:
    """Telegent's error body: exactly ``StatusCode`` (int) and ``Message`` (str)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"StatusCode", "Message"}, body
    assert body["StatusCode"] == status
    assert isinstance(body["StatusCode"], int)
    message: str = body["Message"]
    assert message.startswith(ERROR_EXAMPLES[status]), message
    for mention in mentions:
        assert mention in message, (mention, message)
    return message


def assert_created_on(value: str) -> None:
    match = CREATED_ON.match(value)
    assert match, value
    moment = datetime.strptime(f"{match[2]} {match[1]}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 120


def telegent_client(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=f"http://testserver{BASE}",
        headers=headers,
    )


async def add_sender(gateway: Gateway, number: str = SENDER, price: str = str(PRICE)) -> None:
    response = await gateway.client.post(
        "/v1/numbers",
        json={
            "number": number,
            "capabilities": ["sms", "mms"],
            "price_per_segment": price,
            "throughput_mps": 100,  # both recipients go out in one drain
        },
    )
    assert response.status_code == 201, response.text


async def get_token(
    app: FastAPI, project_id: str, api_key: str, endpoint: str = "https://api.telegent.com"
) -> str:
    async with telegent_client(app) as client:
        response = await client.post(
            "/v1.0/oauth2/tokens",
            json={"AccountKey": project_id, "AccountSecret": api_key, "ApiEndpoint": endpoint},
        )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


@asynccontextmanager
async def telegent(gateway: Gateway, **token_args: str) -> AsyncIterator[httpx.AsyncClient]:
    token = await get_token(gateway.app, gateway.project_id, gateway.api_key, **token_args)
    async with telegent_client(gateway.app, token) as client:
        yield client


async def media_count(gateway: Gateway) -> int:
    query = select(tables.media.c.token).where(tables.media.c.project_id == gateway.project_id)
    async with gateway.db.read() as conn:
        return len((await conn.execute(query)).all())


def same_types(actual: Any, example: Any, path: str = "") -> None:
    """``actual`` has ``example``'s JSON types, recursively (floats may be whole)."""
    if isinstance(example, dict):
        assert isinstance(actual, dict), path
        assert set(actual) == set(example), (path, set(actual) ^ set(example))
        for key, value in example.items():
            same_types(actual[key], value, f"{path}.{key}")
    elif isinstance(example, list):
        assert isinstance(actual, list), path
        for item in actual:
            same_types(item, example[0], f"{path}[]")
    elif isinstance(example, float):
        assert isinstance(actual, float), (path, actual)
    else:
        assert type(actual) is type(example), (path, actual)


async def assert_sample_effect(gateway: Gateway, answer: dict[str, Any]) -> None:
    """The seed sample's request, stored: 2 MMS, 4 media each, 2 of them served by us."""
    rows = await message_rows(gateway)
    assert [row["to_number"] for row in rows] == ["+18015737111", "+18014271919"]
    batch_id = "batch_" + answer["MessageId"].removeprefix("TMID-")
    decoded = __import__("base64").b64decode("dkjjkdflajdfjo3ji3jjljfkjaskjfad")
    for row in rows:
        assert row["batch_id"] == batch_id
        assert row["from_number"] == SENDER
        assert row["body"] == "Hello there!!!"
        assert row["channel"] == "mms"
        assert row["status"] == "queued"
        assert row["metadata"] == {"campaign_id": "JCID-dsuhofh3882", "owner": SENDER}
        assert Decimal(row["price_estimate"]) == PRICE
        urls = list(row["media_urls"])
        assert urls[:2] == ["https://results2.com", "https://results.com"]
        assert len(urls) == 4
        for url, kind in zip(urls[2:], ["audio/wav", "video/mpg"], strict=True):
            assert url.startswith(PUBLIC_URL + "/media/")
            path = httpx.URL(url).path
            assert re.fullmatch(r"/media/[A-Za-z0-9_-]{43}", path), url
            served = await gateway.client.get(path)
            assert served.status_code == 200
            assert served.content == decoded
            assert served.headers["content-type"].startswith(kind)
    assert rows[0]["media_urls"] == rows[1]["media_urls"]  # stored once, sent to both
    assert await media_count(gateway) == 2


# -- token exchange ---------------------------------------------------------------------------


async def test_token_exchange_gives_a_short_lived_bearer_token(gateway: Gateway) -> None:
    async with telegent_client(gateway.app) as client:
        answers = [
            await client.post(
                path,
                json={
                    "AccountKey": gateway.project_id,
                    "AccountSecret": gateway.api_key,
                    "ApiEndpoint": "https://api.telegent.com",
                },
            )
            for path in ("/v1.0/oauth2/tokens", "/V1.0/OAuth2/Tokens", "/v1.0/OAUTH2/TOKENS")
        ]
    for response in answers:
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"token", "successful", "tokenExpiry", "error"}
        assert isinstance(body["token"], str)
        assert len(body["token"]) > 40
        assert body["successful"] is True
        assert body["error"] is None
        expiry = datetime.fromisoformat(body["tokenExpiry"].replace("Z", "+00:00"))
        lifetime = (expiry - datetime.now(UTC)).total_seconds()
        assert gateway.settings.compat_token_seconds - 60 < lifetime
        assert lifetime <= gateway.settings.compat_token_seconds
        # The token is not the API key, and the API key is not in it.
        assert gateway.api_key not in body["token"]
        assert gateway.api_key not in json.dumps(
            jwt.decode(body["token"], options={"verify_signature": False})
        )
    async with telegent_client(gateway.app, answers[1].json()["token"]) as client:
        details = await client.get("/v1.0/message/details", params={"MessageId": "TMID-X"})
    assert_telegent_error(details, 404)  # authenticated; only the message is unknown


async def test_token_request_keys_match_in_any_case(gateway: Gateway) -> None:
    async with telegent_client(gateway.app) as client:
        response = await client.post(
            "/v1.0/oauth2/tokens",
            json={"accountKey": gateway.project_id, "accountsecret": gateway.api_key},
        )
    assert response.status_code == 200, response.text
    assert response.json()["successful"] is True


# -- the seed page's samples ------------------------------------------------------------------


async def test_json_sample_sends_one_mms_per_recipient(gateway: Gateway) -> None:
    await add_sender(gateway)
    async with telegent(gateway) as client:
        response = await client.post(
            "/v1.0/message/outbound",
            content=JSON_SAMPLE,
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 200, response.text
    answer = response.json()
    same_types(answer, RESPONSE_EXAMPLE)
    assert TMID.match(answer["MessageId"]), answer["MessageId"]
    request = json.loads(JSON_SAMPLE)
    assert answer["Direction"] == "Outbound"
    assert answer["Type"] == "p2p"
    assert answer["CampaignId"] == "JCID-dsuhofh3882"
    assert Decimal(str(answer["Cost"])) == 2 * PRICE  # 2 recipients x 1 MMS x the price
    assert answer["Status"] == "Queued"
    assert answer["To"] == request["To"]
    assert answer["From"] == SENDER
    assert answer["Owner"] == SENDER
    assert answer["Body"] == "Hello there!!!"
    assert_created_on(answer["CreatedOn"])
    assert answer["MessageType"] == "mms"
    assert answer["MmsMedia"] == request["MmsMedia"]
    assert answer["MmsBase64"] == request["MmsBase64"]
    await assert_sample_effect(gateway, answer)


async def test_curl_sample_through_a_real_server(gateway: Gateway) -> None:
    await add_sender(gateway)
    token = await get_token(gateway.app, gateway.project_id, gateway.api_key)
    config = uvicorn.Config(gateway.app, host="127.0.0.1", port=0, lifespan="off")
    config.log_level = "warning"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        command = CURL_SAMPLE.replace(
            "https://api.telegent.com", f"http://127.0.0.1:{port}{BASE}"
        ).replace("YOUR_TOKEN", token)
        process = await asyncio.create_subprocess_exec(
            *shlex.split(command.replace("\\\n", " ")),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 30)
    finally:
        server.should_exit = True
        await task
    assert process.returncode == 0
    answer = json.loads(out)
    same_types(answer, RESPONSE_EXAMPLE)
    assert TMID.match(answer["MessageId"])
    assert answer["To"] == [{"Number": "+18015737111"}, {"Number": "+18014271919"}]
    assert Decimal(str(answer["Cost"])) == 2 * PRICE
    assert answer["MessageType"] == "mms"
    assert answer["Status"] == "Queued"
    await assert_sample_effect(gateway, answer)


async def test_response_example_comes_back_for_its_own_request(gateway: Gateway) -> None:
    """The page's 200 example, produced from the request its fields describe."""
    await add_sender(gateway)
    request = {
        key: RESPONSE_EXAMPLE[key]
        for key in ("CampaignId", "To", "From", "Owner", "Body", "MmsMedia", "MmsBase64")
    }
    async with telegent(gateway) as client:
        response = await client.post("/v1.0/message/outbound", json=request)
    assert response.status_code == 200, response.text
    answer = response.json()
    same_types(answer, RESPONSE_EXAMPLE)
    expected = RESPONSE_EXAMPLE | {
        "MessageId": answer["MessageId"],
        "CreatedOn": answer["CreatedOn"],
        "Cost": float(2 * PRICE),
    }
    assert answer == expected
    assert_created_on(answer["CreatedOn"])
    rows = await message_rows(gateway)
    assert [row["to_number"] for row in rows] == ["+12016093801", "+12232233180"]
    assert all(row["metadata"]["campaign_id"] == "TCID-dsuhofh3882" for row in rows)


async def test_the_prerequisite_provisions_a_number_to_send_from(gateway: Gateway) -> None:
    """``POST /v1.0/numbers/provision`` (the page's prerequisite) adds a simulator number to
    the sender pool; the page's request then sends from it."""
    async with telegent(gateway) as client:
        first = await client.post("/v1.0/numbers/provision")
        assert first.status_code == 200, first.text
        line = first.json()
        assert set(line) == {
            "NumberId",
            "PhoneNumber",
            "Country",
            "MessagingEnabled",
            "Status",
            "CreatedOn",
        }
        assert line["PhoneNumber"].startswith("+1415555")
        assert (line["Country"], line["MessagingEnabled"], line["Status"]) == ("US", True, "Active")
        assert_created_on(line["CreatedOn"])
        folded = await client.post("/V1.0/Numbers/Provision", json={"areacode": "646"})
        assert folded.status_code == 200, folded.text
        assert folded.json()["PhoneNumber"].startswith("+1646555")
        london = await client.post("/v1.0/numbers/provision", json={"Country": "GB"})
        assert london.status_code == 200, london.text
        assert london.json()["PhoneNumber"].startswith("+442079460")
        refused = await client.post("/v1.0/numbers/provision", json={"Country": "FR"})
        assert_telegent_error(refused, 400, "Country")
        pool = (await gateway.client.get("/v1/numbers")).json()["data"]
        provisioned = {row["number"] for row in pool}
        assert {line["PhoneNumber"], folded.json()["PhoneNumber"]} <= provisioned
        sent = await client.post(
            "/v1.0/message/outbound",
            json={"To": [{"Number": "+14155552671"}], "From": line["PhoneNumber"], "Body": "Hi"},
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["From"] == line["PhoneNumber"]
    await gateway.drain()
    rows = await message_rows(gateway)
    assert [(r["from_number"], r["status"]) for r in rows] == [(line["PhoneNumber"], "delivered")]


async def test_sms_cost_is_segments_times_the_senders_price(gateway: Gateway) -> None:
    await add_sender(gateway)
    body = "x" * 161  # two GSM-7 segments
    async with telegent(gateway) as client:
        response = await client.post(
            "/v1.0/message/outbound",
            json={"To": [{"Number": "+18015737111"}], "From": SENDER, "Body": body},
        )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["MessageType"] == "sms"
    assert Decimal(str(answer["Cost"])) == 2 * PRICE
    assert answer["CampaignId"] is None
    assert answer["Owner"] is None
    assert answer["MmsMedia"] == []
    assert answer["MmsBase64"] == []
    (row,) = await message_rows(gateway)
    assert row["segments"] == 2
    assert row["channel"] == "sms"
    assert row["media_urls"] == []
    assert row["metadata"] == {}


async def test_body_is_sent_as_written_and_keys_match_in_any_case(gateway: Gateway) -> None:
    await add_sender(gateway)
    async with telegent(gateway) as client:
        response = await client.post(
            "/V1.0/Message/Outbound",
            json={"to": [{"number": "+18015737111"}], "FROM": SENDER, "body": "Hi {{name}}"},
        )
    assert response.status_code == 200, response.text
    (row,) = await message_rows(gateway)
    assert row["body"] == "Hi {{name}}"  # Telegent has no templates
    # Metrics count the request under the route it matched, whatever case it came in.
    metrics = (await gateway.client.get("/metrics")).text
    route = f'route="{BASE}/v1.0/message/outbound",status="200"'
    assert any(
        line.startswith("agentsms_http_requests_total{") and route in line
        for line in metrics.splitlines()
    )


async def test_details_per_recipient_before_and_after_delivery(gateway: Gateway) -> None:
    await add_sender(gateway)
    async with telegent(gateway) as client:
        sent = (
            await client.post(
                "/v1.0/message/outbound",
                content=JSON_SAMPLE,
                headers={"Content-Type": "application/json"},
            )
        ).json()
        queued = await client.get("/v1.0/message/details", params={"MessageId": sent["MessageId"]})
        await gateway.drain()
        done = await client.get(f"/v1.0/message/details?messageId={sent['MessageId']}")
    for response in (queued, done):
        assert response.status_code == 200, response.text
        details = response.json()
        assert set(details) == DETAILS_FIELDS
        assert details["MessageId"] == sent["MessageId"]
        assert details["Direction"] == "Outbound"
        assert details["Type"] == "p2p"
        assert details["CampaignId"] == "JCID-dsuhofh3882"
        assert isinstance(details["Cost"], float)
        assert Decimal(str(details["Cost"])) == 2 * PRICE
        assert details["To"] == sent["To"]
        assert details["From"] == SENDER
        assert details["Body"] == "Hello there!!!"
        assert details["Region"] == "US"
        assert details["CreatedOn"] == sent["CreatedOn"]
        assert details["MessageType"] == "mms"
        assert [r["Number"] for r in details["Recipients"]] == ["+18015737111", "+18014271919"]
        for recipient in details["Recipients"]:
            assert set(recipient) == {
                "Number",
                "Status",
                "Cost",
                "Segments",
                "Region",
                "SentOn",
                "DeliveredOn",
                "ErrorCode",
                "ErrorMessage",
            }
            assert recipient["Cost"] == float(PRICE)
            assert recipient["Segments"] == 1
            assert recipient["Region"] == "US"
            assert recipient["ErrorCode"] is None
    assert queued.json()["Status"] == "Queued"
    assert {r["Status"] for r in queued.json()["Recipients"]} == {"Queued"}
    assert all(r["SentOn"] is None for r in queued.json()["Recipients"])
    assert done.json()["Status"] == "Delivered"
    for recipient in done.json()["Recipients"]:
        assert recipient["Status"] == "Delivered"
        assert_created_on(recipient["SentOn"])
        assert_created_on(recipient["DeliveredOn"])


# -- errors -----------------------------------------------------------------------------------


async def test_400_names_each_bad_field_and_stores_nothing(gateway: Gateway) -> None:
    await add_sender(gateway)
    good = json.loads(JSON_SAMPLE)
    cases: list[tuple[Any, tuple[str, ...]]] = [
        ({}, ("To", "From", "Body")),
        (good | {"To": []}, ("To",)),
        (good | {"To": [{"Number": "+18015737111"}, {"Number": "12"}]}, ("To[1].Number",)),
        (good | {"From": "+14155550123"}, ("From", "sender pool")),
        (good | {"Owner": "nobody"}, ("Owner",)),
        (
            good | {"Owner": "nobody", "MmsBase64": [{"Base64": "AAAA", "BaseType": "x"}]},
            ("Owner", "MmsBase64[0].BaseType"),
        ),
        (good | {"MmsMedia": [{"MediaUrl": "ftp://x"}]}, ("MmsMedia[0].MediaUrl",)),
        (
            good | {"MmsBase64": [{"Base64": "***", "BaseType": "audio/wav"}]},
            ("MmsBase64[0].Base64",),
        ),
        (good | {"MmsBase64": [{"Base64": "AAAA", "BaseType": "wav"}]}, ("MmsBase64[0].BaseType",)),
        (good | {"Colour": "blue"}, ("Colour", "unknown field")),
        (good | {"Body": 5}, ("Body",)),
        ([1, 2], ("body", "JSON object")),
    ]
    async with telegent(gateway) as client:
        for payload, mentions in cases:
            response = await client.post("/v1.0/message/outbound", json=payload)
            assert_telegent_error(response, 400, *mentions)
        not_json = await client.post(
            "/v1.0/message/outbound",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert_telegent_error(not_json, 400, "not valid JSON")
        form = await client.post("/v1.0/message/outbound", data={"To": "+14155551234"})
        assert_telegent_error(form, 400, "Content-Type", "application/json")
        no_id = await client.get("/v1.0/message/details")
        assert_telegent_error(no_id, 400, "MessageId", "is required")
    assert await message_rows(gateway) == []
    assert await media_count(gateway) == 0


async def test_400_for_media_a_browser_could_run_and_nothing_is_stored(gateway: Gateway) -> None:
    await add_sender(gateway)
    good = json.loads(JSON_SAMPLE)
    page = base64.b64encode(b"<html><script>alert(1)</script></html>").decode()
    cases = [
        ({"Base64": page, "BaseType": "text/html"}, "MmsBase64[0].BaseType", "not accepted"),
        ({"Base64": page, "BaseType": "image/svg+xml"}, "MmsBase64[0].BaseType", "not accepted"),
        ({"Base64": page, "BaseType": "image/png"}, "MmsBase64[0].Base64", "HTML or XML"),
    ]
    async with telegent(gateway) as client:
        for item, field, reason in cases:
            response = await client.post(
                "/v1.0/message/outbound", json=good | {"MmsBase64": [item]}
            )
            assert_telegent_error(response, 400, field, reason)
    assert await message_rows(gateway) == []
    assert await media_count(gateway) == 0


async def test_401_without_a_valid_token(gateway: Gateway) -> None:
    await add_sender(gateway)
    payload = json.loads(JSON_SAMPLE)
    settings = gateway.settings
    expired, _ = _common.issue_token(settings, "telegent", gateway.project_id, "key_x", "", ttl=-30)
    forged = jwt.encode(
        {
            "iss": "agentsms",
            "aud": "telegent",
            "sub": gateway.project_id,
            "key": "k",
            "scope": "",
            "exp": int((datetime.now(UTC) + timedelta(hours=1)).timestamp()),
        },
        b"not our key at all, not our key at all",
        algorithm="HS256",
    )
    other_vendor, _ = _common.issue_token(
        settings, "bland", gateway.project_id, "key_x", "", ttl=600
    )
    headers_cases = [
        ({}, "missing"),
        ({"Authorization": "Bearer nonsense"}, "invalid"),
        ({"Authorization": f"Bearer {gateway.api_key}"}, "invalid"),  # a key is not a token
        ({"Authorization": f"Bearer {expired}"}, "expired"),
        ({"Authorization": f"Bearer {forged}"}, "invalid"),
        ({"Authorization": f"Bearer {other_vendor}"}, "invalid"),
    ]
    async with telegent_client(gateway.app) as client:
        for headers, reason in headers_cases:
            post = await client.post("/v1.0/message/outbound", json=payload, headers=headers)
            message = assert_telegent_error(post, 401, reason, "POST /v1.0/oauth2/tokens")
            get = await client.get(
                "/v1.0/message/details", params={"MessageId": "TMID-1"}, headers=headers
            )
            assert_telegent_error(get, 401)
            assert message
        bad_secret = await client.post(
            "/v1.0/oauth2/tokens",
            json={"AccountKey": gateway.project_id, "AccountSecret": "ask_wrong"},
        )
    assert bad_secret.status_code == 401
    body = bad_secret.json()
    assert body["successful"] is False
    assert body["token"] is None
    assert body["tokenExpiry"] is None
    assert body["StatusCode"] == 401
    assert body["error"] == body["Message"]
    assert body["Message"].startswith("Unauthorized: invalid API key")
    assert await message_rows(gateway) == []


async def test_401_once_the_key_behind_the_token_is_revoked(gateway: Gateway) -> None:
    await add_sender(gateway)
    async with telegent(gateway) as client:
        ok = await client.get("/v1.0/message/details", params={"MessageId": "TMID-1"})
        assert_telegent_error(ok, 404)
        keys = tables.api_keys
        async with gateway.db.write() as conn:
            await conn.execute(
                update(keys)
                .where(keys.c.project_id == gateway.project_id)
                .values(revoked_at=utcnow())
            )
        gateway.app.state.agentsms.key_cache.clear()  # keys are cached for a few seconds
        revoked = await client.post("/v1.0/message/outbound", content=JSON_SAMPLE)
    assert_telegent_error(revoked, 401, "revoked")
    assert await message_rows(gateway) == []


async def test_403_outside_the_tokens_api_endpoint_or_for_another_projects_key(
    gateway: Gateway,
) -> None:
    await add_sender(gateway)
    async with telegent(gateway, endpoint="https://api.telegent.com/v1.0/numbers") as client:
        refused = await client.post("/v1.0/message/outbound", content=JSON_SAMPLE)
        refused_details = await client.get("/v1.0/message/details?MessageId=TMID-1")
    assert_telegent_error(refused, 403, "ApiEndpoint")
    assert_telegent_error(refused_details, 403, "ApiEndpoint")
    assert await message_rows(gateway) == []
    async with telegent(gateway, endpoint="https://api.telegent.com/v1.0/message") as client:
        allowed = await client.post("/v1.0/message/outbound", content=JSON_SAMPLE)
    assert allowed.status_code == 200, allowed.text

    other_id, other = await gateway.new_project()
    await other.aclose()
    async with telegent_client(gateway.app) as client:
        crossed = await client.post(
            "/v1.0/oauth2/tokens",
            json={"AccountKey": other_id, "AccountSecret": gateway.api_key},
        )
    assert crossed.status_code == 403
    assert crossed.json()["successful"] is False
    assert crossed.json()["StatusCode"] == 403
    assert crossed.json()["Message"].startswith("Forbidden:")


async def test_404_for_unknown_or_another_accounts_message_and_unknown_paths(
    gateway: Gateway,
) -> None:
    await add_sender(gateway)
    async with telegent(gateway) as client:
        sent = (await client.post("/v1.0/message/outbound", content=JSON_SAMPLE)).json()
        unknown = await client.get(
            "/v1.0/message/details", params={"MessageId": "TMID-01JZZZZZZZZZZZZZZZZZZZZZZZ"}
        )
        not_ours = await client.get("/v1.0/message/details", params={"MessageId": "msg_1"})
        no_path = await client.get("/v1.0/numbers/porting")
        wrong_method = await client.get("/v1.0/numbers/provision")
    assert_telegent_error(unknown, 404, "does not exist or belongs to a different account")
    assert_telegent_error(not_ours, 404)
    assert_telegent_error(no_path, 404)
    assert_telegent_error(wrong_method, 405)  # the prerequisite exists, as a POST

    other_id, other_client = await gateway.new_project()
    await other_client.aclose()
    async with gateway.db.read() as conn:
        _ = conn
    other_key = await _new_key(gateway, other_id)
    other_token = await get_token(gateway.app, other_id, other_key)
    async with telegent_client(gateway.app, other_token) as client:
        theirs = await client.get("/v1.0/message/details", params={"MessageId": sent["MessageId"]})
    assert_telegent_error(theirs, 404, "different account")


async def _new_key(gateway: Gateway, project_id: str) -> str:
    key = projects.new_api_key()
    async with gateway.db.write() as conn:
        await projects.add_api_key(conn, project_id, key, name="telegent")
    return key


async def test_405_for_a_wrong_method(gateway: Gateway) -> None:
    async with telegent(gateway) as client:
        get_outbound = await client.get("/v1.0/message/outbound")
        post_details = await client.post("/v1.0/message/details", json={})
        get_tokens = await client.get("/v1.0/oauth2/tokens")
    for response in (get_outbound, post_details, get_tokens):
        assert_telegent_error(response, 405)
        assert response.headers["allow"]


async def test_429_over_the_projects_rate_limit(gateway: Gateway) -> None:
    await add_sender(gateway)
    async with telegent(gateway) as client:
        patched = await gateway.client.patch(
            "/v1/project", json={"settings": {"rate_limit_per_second": 1}}
        )
        assert patched.status_code == 200
        gateway.app.state.agentsms.key_cache.clear()
        answers = [
            await client.post("/v1.0/message/outbound", content=JSON_SAMPLE) for _ in range(3)
        ]
    limited = [r for r in answers if r.status_code == 429]
    assert limited, [r.status_code for r in answers]
    for response in limited:
        assert_telegent_error(response, 429)
        assert int(response.headers["retry-after"]) >= 1
    accepted = [r for r in answers if r.status_code == 200]
    assert len(accepted) + len(limited) == 3
    assert len(await message_rows(gateway)) == 2 * len(accepted)


# -- failures of the server itself: each on an app of its own ---------------------------------


@asynccontextmanager
async def own_app(url: str, **overrides: Any) -> AsyncIterator[FastAPI]:
    app = create_app(settings_for(url, **overrides))
    async with app.router.lifespan_context(app):
        yield app


async def _sqlite_project(app: FastAPI) -> tuple[str, str]:
    async with app.state.agentsms.db.write() as conn:
        project, key = await projects.create_project(conn, "telegent")
        await add_number(
            conn,
            project.id,
            NumberInput(number=SENDER, capabilities=("sms", "mms"), price_per_segment="0.0045"),
        )
    return project.id, key


async def test_408_when_the_body_does_not_arrive_in_time(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'slow.db'}"
    await migrate.upgrade_async(url)
    async with own_app(url, request_body_timeout_seconds=0.3) as app:
        project_id, key = await _sqlite_project(app)
        token = await get_token(app, project_id, key)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off"))
        task = asyncio.create_task(server.serve())
        try:
            for _ in range(200):
                if server.started:
                    break
                await asyncio.sleep(0.02)
            port = server.servers[0].sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            head = (
                f"POST {BASE}/v1.0/message/outbound HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(JSON_SAMPLE)}\r\n\r\n"
            )
            writer.write(head.encode() + JSON_SAMPLE.encode()[:40])  # and then nothing more
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(65536), 10)
            writer.close()
        finally:
            server.should_exit = True
            await task
        status_line, _, rest = raw.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 408"), raw
        body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
        assert body == {"StatusCode": 408, "Message": ERROR_EXAMPLES[408]}
        async with app.state.agentsms.db.read() as conn:
            stored = (await conn.execute(select(tables.messages.c.id))).all()
        assert stored == []


async def test_500_on_an_unexpected_failure_and_nothing_is_stored(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'broken.db'}"
    await migrate.upgrade_async(url)
    async with own_app(url) as app:
        project_id, key = await _sqlite_project(app)
        token = await get_token(app, project_id, key)
        async with app.state.agentsms.db.write() as conn:
            await conn.execute(text("DROP TABLE media"))  # a fault the code cannot expect
        async with telegent_client(app, token) as client:
            response = await client.post("/v1.0/message/outbound", content=JSON_SAMPLE)
        message = assert_telegent_error(response, 500)
        assert "media" not in message  # internals are logged, not returned
        async with app.state.agentsms.db.read() as conn:
            stored = (await conn.execute(select(tables.messages.c.id))).all()
        assert stored == []


async def test_503_when_the_database_cannot_be_reached() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+asyncpg://agentsms@127.0.0.1:{port}/none"
    async with own_app(url, secret_key="a shared secret") as app, telegent_client(app) as client:
        response = await client.post(
            "/v1.0/oauth2/tokens", json={"AccountKey": "proj_1", "AccountSecret": "ask_1"}
        )
        details = await client.get(
            "/v1.0/message/details",
            params={"MessageId": "TMID-1"},
            headers={"Authorization": "Bearer x"},
        )
    assert response.status_code == 503
    assert response.json()["Message"] == ERROR_EXAMPLES[503]
    assert response.json()["StatusCode"] == 503
    assert response.headers["Retry-After"] == "5"  # the database timeout, in Telegent's body
    assert_telegent_error(details, 401)  # a token is checked before the database is asked
    # Without AGENTSMS_SECRET_KEY a PostgreSQL deployment cannot sign or check tokens.
    async with own_app(url, secret_key=None) as app, telegent_client(app) as client:
        unconfigured = await client.get(
            "/v1.0/message/details",
            params={"MessageId": "TMID-1"},
            headers={"Authorization": "Bearer x"},
        )
    assert_telegent_error(unconfigured, 503)


async def test_504_when_the_database_does_not_answer_in_time() -> None:
    silent = socket.socket()  # accepts connections and never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    try:
        async with (
            own_app(
                f"postgresql+asyncpg://agentsms@127.0.0.1:{port}/none",
                compat_response_timeout_seconds=0.5,
            ) as app,
            telegent_client(app) as client,
        ):
            response = await client.post(
                "/v1.0/oauth2/tokens",
                json={"AccountKey": "proj_1", "AccountSecret": "ask_1"},
            )
    finally:
        silent.close()
    assert_telegent_error(response, 504)


async def test_openapi_documents_the_telegent_surface(gateway: Gateway) -> None:
    spec = (await gateway.client.get("/openapi.json")).json()
    paths = spec["paths"]
    outbound = paths[f"{BASE}/v1.0/message/outbound"]["post"]
    body = outbound["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"To", "From", "Body"}
    assert body["properties"]["To"]["items"]["properties"]["Number"]["type"] == "string"
    assert {"200", "400", "401", "403", "404", "405", "408", "429", "500", "503", "504"} <= set(
        outbound["responses"]
    )
    token = paths[f"{BASE}/v1.0/oauth2/tokens"]["post"]["requestBody"]
    assert "AccountKey" in token["content"]["application/json"]["schema"]["properties"]
    assert "get" in paths[f"{BASE}/v1.0/message/details"]


@pytest.mark.parametrize("status", sorted(ERROR_EXAMPLES))
def test_every_error_status_of_the_page_has_a_test(status: int) -> None:
    names = {
        400: "test_400_",
        401: "test_401_",
        403: "test_403_",
        404: "test_404_",
        405: "test_405_",
        408: "test_408_",
        429: "test_429_",
        500: "test_500_",
        503: "test_503_",
        504: "test_504_",
    }
    assert any(name.startswith(names[status]) for name in globals())
