"""Real carriers through their local fakes: accounts (credentials checked with the
carrier), sending through the production adapters over real HTTP, signed callbacks into
agentsms, receipts, inbound texts and media — for Twilio, Telnyx, Vonage and Plivo."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import select, update

from agentsms.app import create_app
from agentsms.core.provider_events import PARTS_JOB
from agentsms.store import tables
from tests import conftest
from tests.conftest import Gateway, open_gateway
from tests.fakes.carriers.plivo import FakePlivo
from tests.fakes.carriers.server import MEDIA_BYTES, PAGE_BYTES
from tests.fakes.carriers.telnyx import FakeTelnyx
from tests.fakes.carriers.twilio import FakeTwilio
from tests.fakes.carriers.vonage import FakeVonage
from tests.integration.helpers import (
    assert_problem,
    events_of,
    jobs_for,
    message_row,
    message_rows,
    problem_fields,
)

PUBLIC_URL = "https://agentsms.example.com"
OUR_NUMBER = "+14155550142"
PERSON = "+14155550123"
Fake = FakeTwilio | FakeTelnyx | FakeVonage | FakePlivo
FAKES = {"twilio": FakeTwilio, "telnyx": FakeTelnyx, "vonage": FakeVonage, "plivo": FakePlivo}


@pytest.fixture(scope="session")
async def carrier_app(backend_url: str) -> AsyncIterator[FastAPI]:
    """The app as deployed behind a proxy: carriers reach it at PUBLIC_URL."""
    settings = conftest.test_settings(
        backend_url,
        public_url=PUBLIC_URL,
        allow_insecure_urls=True,  # the fakes speak plain http on 127.0.0.1
        secret_key=Fernet.generate_key().decode(),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="session", params=sorted(FAKES))
def fake(request: pytest.FixtureRequest) -> Iterator[Fake]:
    carrier: Fake = FAKES[request.param]()
    carrier.start()
    yield carrier
    carrier.stop()


@pytest.fixture
async def gw(carrier_app: FastAPI) -> AsyncIterator[Gateway]:
    async with open_gateway(carrier_app, "carriers") as opened:
        yield opened


async def add_account(gw: Gateway, fake: Fake) -> dict[str, Any]:
    response = await gw.client.post(
        "/v1/provider-accounts",
        json={
            "provider": fake.provider,
            "name": f"{fake.provider} main",
            "credentials": fake.credentials(),
            "api_base_url": fake.base_url,
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def connect(gw: Gateway, fake: Fake) -> dict[str, Any]:
    account = await add_account(gw, fake)
    response = await gw.client.post(
        "/v1/numbers",
        json={
            "number": OUR_NUMBER,
            "provider_account_id": account["id"],
            "capabilities": ["sms", "mms"],
        },
    )
    assert response.status_code == 201, response.text
    number = response.json()
    assert number["provider"] == fake.provider
    assert number["callback_url"] == account["callback_url"]
    return account


async def send(gw: Gateway, body: str = "hello from agentsms", **extra: Any) -> str:
    response = await gw.client.post(
        "/v1/messages", json={"to": PERSON, "from": OUR_NUMBER, "body": body, **extra}
    )
    assert response.status_code == 202, response.text
    message_id: str = response.json()["id"]
    return message_id


async def test_account_credentials_are_checked_and_never_returned(gw: Gateway, fake: Fake) -> None:
    bad = await gw.client.post(
        "/v1/provider-accounts",
        json={
            "provider": fake.provider,
            "name": "wrong",
            "credentials": fake.bad_credentials(),
            "api_base_url": fake.base_url,
        },
    )
    body = assert_problem(bad, 422, "credentials_rejected")
    assert all(field.startswith("credentials") for field in problem_fields(body))
    assert (await gw.client.get("/v1/provider-accounts")).json()["data"] == []

    account = await add_account(gw, fake)
    secrets = [v for v in fake.credentials().values() if len(v) > 8]
    listed = await gw.client.get("/v1/provider-accounts")
    for text in (str(account), listed.text):
        assert not any(secret in text for secret in secrets)
    assert account["credentials_set"] == sorted(fake.credentials())
    assert account["callback_url"] == f"{PUBLIC_URL}/callbacks/{fake.provider}/{account['id']}"
    assert [a["id"] for a in listed.json()["data"]] == [account["id"]]
    async with gw.db.read() as conn:
        stored = (
            await conn.execute(
                select(tables.provider_accounts.c.credentials).where(
                    tables.provider_accounts.c.id == account["id"]
                )
            )
        ).scalar_one()
    assert not any(secret in stored for secret in secrets)


async def test_missing_and_unknown_credential_keys(gw: Gateway, fake: Fake) -> None:
    credentials = fake.credentials()
    first = sorted(credentials)[0]
    partial = {k: v for k, v in credentials.items() if k != first}
    response = await gw.client.post(
        "/v1/provider-accounts",
        json={"provider": fake.provider, "name": "x", "credentials": partial},
    )
    fields = problem_fields(assert_problem(response, 422, "validation_failed"))
    assert f"credentials.{first}" in fields
    response = await gw.client.post(
        "/v1/provider-accounts",
        json={"provider": fake.provider, "name": "x", "credentials": {**credentials, "bogus": "1"}},
    )
    assert "credentials.bogus" in problem_fields(assert_problem(response, 422, "validation_failed"))
    assert (await gw.client.get("/v1/provider-accounts")).json()["data"] == []


async def test_send_then_receipts_move_forward_only(gw: Gateway, fake: Fake) -> None:
    await connect(gw, fake)
    message_id = await send(gw)
    await gw.drain()
    row = await message_row(gw, message_id)
    assert row["status"] == "sent", row["error_message"]
    carrier_id = row["provider_message_id"]
    sent = fake.sent[carrier_id]
    assert (sent["to"], sent["from"], sent["body"]) == (PERSON, OUR_NUMBER, "hello from agentsms")
    assert sent["status_callback"].startswith(f"{PUBLIC_URL}/callbacks/{fake.provider}/")
    assert f"ref={message_id}" in sent["status_callback"]

    receipt = fake.status_callback(carrier_id, "delivered")
    for _ in range(2):  # the carrier retries its webhook: applied once
        delivered = await receipt.deliver(gw.client)
        assert delivered.status_code == 200, delivered.text
    row = await message_row(gw, message_id)
    assert row["status"] == "delivered"
    assert row["price"] is not None
    assert float(row["price"]) == pytest.approx(float(fake.price))

    late = await fake.status_callback(carrier_id, "sent").deliver(gw.client)
    assert late.status_code == 200
    assert (await message_row(gw, message_id))["status"] == "delivered"
    assert await events_of(gw, message_id) == ["sending", "sent", "delivered"]


async def test_undelivered_receipt_keeps_the_carrier_error(gw: Gateway, fake: Fake) -> None:
    await connect(gw, fake)
    message_id = await send(gw)
    await gw.drain()
    carrier_id = (await message_row(gw, message_id))["provider_message_id"]
    code = {"twilio": "30003", "telnyx": "40008", "vonage": "1260", "plivo": "70"}[fake.provider]
    response = await fake.status_callback(carrier_id, "undelivered", code).deliver(gw.client)
    assert response.status_code == 200
    row = await message_row(gw, message_id)
    assert (row["status"], row["error_code"]) == ("undelivered", code)
    assert row["error_message"]


async def test_rate_limit_is_retried_after_retry_after(gw: Gateway, fake: Fake) -> None:
    await connect(gw, fake)
    fake.rate_limit_next(retry_after=1)
    before = len(fake.sent)
    message_id = await send(gw)
    started = time.time()
    await gw.drain()
    row = await message_row(gw, message_id)
    assert row["status"] in ("queued", "sending")
    assert row["provider_message_id"] is None
    job = (await jobs_for(gw, message_id))[-1]
    assert job["status"] != "done"
    assert job["run_at"] >= started + 0.95
    assert len(fake.sent) == before
    while time.time() < job["run_at"]:
        await gw.drain()
        await asyncio.sleep(0.05)
    await gw.drain()
    row = await message_row(gw, message_id)
    assert row["status"] == "sent"
    assert row["provider_message_id"] in fake.sent
    assert len(fake.sent) == before + 1


async def test_permanent_refusal_fails_without_retry(gw: Gateway, fake: Fake) -> None:
    await connect(gw, fake)
    fake.opted_out.add(PERSON)
    try:
        message_id = await send(gw)
        await gw.drain()
    finally:
        fake.opted_out.discard(PERSON)
    row = await message_row(gw, message_id)
    assert (row["status"], row["error_code"]) == ("failed", fake.opted_out_code)
    assert all(job["status"] == "done" for job in await jobs_for(gw, message_id))


async def test_duplicate_inbound_is_stored_once(gw: Gateway, fake: Fake) -> None:
    account = await connect(gw, fake)
    callback = fake.inbound(account["callback_url"], PERSON, OUR_NUMBER, "yes please")
    for _ in range(2):
        response = await callback.deliver(gw.client)
        assert response.status_code == 200, response.text
    inbound = [r for r in await message_rows(gw) if r["direction"] == "inbound"]
    assert [(r["from_number"], r["to_number"], r["body"]) for r in inbound] == [
        (PERSON, OUR_NUMBER, "yes please")
    ]
    assert inbound[0]["provider"] == fake.provider


async def test_bad_signatures_get_403_and_change_nothing(gw: Gateway, fake: Fake) -> None:
    account = await connect(gw, fake)
    genuine = fake.inbound(account["callback_url"], PERSON, OUR_NUMBER, "signed text")
    forgeries = fake.forgeries(genuine)
    assert "missing_header" in forgeries
    assert "changed_param" in forgeries
    for name, forged in forgeries.items():
        response = await forged.deliver(gw.client)
        assert response.status_code == 403, (name, response.text)
        assert response.json()["code"] == "signature_invalid"
    assert [r for r in await message_rows(gw) if r["direction"] == "inbound"] == []
    assert (await genuine.deliver(gw.client)).status_code == 200
    assert [r["body"] for r in await message_rows(gw) if r["direction"] == "inbound"] == [
        "signed text"
    ]


async def test_forged_receipt_does_not_move_status(gw: Gateway, fake: Fake) -> None:
    await connect(gw, fake)
    message_id = await send(gw)
    await gw.drain()
    carrier_id = (await message_row(gw, message_id))["provider_message_id"]
    genuine = fake.status_callback(carrier_id, "delivered")
    forged = fake.forgeries(genuine)["missing_header"]
    assert (await forged.deliver(gw.client)).status_code == 403
    assert (await message_row(gw, message_id))["status"] == "sent"


async def test_inbound_media_is_fetched_and_served(gw: Gateway, fake: Fake) -> None:
    account = await connect(gw, fake)
    callback = fake.inbound(
        account["callback_url"], PERSON, OUR_NUMBER, "a photo", media=(fake.media_url(),)
    )
    assert (await callback.deliver(gw.client)).status_code == 200
    [row] = [r for r in await message_rows(gw) if r["direction"] == "inbound"]
    assert row["channel"] == "mms"
    [url] = row["media_urls"]
    assert url.startswith(f"{PUBLIC_URL}/media/")
    assert len(url) > len(PUBLIC_URL) + 40
    served = await gw.client.get(url.removeprefix(PUBLIC_URL))
    assert served.status_code == 200
    assert served.content == MEDIA_BYTES
    assert served.headers["content-type"] == "image/png"
    assert (await gw.client.get("/media/not-a-token")).status_code == 404


async def test_inbound_html_is_kept_as_a_download_not_a_page(gw: Gateway, fake: Fake) -> None:
    account = await connect(gw, fake)
    media = (fake.media_url("page.html"),)
    callback = fake.inbound(account["callback_url"], PERSON, OUR_NUMBER, "look", media=media)
    assert (await callback.deliver(gw.client)).status_code == 200
    [row] = [r for r in await message_rows(gw) if r["direction"] == "inbound"]
    [page] = row["media_urls"]
    assert page.startswith(f"{PUBLIC_URL}/media/")
    served = await gw.client.get(page.removeprefix(PUBLIC_URL))
    assert served.content == PAGE_BYTES  # nothing the person sent is lost
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"] == "attachment"
    assert served.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert served.headers["x-content-type-options"] == "nosniff"


async def test_unknown_account_and_wrong_provider_in_callback_path(gw: Gateway, fake: Fake) -> None:
    account = await connect(gw, fake)
    callback = fake.inbound(account["callback_url"], PERSON, OUR_NUMBER, "hi")
    other = "telnyx" if fake.provider != "telnyx" else "twilio"
    callback.url = callback.url.replace(f"/callbacks/{fake.provider}/", f"/callbacks/{other}/")
    assert (await callback.deliver(gw.client)).status_code == 404


async def test_number_provider_must_match_its_account(gw: Gateway, fake: Fake) -> None:
    account = await add_account(gw, fake)
    other = "telnyx" if fake.provider != "telnyx" else "twilio"
    response = await gw.client.post(
        "/v1/numbers",
        json={"number": OUR_NUMBER, "provider": other, "provider_account_id": account["id"]},
    )
    assert "provider" in problem_fields(assert_problem(response, 422, "validation_failed"))
    response = await gw.client.post(
        "/v1/numbers", json={"number": OUR_NUMBER, "provider": fake.provider}
    )
    fields = problem_fields(assert_problem(response, 422, "validation_failed"))
    assert "provider_account_id" in fields


async def test_account_in_use_cannot_be_deleted(gw: Gateway, fake: Fake) -> None:
    account = await connect(gw, fake)
    response = await gw.client.delete(f"/v1/provider-accounts/{account['id']}")
    assert_problem(response, 409, "account_in_use")
    numbers = (await gw.client.get("/v1/numbers")).json()["data"]
    [ours] = [n for n in numbers if n["provider_account_id"] == account["id"]]
    assert (await gw.client.delete(f"/v1/numbers/{ours['id']}")).status_code == 204
    assert (await gw.client.delete(f"/v1/provider-accounts/{account['id']}")).status_code == 204
    assert (await gw.client.get(f"/v1/provider-accounts/{account['id']}")).status_code == 404


async def test_vonage_concatenated_inbound_is_joined_in_order(gw: Gateway) -> None:
    fake = FakeVonage()
    fake.start()
    try:
        account = await connect(gw, fake)
        url = account["callback_url"]
        parts = ["Part one, ", "part two, ", "part three."]
        ids = ["p1", "p2", "p3"]
        order = [2, 0, 2, 1]  # out of order, with a repeat of the last part
        for index in order:
            callback = fake.inbound(
                url,
                PERSON,
                OUR_NUMBER,
                parts[index],
                message_id=f"{ids[index]}-uuid",
                concat=("7A", 3, index + 1),
            )
            assert (await callback.deliver(gw.client)).status_code == 200
            inbound = [r for r in await message_rows(gw) if r["direction"] == "inbound"]
            if index != order[-1]:
                assert inbound == []
        [row] = [r for r in await message_rows(gw) if r["direction"] == "inbound"]
        assert row["body"] == "".join(parts)
    finally:
        fake.stop()


async def test_vonage_parts_whose_last_part_never_comes_are_delivered_later(
    gw: Gateway,
) -> None:
    fake = FakeVonage()
    fake.start()
    try:
        account = await connect(gw, fake)
        for part, text in ((1, "first "), (3, "third")):
            callback = fake.inbound(
                account["callback_url"], PERSON, OUR_NUMBER, text, concat=("1F", 3, part)
            )
            assert (await callback.deliver(gw.client)).status_code == 200
        await gw.drain()
        assert [r for r in await message_rows(gw) if r["direction"] == "inbound"] == []
        jobs = tables.jobs
        async with gw.db.write() as conn:
            changed = await conn.execute(
                update(jobs)
                .where(jobs.c.kind == PARTS_JOB, jobs.c.ref == account["id"])
                .values(run_at=time.time())
            )
        assert changed.rowcount == 1
        await gw.drain()
        [row] = [r for r in await message_rows(gw) if r["direction"] == "inbound"]
        assert row["body"] == "first third"
    finally:
        fake.stop()


async def test_mms_goes_out_with_its_media(gw: Gateway, fake: Fake) -> None:
    await connect(gw, fake)
    media = "https://cdn.example.com/cat.png"
    message_id = await send(gw, body="look", media_urls=[media])
    await gw.drain()
    row = await message_row(gw, message_id)
    assert row["status"] == "sent", row["error_message"]
    assert fake.sent[row["provider_message_id"]]["media"] == [media]


async def test_twilio_messaging_service_goes_with_the_sender(gw: Gateway) -> None:
    fake = FakeTwilio()
    fake.start()
    try:
        service = "MG" + "a" * 32
        response = await gw.client.post(
            "/v1/provider-accounts",
            json={
                "provider": "twilio",
                "name": "service",
                "credentials": {**fake.credentials(), "messaging_service_sid": service},
                "api_base_url": fake.base_url,
            },
        )
        assert response.status_code == 201, response.text
        account = response.json()
        assert "messaging_service_sid" in account["credentials_set"]
        number = await gw.client.post(
            "/v1/numbers", json={"number": OUR_NUMBER, "provider_account_id": account["id"]}
        )
        assert number.status_code == 201
        message_id = await send(gw)
        await gw.drain()
        row = await message_row(gw, message_id)
        sent = fake.sent[row["provider_message_id"]]
        assert (sent["messaging_service_sid"], sent["from"]) == (service, OUR_NUMBER)
    finally:
        fake.stop()


async def test_twilio_callbacks_hold_with_the_default_port_and_as_json(gw: Gateway) -> None:
    fake = FakeTwilio()
    fake.start()
    try:
        account = await connect(gw, fake)
        # Twilio signed the URL with the default port; agentsms knows it without (and the
        # other way round).
        assert account["callback_url"].startswith("https://agentsms.example.com/")
        with_port = account["callback_url"].replace(".com/", ".com:443/")
        inbound = fake.inbound(with_port, PERSON, OUR_NUMBER, "signed with :443")
        assert (await inbound.deliver(gw.client)).status_code == 200
        assert [r["body"] for r in await message_rows(gw) if r["direction"] == "inbound"] == [
            "signed with :443"
        ]

        message_id = await send(gw)
        await gw.drain()
        carrier_id = (await message_row(gw, message_id))["provider_message_id"]
        genuine = fake.json_status_callback(carrier_id, "delivered")
        assert "bodySHA256=" in genuine.url
        forged = dataclasses.replace(genuine, body=genuine.body.replace(b"+1", b"+2"))
        refused = await forged.deliver(gw.client)
        assert refused.status_code == 403
        assert "bodySHA256" in refused.json()["detail"]
        assert (await message_row(gw, message_id))["status"] == "sent"
        delivered = await genuine.deliver(gw.client)
        assert delivered.status_code == 200, delivered.text
        assert (await message_row(gw, message_id))["status"] == "delivered"
    finally:
        fake.stop()


async def test_a_receipt_cannot_touch_another_projects_message(
    gw: Gateway, carrier_app: FastAPI
) -> None:
    fake = FakeTelnyx()
    fake.start()
    try:
        await connect(gw, fake)
        message_id = await send(gw)
        await gw.drain()
        carrier_id = (await message_row(gw, message_id))["provider_message_id"]
        async with open_gateway(carrier_app, "intruder") as other:
            intruder = await add_account(other, fake)
            genuine = fake.status_callback(carrier_id, "delivered")
            event = json.loads(genuine.body)["data"]
            aimed = fake._signed(f"{intruder['callback_url']}?ref={message_id}", event)
            assert (await aimed.deliver(other.client)).status_code == 200
            assert (await message_row(gw, message_id))["status"] == "sent"
        assert (await genuine.deliver(gw.client)).status_code == 200
        assert (await message_row(gw, message_id))["status"] == "delivered"
    finally:
        fake.stop()


async def test_a_channel_the_carrier_cannot_send_fails_permanently(gw: Gateway) -> None:
    fake = FakeTelnyx()
    fake.start()
    try:
        account = await add_account(gw, fake)
        response = await gw.client.post(
            "/v1/numbers",
            json={
                "number": OUR_NUMBER,
                "provider_account_id": account["id"],
                "capabilities": ["whatsapp"],
            },
        )
        assert response.status_code == 201
        message_id = await send(gw, channel="whatsapp")
        await gw.drain()
        row = await message_row(gw, message_id)
        assert (row["status"], row["error_code"]) == ("failed", "unsupported_channel")
        assert fake.sent == {}
    finally:
        fake.stop()


async def test_smpp_accounts_need_an_smpp_url(gw: Gateway) -> None:
    credentials = {"system_id": "agentsms", "password": "secret12"}
    for base, reason in ((None, "is required"), ("https://smsc.example.com", "smpp")):
        response = await gw.client.post(
            "/v1/provider-accounts",
            json={"provider": "smpp", "name": "operator", "credentials": credentials}
            | ({"api_base_url": base} if base else {}),
        )
        fields = problem_fields(assert_problem(response, 422, "validation_failed"))
        assert reason in fields["api_base_url"]


async def test_unknown_provider_and_http_base_url_without_the_setting(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/provider-accounts", json={"provider": "acme", "name": "x", "credentials": {}}
    )
    assert "provider" in problem_fields(assert_problem(response, 422, "validation_failed"))
    # The default app does not allow plain-http carrier URLs.
    response = await gateway.client.post(
        "/v1/provider-accounts",
        json={
            "provider": "plivo",
            "name": "x",
            "credentials": {"auth_id": "MA1", "auth_token": "t"},
            "api_base_url": "http://127.0.0.1:9",
        },
    )
    fields = problem_fields(assert_problem(response, 422, "unsafe_url"))
    assert "https" in fields["api_base_url"]


@pytest.mark.parametrize(
    "base_url",
    [
        "https://127.0.0.1:9",
        "https://[::ffff:169.254.169.254]",
        "https://0x7f.1",
        "https://localhost",
    ],
)
async def test_a_carrier_api_url_inside_is_refused(gateway: Gateway, base_url: str) -> None:
    """The worker calls this URL with the account's credentials: the SSRF guard's rules."""
    response = await gateway.client.post(
        "/v1/provider-accounts",
        json={
            "provider": "plivo",
            "name": "x",
            "credentials": {"auth_id": "MA1", "auth_token": "t"},
            "api_base_url": base_url,
        },
    )
    assert "api_base_url" in problem_fields(assert_problem(response, 422, "unsafe_url"))
