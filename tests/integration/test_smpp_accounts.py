"""An SMPP operator account through the native API, with the app's own worker running:
the account's credentials are checked with a bind, its number sends through the session
the worker keeps, the fake SMSC's receipts and inbound texts come back over it, and
deleting the account unbinds it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI

from agentsms.app import create_app
from agentsms.core import provider_accounts
from agentsms.core.provider_events import StoredProviderEvents
from agentsms.providers.base import Receipt
from agentsms.store.repositories import provider_accounts as accounts_repo
from agentsms.store.types import utcnow
from tests import conftest
from tests.conftest import Gateway, open_gateway
from tests.fakes.smsc import FakeSmsc, wait_until
from tests.integration.helpers import assert_problem, problem_fields

OURS = "+14155550188"
PERSON = "+4915112345670"


@pytest.fixture(scope="module")
async def worker_app(backend_url: str) -> AsyncIterator[FastAPI]:
    """``agentsms serve`` as one process: the API and its built-in worker."""
    settings = conftest.test_settings(
        backend_url,
        secret_key=Fernet.generate_key().decode(),
        smpp_sync_seconds=0.1,
        trusted_private_hosts="127.0.0.1",  # the fake SMSC listens on loopback
    )
    app = create_app(settings, run_worker=True)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def gw(worker_app: FastAPI) -> AsyncIterator[Gateway]:
    async with open_gateway(worker_app, "smpp-accounts") as opened:
        yield opened
        # Accounts left behind would keep the worker redialling SMSCs that are gone.
        for number in (await opened.client.get("/v1/numbers")).json()["data"]:
            await opened.client.delete(f"/v1/numbers/{number['id']}")
        for account in (await opened.client.get("/v1/provider-accounts")).json()["data"]:
            await opened.client.delete(f"/v1/provider-accounts/{account['id']}")


def account_body(smsc: FakeSmsc, **credentials: str) -> dict[str, Any]:
    return {
        "provider": "smpp",
        "name": "operator",
        "credentials": {"system_id": smsc.system_id, "password": smsc.password} | credentials,
        "api_base_url": smsc.url,
    }


async def wait_status(gw: Gateway, message_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        body: dict[str, Any] = (await gw.client.get(f"/v1/messages/{message_id}")).json()
        if body["status"] == status:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{message_id} is {body['status']}, not {status}")
        await asyncio.sleep(0.02)


async def test_an_smpp_account_sends_and_receives_through_the_worker_session(
    gw: Gateway,
) -> None:
    async with FakeSmsc() as smsc:
        wrong = await gw.client.post(
            "/v1/provider-accounts", json=account_body(smsc, password="wrong")
        )
        fields = problem_fields(assert_problem(wrong, 422, "credentials_rejected"))
        assert "invalid password" in fields["credentials.password"]
        assert smsc.binds == [("agentsms", "wrong", 0x0E)]
        assert (await gw.client.get("/v1/provider-accounts")).json()["data"] == []

        created = await gw.client.post("/v1/provider-accounts", json=account_body(smsc))
        assert created.status_code == 201, created.text
        account = created.json()
        assert (account["provider"], account["callback_url"]) == ("smpp", None)
        assert account["credentials_set"] == ["password", "system_id"]
        assert "secret" not in created.text
        # The check bound and unbound; the worker's session binds on its own.
        await wait_until(lambda: len(smsc.bound_sessions) == 1)
        assert [status for *_, status in smsc.binds] == [0x0E, 0, 0]

        mms = await gw.client.post(
            "/v1/numbers",
            json={
                "number": OURS,
                "provider_account_id": account["id"],
                "capabilities": ["sms", "mms"],
            },
        )
        fields = problem_fields(assert_problem(mms, 422, "validation_failed"))
        assert fields["capabilities"] == "smpp numbers carry sms only"
        number = await gw.client.post(
            "/v1/numbers", json={"number": OURS, "provider_account_id": account["id"]}
        )
        assert number.status_code == 201, number.text
        assert (number.json()["provider"], number.json()["capabilities"]) == ("smpp", ["sms"])

        short = "Your table for two is booked for 8pm."
        long = "Здравствуйте! Ваш столик на двоих забронирован на 20:00. " * 3
        ids = []
        for body in (short, long):
            sent = await gw.client.post(
                "/v1/messages", json={"to": PERSON, "from": OURS, "body": body}
            )
            assert sent.status_code == 202, sent.text
            ids.append(sent.json()["id"])

        delivered = [await wait_status(gw, message_id, "delivered") for message_id in ids]

        assert [m.text for m in smsc.messages] == [short, long]
        assert [m.destination_addr for m in smsc.messages] == [PERSON.lstrip("+")] * 2
        long_parts = [s for s in smsc.submits if s.data_coding == 8]
        assert len(long_parts) == delivered[1]["segments"] == 3
        assert [part.udh[1:] for part in long_parts if part.udh] == [(3, 1), (3, 2), (3, 3)]
        assert len({part.udh[0] for part in long_parts if part.udh}) == 1
        assert [m["provider_message_id"] for m in delivered] == [
            smsc.messages[0].message_ids[0],
            smsc.messages[1].message_ids[0],
        ]

        reply = "Спасибо, до встречи!"
        assert await smsc.inject(PERSON, OURS, reply) == [0]
        listed = await _inbound(gw)
        assert [(m["from"], m["to"], m["body"]) for m in listed] == [(PERSON, OURS, reply)]

        assert (await gw.client.delete(f"/v1/numbers/{number.json()['id']}")).status_code == 204
        removed = await gw.client.delete(f"/v1/provider-accounts/{account['id']}")
        assert removed.status_code == 204
        await wait_until(lambda: smsc.bound_sessions == [])


async def test_an_unreachable_smsc_and_unusable_credentials_store_nothing(gw: Gateway) -> None:
    async with FakeSmsc() as smsc:
        too_long = await gw.client.post(
            "/v1/provider-accounts", json=account_body(smsc, password="much-too-long")
        )
        fields = problem_fields(assert_problem(too_long, 422, "validation_failed"))
        assert "at most 8" in fields["credentials.password"]
        bad_option = account_body(smsc)
        bad_option["api_base_url"] += "?window=0"
        fields = problem_fields(
            assert_problem(
                await gw.client.post("/v1/provider-accounts", json=bad_option),
                422,
                "validation_failed",
            )
        )
        assert "window" in fields["api_base_url"]
        assert smsc.binds == []
    # The SMSC is gone: nothing listens on its port any more.
    unreachable = await gw.client.post("/v1/provider-accounts", json=account_body(smsc))
    problem = assert_problem(unreachable, 502, "carrier_unavailable")
    assert smsc.url.removeprefix("smpp://") in problem["detail"]
    assert (await gw.client.get("/v1/provider-accounts")).json()["data"] == []


async def _inbound(gw: Gateway) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        page = (await gw.client.get("/v1/messages", params={"from": PERSON})).json()
        if page["data"] or time.monotonic() > deadline:
            return list(page["data"])
        await asyncio.sleep(0.02)


async def test_two_smpp_accounts_with_the_same_smsc_ids_keep_their_receipts_apart(
    gw: Gateway,
) -> None:
    # Two SMSCs number their messages alike: a receipt that names only the SMSC's id (as
    # after a worker restart) must move the message of its own account only.
    async with FakeSmsc() as first, FakeSmsc() as second:
        ids: dict[str, str] = {}
        accounts: dict[str, str] = {}
        for smsc, ours in ((first, OURS), (second, "+14155550189")):
            smsc.hold_receipts = True
            created = await gw.client.post("/v1/provider-accounts", json=account_body(smsc))
            assert created.status_code == 201, created.text
            accounts[ours] = created.json()["id"]
            number = await gw.client.post(
                "/v1/numbers", json={"number": ours, "provider_account_id": accounts[ours]}
            )
            assert number.status_code == 201, number.text
            sent = await gw.client.post(
                "/v1/messages", json={"to": PERSON, "from": ours, "body": f"from {ours}"}
            )
            assert sent.status_code == 202, sent.text
            ids[ours] = sent.json()["id"]
        rows = [await wait_status(gw, ids[ours], "sent") for ours in ids]
        assert rows[0]["provider_message_id"] == rows[1]["provider_message_id"]

        # SMPP takes no webhooks; the receipt goes into the session's sink directly.
        callback = await gw.client.post(f"/callbacks/smpp/{accounts['+14155550189']}")
        assert_problem(callback, 404, "not_found")
        events = StoredProviderEvents(gw.db, gw.settings, gw.outbox)
        receipt = Receipt(provider_message_id=rows[1]["provider_message_id"], status="undelivered")
        await events.receipts(accounts["+14155550189"], [receipt])

        await wait_status(gw, ids["+14155550189"], "undelivered")
        assert (await gw.client.get(f"/v1/messages/{ids[OURS]}")).json()["status"] == "sent"


async def test_an_account_this_process_cannot_decrypt_is_left_out_of_the_sessions(
    gw: Gateway,
) -> None:
    async with FakeSmsc() as smsc:
        good = await gw.client.post("/v1/provider-accounts", json=account_body(smsc))
        assert good.status_code == 201, good.text
        async with gw.db.write() as conn:
            await accounts_repo.insert_account(
                conn,
                {
                    "id": "acct_sealed_with_another_key",
                    "project_id": gw.project_id,
                    "provider": "smpp",
                    "name": "elsewhere",
                    "api_base_url": smsc.url,
                    "credentials": Fernet(Fernet.generate_key()).encrypt(b"{}").decode(),
                    "credential_keys": ["password", "system_id"],
                    "created_at": utcnow(),
                },
            )
        opened = await provider_accounts.load_accounts(gw.db, gw.settings, "smpp")
        ids = [account.id for account in opened]
        assert good.json()["id"] in ids
        assert "acct_sealed_with_another_key" not in ids
        await wait_until(lambda: len(smsc.bound_sessions) == 1)
