"""Delivery receipts only move a message forward; duplicates and late ones change nothing."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from agentsms.core.receipts import apply_receipts
from agentsms.providers.base import Lookup, Provider, Receipt, SendOutcome, SendRequest
from tests.conftest import Gateway
from tests.integration.helpers import events_of, message_row, settle


async def _delivered(gateway: Gateway, to: str) -> str:
    response = await gateway.client.post("/v1/messages", json={"to": to, "body": "r"})
    message_id: str = response.json()["id"]
    final = await settle(gateway, [message_id])
    assert final[message_id]["status"] == "delivered"
    return message_id


async def _apply(gateway: Gateway, *receipts: Receipt) -> int:
    async with gateway.db.write() as conn:
        return await apply_receipts(conn, list(receipts))


async def test_late_sent_receipt_after_delivered_changes_nothing(gateway: Gateway) -> None:
    message_id = await _delivered(gateway, "+14155553201")
    before = await message_row(gateway, message_id)
    events_before = await events_of(gateway, message_id)

    changed = await _apply(
        gateway, Receipt(provider_message_id=None, status="sent", reference=message_id)
    )

    assert changed == 0
    after = await message_row(gateway, message_id)
    assert after["status"] == "delivered"
    assert after["updated_at"] == before["updated_at"]
    assert await events_of(gateway, message_id) == events_before
    api = (await gateway.client.get(f"/v1/messages/{message_id}")).json()
    assert api["status"] == "delivered"


async def test_failure_after_delivered_changes_nothing(gateway: Gateway) -> None:
    message_id = await _delivered(gateway, "+14155553202")
    changed = await _apply(
        gateway,
        Receipt(
            provider_message_id=None, status="undelivered", reference=message_id, error_code="30003"
        ),
        Receipt(provider_message_id=None, status="failed", reference=message_id),
    )
    assert changed == 0
    row = await message_row(gateway, message_id)
    assert (row["status"], row["error_code"]) == ("delivered", None)


async def test_duplicate_receipt_changes_nothing(gateway: Gateway) -> None:
    message_id = await _delivered(gateway, "+14155553203")
    before = await message_row(gateway, message_id)
    events_before = await events_of(gateway, message_id)
    assert events_before.count("delivered") == 1

    receipt = Receipt(provider_message_id=None, status="delivered", reference=message_id)
    assert await _apply(gateway, receipt, receipt) == 0

    after = await message_row(gateway, message_id)
    assert after["delivered_at"] == before["delivered_at"]
    assert after["updated_at"] == before["updated_at"]
    assert await events_of(gateway, message_id) == events_before


async def test_a_receipt_moves_a_message_forward_once(gateway: Gateway) -> None:
    # A carrier that reports late: the message stays ``sent`` until a receipt comes.
    number = await gateway.client.post(
        "/v1/numbers",
        json={"number": "+14155550121", "settings": {"delivery_delay_seconds": 3600}},
    )
    assert number.status_code == 201
    response = await gateway.client.post(
        "/v1/messages", json={"to": "+14155553204", "body": "r", "from": "+14155550121"}
    )
    message_id = response.json()["id"]
    await settle(gateway, [message_id], until={"sent"})
    receipt = Receipt(
        provider_message_id=None,
        status="undelivered",
        reference=message_id,
        error_code="30005",
        price=Decimal("0.0079"),
    )
    assert await _apply(gateway, receipt, receipt) == 1
    row = await message_row(gateway, message_id)
    assert row["status"] == "undelivered"
    assert row["error_code"] == "30005"
    assert row["error_message"] == "unknown destination handset"
    assert Decimal(row["price"]) == Decimal("0.0079")
    assert (await events_of(gateway, message_id)).count("undelivered") == 1


async def test_receipt_for_a_queued_message_skips_ahead(gateway: Gateway) -> None:
    response = await gateway.client.post("/v1/messages", json={"to": "+14155553205", "body": "q"})
    message_id = response.json()["id"]
    changed = await _apply(
        gateway,
        Receipt(provider_message_id="SIMX", status="delivered", reference=message_id),
    )
    assert changed == 1
    row = await message_row(gateway, message_id)
    assert row["status"] == "delivered"
    assert row["delivered_at"] is not None
    assert row["provider_message_id"] == "SIMX"
    # Its send job finds it final and sends nothing.
    await gateway.drain()
    assert (await message_row(gateway, message_id))["status"] == "delivered"


async def test_receipts_for_unknown_messages_are_ignored(gateway: Gateway) -> None:
    changed = await _apply(
        gateway,
        Receipt(provider_message_id=None, status="delivered", reference="msg_unknown"),
        Receipt(provider_message_id="SIM?", status="delivered", reference=None),
    )
    assert changed == 0


class _ReportsBeforeReturning:
    """The simulator, but the carrier's final report lands (in its own transaction) before
    ``send_many`` returns: the race an SMPP receipt can win against the sender's record."""

    def __init__(self, gateway: Gateway, inner: Provider) -> None:
        self.gateway = gateway
        self.inner = inner
        self.name = inner.name

    async def send_many(self, requests: Sequence[SendRequest]) -> list[SendOutcome]:
        outcomes = await self.inner.send_many(requests)
        await _apply(
            self.gateway,
            *(
                Receipt(provider_message_id=None, status="delivered", reference=r.reference)
                for r in requests
            ),
        )
        return outcomes

    async def lookup(self, request: SendRequest) -> Lookup | None:
        return await self.inner.lookup(request)


async def test_a_report_that_beats_the_senders_record_keeps_the_timeline_in_order(
    gateway: Gateway,
) -> None:
    providers = gateway.app.state.agentsms.providers
    simulator = providers.get("simulator")
    providers.register(_ReportsBeforeReturning(gateway, simulator))
    try:
        response = await gateway.client.post(
            "/v1/messages", json={"to": "+14155553230", "body": "fast carrier"}
        )
        message_id = response.json()["id"]
        final = await settle(gateway, [message_id])
    finally:
        providers.register(simulator)

    row = final[message_id]
    assert row["status"] == "delivered"
    assert row["provider_message_id"]  # the sender's record still lands
    assert row["sent_at"] is not None
    # One "sent", told by the report that found the message still being sent, then
    # "delivered"; the sender's own record adds no second "sent".
    assert await events_of(gateway, message_id) == ["sending", "sent", "delivered"]
