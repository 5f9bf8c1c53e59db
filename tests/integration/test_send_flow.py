"""The whole loop through the API: accept, dispatch, deliver."""

from __future__ import annotations

from tests.conftest import Gateway


async def test_message_goes_queued_sending_sent_delivered(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552671", "body": "hello"}
    )
    assert response.status_code == 202
    message = response.json()
    assert message["status"] == "queued"
    assert message["from"] == "+14155550100"
    assert message["segments"] == 1
    assert message["encoding"] == "GSM-7"

    await gateway.drain()

    final = (await gateway.client.get(f"/v1/messages/{message['id']}")).json()
    assert final["status"] == "delivered"
    assert final["provider_message_id"]
    assert final["sent_at"] is not None
    assert final["delivered_at"] is not None
    events = (await gateway.client.get(f"/v1/messages/{message['id']}/events")).json()
    assert [e["status"] for e in events] == ["queued", "sending", "sent", "delivered"]
