"""Native ``POST /v1/messages``: iMessage ``send_style`` and ``reply_to_message_id``, and
the iMessage carousel (2 to 20 media, no text)."""

from __future__ import annotations

from tests.conftest import Gateway
from tests.integration.helpers import assert_problem, message_rows, problem_fields

TO = "+14155552671"
URLS = [f"https://cdn.example.com/{i}.jpg" for i in range(2)]


async def test_send_style_and_inline_reply_on_imessage(gateway: Gateway) -> None:
    first = await gateway.client.post(
        "/v1/messages", json={"to": TO, "body": "Hello", "channel": "imessage"}
    )
    assert first.status_code == 202, first.text
    reply = await gateway.client.post(
        "/v1/messages",
        json={
            "to": TO,
            "body": "Congrats!",
            "channel": "imessage",
            "send_style": "fireworks",
            "reply_to_message_id": first.json()["id"],
        },
    )
    assert reply.status_code == 202, reply.text
    body = reply.json()
    assert body["send_style"] == "fireworks"
    assert body["reply_to_message_id"] == first.json()["id"]
    assert body["reply_parent_unresolved"] is False
    read = await gateway.client.get(f"/v1/messages/{body['id']}")
    assert read.json()["send_style"] == "fireworks"
    orphan = await gateway.client.post(
        "/v1/messages",
        json={"to": "+14155552699", "body": "x", "reply_to_message_id": first.json()["id"]},
    )
    assert orphan.status_code == 202, orphan.text
    assert orphan.json()["reply_parent_unresolved"] is True


async def test_send_style_needs_imessage_and_a_known_effect(gateway: Gateway) -> None:
    sms = await gateway.client.post(
        "/v1/messages", json={"to": TO, "body": "x", "channel": "sms", "send_style": "slam"}
    )
    assert "send_style" in problem_fields(assert_problem(sms, 422, "validation_failed"))
    unknown = await gateway.client.post(
        "/v1/messages", json={"to": TO, "body": "x", "channel": "imessage", "send_style": "zap"}
    )
    assert "send_style" in problem_fields(assert_problem(unknown, 422, "validation_failed"))
    assert await message_rows(gateway) == []


async def test_imessage_carousel_takes_up_to_twenty_media_without_text(gateway: Gateway) -> None:
    twenty = [f"https://cdn.example.com/{i}.jpg" for i in range(20)]
    ok = await gateway.client.post(
        "/v1/messages", json={"to": TO, "channel": "imessage", "media_urls": twenty}
    )
    assert ok.status_code == 202, ok.text
    assert len(ok.json()["media_urls"]) == 20
    with_text = await gateway.client.post(
        "/v1/messages",
        json={"to": TO, "body": "look", "channel": "imessage", "media_urls": URLS},
    )
    assert "body" in problem_fields(assert_problem(with_text, 422, "validation_failed"))
    mms = await gateway.client.post(
        "/v1/messages", json={"to": TO, "body": "x", "channel": "mms", "media_urls": twenty}
    )
    assert "media_urls" in problem_fields(assert_problem(mms, 422, "validation_failed"))
    assert len(await message_rows(gateway)) == 1


async def test_native_reactions_imessage_only(gateway: Gateway) -> None:
    imessage = await gateway.client.post(
        "/v1/messages", json={"to": TO, "body": "Hello", "channel": "imessage"}
    )
    message_id = imessage.json()["id"]
    reacted = await gateway.client.post(
        f"/v1/messages/{message_id}/reactions", json={"reaction": "emphasize"}
    )
    assert reacted.status_code == 201, reacted.text
    assert reacted.json()["reaction"] == "emphasize"
    assert reacted.json()["to"] == TO
    person = await gateway.client.post(
        "/v1/simulator/reactions", json={"message_id": message_id, "reaction": "like"}
    )
    assert person.status_code == 201, person.text
    assert person.json()["from"] == TO
    listed = await gateway.client.get(f"/v1/messages/{message_id}/reactions")
    assert [(r["direction"], r["reaction"]) for r in listed.json()["data"]] == [
        ("outbound", "emphasize"),
        ("inbound", "like"),
    ]
    sms = await gateway.client.post("/v1/messages", json={"to": TO, "body": "x", "channel": "sms"})
    refused = await gateway.client.post(
        f"/v1/messages/{sms.json()['id']}/reactions", json={"reaction": "love"}
    )
    assert "message_id" in problem_fields(assert_problem(refused, 422, "reactions_unsupported"))
    missing = await gateway.client.get("/v1/messages/msg_nope/reactions")
    assert missing.status_code == 404
