"""Which number sends: an explicit ``from``, channel capability, sticky sender, country, spread."""

from __future__ import annotations

from collections import Counter

from tests.conftest import Gateway
from tests.integration.helpers import (
    assert_problem,
    cancel_pending,
    message_rows,
    problem_fields,
    settle,
)

DEFAULT = "+14155550100"


async def _add(gateway: Gateway, number: str, **fields: object) -> str:
    response = await gateway.client.post("/v1/numbers", json={"number": number, **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _only(gateway: Gateway, number: str, **fields: object) -> None:
    """Make ``number`` the project's whole pool."""
    await _add(gateway, number, **fields)
    numbers = (await gateway.client.get("/v1/numbers")).json()["data"]
    default = next(n for n in numbers if n["number"] == DEFAULT)
    assert (await gateway.client.delete(f"/v1/numbers/{default['id']}")).status_code == 204


async def test_explicit_from_is_used(gateway: Gateway) -> None:
    await _add(gateway, "+14155550107")
    response = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552801", "body": "x", "from": "+1 415 555 0107"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["from"] == "+14155550107"
    (row,) = await message_rows(gateway)
    assert row["from_number"] == "+14155550107"


async def test_from_not_in_the_pool_is_422(gateway: Gateway) -> None:
    _other_id, other = await gateway.new_project()
    await other.aclose()
    for sender in ("+14155550108", "+14155550199"):  # nobody's, and another project's
        response = await gateway.client.post(
            "/v1/messages", json={"to": "+14155552802", "body": "x", "from": sender}
        )
        fields = problem_fields(assert_problem(response, 422, "validation_failed"))
        assert fields == {"from": "is not a number in this project's sender pool"}
    bad = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552802", "body": "x", "from": "12"}
    )
    assert problem_fields(assert_problem(bad, 422, "validation_failed")) == {
        "from": "must start with + and country code"
    }
    batch = await gateway.client.post(
        "/v1/batches", json={"recipients": ["+14155552802"], "body": "x", "from": "+14155550108"}
    )
    assert problem_fields(assert_problem(batch, 422, "validation_failed")) == {
        "recipients[0].from": "is not a number in this project's sender pool"
    }
    assert await message_rows(gateway) == []


async def test_no_number_for_the_channel_is_422_with_a_reason(gateway: Gateway) -> None:
    await _only(gateway, "+14155550109", capabilities=["sms"])

    whatsapp = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552803", "body": "x", "channel": "whatsapp"}
    )
    assert problem_fields(assert_problem(whatsapp, 422, "validation_failed")) == {
        "from": "no number in this project's pool can carry the whatsapp channel"
    }
    media = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552803", "media_urls": ["https://e.com/a.png"]}
    )
    assert problem_fields(assert_problem(media, 422, "validation_failed")) == {
        "from": "no number in this project's pool can carry media"
    }
    explicit = await gateway.client.post(
        "/v1/messages",
        json={"to": "+14155552803", "body": "x", "channel": "mms", "from": "+14155550109"},
    )
    assert problem_fields(assert_problem(explicit, 422, "validation_failed")) == {
        "channel": "+14155550109 cannot send mms"
    }
    sms = await gateway.client.post("/v1/messages", json={"to": "+14155552803", "body": "x"})
    assert sms.status_code == 202
    assert sms.json()["from"] == "+14155550109"
    assert len(await message_rows(gateway)) == 1


async def test_empty_pool_is_422_with_a_reason(gateway: Gateway) -> None:
    numbers = (await gateway.client.get("/v1/numbers")).json()["data"]
    for number in numbers:
        await gateway.client.delete(f"/v1/numbers/{number['id']}")
    response = await gateway.client.post("/v1/messages", json={"to": "+14155552804", "body": "x"})
    assert problem_fields(assert_problem(response, 422, "validation_failed")) == {
        "from": "this project has no sender numbers; add one first"
    }
    assert await message_rows(gateway) == []


async def test_sticky_sender(gateway: Gateway) -> None:
    # B is slow: the throughput-weighted draw would almost never pick it (1 in 101).
    await _add(gateway, "+14155550110", throughput_mps=1)
    people = ["+14155552805", "+14155552806", "+14155552807"]
    for person in people:
        inbound = await gateway.client.post(
            "/v1/simulator/inbound", json={"from": person, "to": "+14155550110", "body": "hi"}
        )
        assert inbound.status_code == 202, inbound.text

    replies = [
        await gateway.client.post("/v1/messages", json={"to": person, "body": "hello back"})
        for person in people
    ]
    assert [r.json()["from"] for r in replies] == ["+14155550110"] * 3
    batch = await gateway.client.post(
        "/v1/batches", json={"recipients": people, "body": "and again"}
    )
    rows = {row["id"]: row for row in await message_rows(gateway)}
    assert [rows[i]["from_number"] for i in batch.json()["message_ids"]] == ["+14155550110"] * 3

    # The person who last talked to A gets A again, even though B wrote to them before.
    switch = await gateway.client.post(
        "/v1/messages", json={"to": people[0], "body": "from A", "from": DEFAULT}
    )
    assert switch.status_code == 202
    after = await gateway.client.post("/v1/messages", json={"to": people[0], "body": "who?"})
    assert after.json()["from"] == DEFAULT
    await cancel_pending(gateway)


async def test_sticky_sender_must_still_carry_the_channel(gateway: Gateway) -> None:
    await _add(gateway, "+14155550111", capabilities=["sms"], throughput_mps=1)
    await gateway.client.post(
        "/v1/simulator/inbound", json={"from": "+14155552808", "to": "+14155550111", "body": "hi"}
    )
    response = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552808", "body": "w", "channel": "whatsapp"}
    )
    assert response.status_code == 202
    assert response.json()["from"] == DEFAULT
    await cancel_pending(gateway)


async def test_country_preference(gateway: Gateway) -> None:
    await _add(gateway, "+447400123456", throughput_mps=1)
    uk = ["+447911123456", "+447400123457", "+447912345678"]
    for person in uk:
        response = await gateway.client.post("/v1/messages", json={"to": person, "body": "hi"})
        assert response.status_code == 202, response.text
        assert response.json()["from"] == "+447400123456", person
    us = await gateway.client.post("/v1/messages", json={"to": "+14155552809", "body": "hi"})
    assert us.json()["from"] == DEFAULT
    # Nobody in France: any number will do.
    fr = await gateway.client.post("/v1/messages", json={"to": "+33612345678", "body": "salut"})
    assert fr.status_code == 202
    assert fr.json()["from"] in {DEFAULT, "+447400123456"}
    rows = await message_rows(gateway)
    assert Counter(row["from_number"] for row in rows if row["to_number"].startswith("+44")) == {
        "+447400123456": 3
    }
    await cancel_pending(gateway)


async def test_a_large_batch_spreads_over_the_pool(gateway: Gateway) -> None:
    await _add(gateway, "+14155550112", throughput_mps=100)
    recipients = [f"+141555529{i:02d}" for i in range(60)] + [
        f"+141555530{i:02d}" for i in range(90)
    ]
    response = await gateway.client.post(
        "/v1/batches", json={"recipients": recipients, "body": "spread"}
    )
    assert response.status_code == 202, response.text
    ids = response.json()["message_ids"]
    rows = {row["id"]: row for row in await message_rows(gateway)}
    used = Counter(rows[i]["from_number"] for i in ids)
    assert set(used) == {DEFAULT, "+14155550112"}
    assert all(n >= 30 for n in used.values()), used  # about half each at equal rates

    final = await settle(gateway, ids)
    assert {row["status"] for row in final.values()} == {"delivered"}
    sent_by = Counter(row["from_number"] for row in final.values())
    assert sent_by == used
