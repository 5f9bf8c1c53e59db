"""SMPP end to end: an account and a number added through the API, the dispatcher, the
SMPP session of this process (kept by ``SmppSessions``), a fake SMSC on loopback, and
receipts and inbound texts stored through ``StoredProviderEvents``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import select

from agentsms.app import create_app
from agentsms.core import provider_accounts
from agentsms.core.provider_events import UNMATCHED_RECEIPTS_JOB, StoredProviderEvents
from agentsms.providers.base import InboundMessage, ProviderAccount, Receipt
from agentsms.providers.smpp import SmppOptions, SmppProvider
from agentsms.providers.smpp_sessions import SmppSessions
from agentsms.store import tables
from agentsms.store.repositories import provider_accounts as accounts_repo
from tests import conftest
from tests.conftest import Gateway, open_gateway
from tests.fakes.smsc import FakeSmsc, wait_until
from tests.integration.helpers import events_of, message_row, settle

PERSON = "+4915112345678"
OPTIONS = SmppOptions(
    response_timeout=2.0, connect_timeout=2.0, reconnect_initial=0.01, reconnect_max=0.1
)


@dataclass
class SmppSetup:
    gateway: Gateway
    smsc: FakeSmsc
    provider: SmppProvider
    events: StoredProviderEvents
    number: str
    account: ProviderAccount


@pytest.fixture(scope="session")
async def smpp_app(backend_url: str) -> AsyncIterator[FastAPI]:
    settings = conftest.test_settings(
        backend_url,
        secret_key=Fernet.generate_key().decode(),
        trusted_private_hosts="127.0.0.1",  # the fake SMSC listens on loopback
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def add_smpp_number(gateway: Gateway, smsc: FakeSmsc, number: str) -> str:
    """An SMPP account (its credentials checked with a bind) and a number of it, through
    the API; returns the account id."""
    account = await gateway.client.post(
        "/v1/provider-accounts",
        json={
            "provider": "smpp",
            "name": "operator",
            "credentials": {"system_id": smsc.system_id, "password": smsc.password},
            "api_base_url": smsc.url,
        },
    )
    assert account.status_code == 201, account.text
    account_id: str = account.json()["id"]
    added = await gateway.client.post(
        "/v1/numbers",
        json={
            "number": number,
            "provider_account_id": account_id,
            "capabilities": ["sms"],
            "throughput_mps": 10_000,
        },
    )
    assert added.status_code == 201, added.text
    assert (added.json()["provider"], added.json()["callback_url"]) == ("smpp", None)
    return account_id


@pytest.fixture
async def smpp(smpp_app: FastAPI) -> AsyncIterator[SmppSetup]:
    number = "+14155550177"
    async with open_gateway(smpp_app, "smpp") as gateway, FakeSmsc() as smsc:
        account_id = await add_smpp_number(gateway, smsc, number)
        async with gateway.db.read() as conn:
            row = await accounts_repo.get_account(conn, account_id)
        assert row is not None
        account = provider_accounts.open_account(row, gateway.settings)
        events = StoredProviderEvents(gateway.db, gateway.settings, gateway.outbox)
        sessions = SmppSessions(smpp_app.state.agentsms.providers, events, options=OPTIONS)
        await sessions.sync([account])
        provider = sessions.running()[account_id]
        try:
            yield SmppSetup(gateway, smsc, provider, events, number, account)
        finally:
            await sessions.close()
            await provider.close()
            for row in (await gateway.client.get("/v1/numbers")).json()["data"]:
                await gateway.client.delete(f"/v1/numbers/{row['id']}")
            deleted = await gateway.client.delete(f"/v1/provider-accounts/{account_id}")
            assert deleted.status_code == 204, deleted.text


async def _send(setup: SmppSetup, body: str, to: str = PERSON) -> str:
    response = await setup.gateway.client.post(
        "/v1/messages", json={"to": to, "from": setup.number, "body": body}
    )
    assert response.status_code == 202, response.text
    message_id: str = response.json()["id"]
    return message_id


async def test_a_message_sent_over_smpp_is_delivered_by_a_deliver_sm_receipt(
    smpp: SmppSetup,
) -> None:
    text = "Ihr Termin ist morgen um 10:00 — bitte bestätigen \U0001f4c5 " * 3
    message_id = await _send(smpp, text)

    final = await settle(smpp.gateway, [message_id])

    row = final[message_id]
    assert row["status"] == "delivered"
    assert row["provider"] == "smpp"
    assert row["provider_message_id"] == smpp.smsc.submits[0].message_id
    assert [m.text for m in smpp.smsc.messages] == [text]
    assert len(smpp.smsc.submits) == row["segments"] > 1
    assert await events_of(smpp.gateway, message_id) == ["sending", "sent", "delivered"]
    api = (await smpp.gateway.client.get(f"/v1/messages/{message_id}")).json()
    assert api["status"] == "delivered"


async def test_an_undeliverable_receipt_marks_the_message_undelivered(smpp: SmppSetup) -> None:
    smpp.smsc.outcomes[PERSON.lstrip("+")] = "UNDELIV"
    message_id = await _send(smpp, "will not arrive")

    final = await settle(smpp.gateway, [message_id])

    row = final[message_id]
    assert (row["status"], row["error_code"]) == ("undelivered", "UNDELIV")
    assert row["error_message"] == "message undeliverable (SMSC error 12)"


async def test_a_receipt_naming_only_the_smsc_id_finds_the_message(smpp: SmppSetup) -> None:
    # The session that sent the message is gone (a worker restart): the receipt comes to a
    # new session that never saw the id, and the database maps it back.
    smpp.smsc.hold_receipts = True
    message_id = await _send(smpp, "across a restart")
    await settle(smpp.gateway, [message_id], until={"sent"})
    await smpp.provider.close()
    fresh = SmppProvider(smpp.account, smpp.events, OPTIONS)
    try:
        await fresh.wait_bound()
        smpp.smsc.release_receipts()
        await wait_until(lambda: len(smpp.smsc.receipts_sent) == 1)
        row = await _wait_status(smpp, message_id, "delivered")
        assert row["provider_message_id"] == smpp.smsc.submits[0].message_id
    finally:
        await fresh.close()


async def test_a_receipt_that_comes_before_the_send_is_recorded_is_matched_later(
    smpp: SmppSetup,
) -> None:
    # Another worker's session may get the receipt before this one has recorded the id.
    smpp.smsc.hold_receipts = True
    early = StoredProviderEvents(
        smpp.events.db, smpp.events.settings, smpp.events.outbox, unmatched_retry_seconds=0
    )
    smsc_id = smpp.smsc.next_message_id
    await early.receipts(
        smpp.account.id, [Receipt(provider_message_id=smsc_id, status="delivered")]
    )
    parked = await _jobs_of_kind(smpp, UNMATCHED_RECEIPTS_JOB)
    assert [j["payload"]["receipts"][0]["provider_message_id"] for j in parked] == [smsc_id]

    message_id = await _send(smpp, "receipt first")
    await settle(smpp.gateway, [message_id], until={"sent", "delivered"})
    assert smpp.smsc.submits[0].message_id == smsc_id

    final = await settle(smpp.gateway, [message_id], within=15)
    assert final[message_id]["status"] == "delivered"
    assert smpp.smsc.receipts_sent == []  # the SMSC's own receipt is still held back
    assert await _jobs_of_kind(smpp, UNMATCHED_RECEIPTS_JOB) == []


async def test_an_inbound_deliver_sm_lands_as_an_inbound_message(smpp: SmppSetup) -> None:
    await smpp.provider.wait_bound()
    text = "Ja, passt. Bis morgen! \U0001f44d " * 4
    statuses = await smpp.smsc.inject(PERSON, smpp.number, text, parts=3, order=[2, 3, 1])
    assert statuses == [0, 0, 0]

    rows = await _inbound_rows(smpp)
    assert len(rows) == 1
    row = rows[0]
    assert (row["from_number"], row["to_number"], row["body"]) == (PERSON, smpp.number, text)
    assert (row["status"], row["provider"]) == ("received", "smpp")
    listed = await smpp.gateway.client.get("/v1/messages", params={"from": PERSON})
    assert [m["id"] for m in listed.json()["data"]] == [row["id"]]


async def test_an_inbound_text_to_a_foreign_number_is_acknowledged_and_dropped(
    smpp: SmppSetup,
) -> None:
    await smpp.provider.wait_bound()
    assert await smpp.smsc.inject(PERSON, "+14155559999", "wrong number") == [0]
    assert await _inbound_rows(smpp, wait=False) == []


async def test_events_for_an_unknown_account_change_nothing(smpp: SmppSetup) -> None:
    message_id = await _send(smpp, "not for them")
    smpp.smsc.hold_receipts = True
    await settle(smpp.gateway, [message_id], until={"sent"})
    row = await message_row(smpp.gateway, message_id)
    receipt = Receipt(provider_message_id=row["provider_message_id"], status="delivered")
    await smpp.events.receipts("pa_gone", [receipt])
    await smpp.events.inbound(
        "pa_gone", InboundMessage(from_number=PERSON, to_number=smpp.number, body="x")
    )
    assert (await message_row(smpp.gateway, message_id))["status"] == "sent"
    assert await _inbound_rows(smpp, wait=False) == []
    assert await _jobs_of_kind(smpp, UNMATCHED_RECEIPTS_JOB, "pa_gone") == []


async def test_messages_survive_a_dropped_smpp_connection_with_one_final_status_each(
    smpp: SmppSetup,
) -> None:
    await smpp.provider.wait_bound()
    # Receipts wait, so the PDUs counted are submit_sm only: the drop comes mid-window.
    smpp.smsc.hold_receipts = True
    smpp.smsc.drop_after(150)
    recipients = [f"+49151000{i:05d}" for i in range(300)]
    batch = await smpp.gateway.client.post(
        "/v1/batches",
        json={"recipients": recipients, "body": "batch over smpp", "from": smpp.number},
    )
    assert batch.status_code == 202, batch.text
    ids = batch.json()["message_ids"]

    await settle(smpp.gateway, ids, until={"sent"}, within=60)
    smpp.smsc.release_receipts()
    final = await settle(smpp.gateway, ids, within=60)

    assert smpp.smsc.drops == 1
    assert smpp.provider.binds == 2
    assert {row["status"] for row in final.values()} == {"delivered"}
    retried = [row for row in final.values() if row["attempts"] > 1]
    assert 1 <= len(retried) <= 10  # the unacknowledged window went round the job retry
    assert sorted(m.destination_addr for m in smpp.smsc.messages) == sorted(
        r.lstrip("+") for r in recipients
    )
    for message_id in ids:
        assert (await events_of(smpp.gateway, message_id)).count("delivered") == 1


async def _jobs_of_kind(setup: SmppSetup, kind: str, ref: str | None = None) -> list[Any]:
    """An account's jobs of one kind (other tests' accounts park receipts too)."""
    query = select(tables.jobs).where(
        tables.jobs.c.kind == kind, tables.jobs.c.ref == (ref or setup.account.id)
    )
    async with setup.gateway.db.read() as conn:
        return list((await conn.execute(query)).mappings().all())


async def _wait_status(setup: SmppSetup, message_id: str, status: str) -> Any:
    for _ in range(500):
        row = await message_row(setup.gateway, message_id)
        if row["status"] == status:
            return row
        await asyncio.sleep(0.01)
    raise AssertionError(f"{message_id} stayed {row['status']}")


async def _inbound_rows(setup: SmppSetup, wait: bool = True) -> list[Any]:
    query = select(tables.messages).where(
        tables.messages.c.project_id == setup.gateway.project_id,
        tables.messages.c.direction == "inbound",
    )
    for _ in range(300 if wait else 1):
        async with setup.gateway.db.read() as conn:
            rows = list((await conn.execute(query)).mappings().all())
        if rows:
            return rows
        await asyncio.sleep(0.01)
    return []
