"""``/v1/messages``: send one, read it back, list with filters and cursors, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from agentsms.store import tables
from tests.conftest import Gateway
from tests.integration.helpers import (
    assert_problem,
    count,
    jobs_for,
    message_row,
    message_rows,
    problem_fields,
    settle,
)

MESSAGE_FIELDS = {
    "id",
    "batch_id",
    "to",
    "from",
    "body",
    "channel",
    "status",
    "direction",
    "segments",
    "encoding",
    "price_estimate",
    "send_at",
    "sent_at",
    "delivered_at",
    "error_code",
    "error_message",
    "metadata",
    "external_id",
    "provider",
    "provider_message_id",
    "created_at",
}


async def test_send_returns_202_with_the_stored_message_and_its_job(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/messages",
        json={
            "to": "+1 (415) 555-2671",
            "body": "hello there",
            "metadata": {"order": 42, "tags": ["a", "b"]},
            "external_id": "ext-1",
        },
    )

    assert response.status_code == 202
    message = response.json()
    assert set(message) >= MESSAGE_FIELDS
    assert message["id"].startswith("msg_")
    assert message["to"] == "+14155552671"
    assert message["from"] == "+14155550100"
    assert message["direction"] == "outbound"
    assert message["status"] == "queued"
    assert message["channel"] == "sms"
    assert message["batch_id"] is None
    assert message["metadata"] == {"order": 42, "tags": ["a", "b"]}
    assert message["external_id"] == "ext-1"
    assert message["provider"] == "simulator"
    assert message["provider_message_id"] is None
    assert message["sent_at"] is None
    assert message["delivered_at"] is None
    # Committed before the 202: the row, its first event and its send job.
    row = await message_row(gateway, message["id"])
    assert row["project_id"] == gateway.project_id
    assert row["status"] == "queued"
    assert row["to_number"] == "+14155552671"
    assert row["metadata"] == {"order": 42, "tags": ["a", "b"]}
    jobs = await jobs_for(gateway, message["id"])
    assert [(j["kind"], j["status"]) for j in jobs] == [("message.send", "queued")]
    timeline = (await gateway.client.get(f"/v1/messages/{message['id']}/events")).json()
    assert [(e["type"], e["status"]) for e in timeline] == [("message.queued", "queued")]

    fetched = await gateway.client.get(f"/v1/messages/{message['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == message


async def test_metadata_and_external_id_are_echoed_after_delivery(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/messages",
        json={"to": "+14155552672", "body": "hi", "metadata": {"k": "v"}, "external_id": "x9"},
    )
    assert response.status_code == 202
    message_id = response.json()["id"]
    await settle(gateway, [message_id])

    final = (await gateway.client.get(f"/v1/messages/{message_id}")).json()
    assert final["status"] == "delivered"
    assert final["metadata"] == {"k": "v"}
    assert final["external_id"] == "x9"
    listed = (await gateway.client.get("/v1/messages", params={"to": "+14155552672"})).json()
    assert [(m["id"], m["metadata"]) for m in listed["data"]] == [(message_id, {"k": "v"})]
    events = (await gateway.client.get(f"/v1/messages/{message_id}/events")).json()
    assert [e["status"] for e in events] == ["queued", "sending", "sent", "delivered"]
    assert all(e["message_id"] == message_id for e in events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


async def test_segments_encoding_and_price_estimate(gateway: Gateway) -> None:
    added = await gateway.client.post(
        "/v1/numbers",
        json={"number": "+14155550102", "price_per_segment": "0.0075", "throughput_mps": 50},
    )
    assert added.status_code == 201
    cases = [
        ("a" * 160, 1, "GSM-7"),
        ("a" * 161, 2, "GSM-7"),
        ("[" * 80, 1, "GSM-7"),  # extension characters take two septets each
        ("[" * 81, 2, "GSM-7"),
        ("é" * 10 + "ł", 1, "UCS-2"),
        ("ł" * 71, 2, "UCS-2"),
        ("😀" * 35, 1, "UCS-2"),  # 70 UTF-16 units
        ("😀" * 36, 2, "UCS-2"),
    ]
    for body, segments, encoding in cases:
        response = await gateway.client.post(
            "/v1/messages", json={"to": "+14155552673", "from": "+14155550102", "body": body}
        )
        assert response.status_code == 202, response.text
        message = response.json()
        assert (message["segments"], message["encoding"]) == (segments, encoding), body
        assert Decimal(message["price_estimate"]) == Decimal("0.0075") * segments
        fetched = (await gateway.client.get(f"/v1/messages/{message['id']}")).json()
        assert fetched["price_estimate"] == message["price_estimate"]
        row = await message_row(gateway, message["id"])
        assert (row["segments"], row["encoding"]) == (segments, encoding)
        assert Decimal(row["price_estimate"]) == Decimal("0.0075") * segments
    # The default simulator number costs nothing.
    free = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552673", "body": "x", "from": "+14155550100"}
    )
    assert Decimal(free.json()["price_estimate"]) == 0


async def test_channel_defaults_from_media_and_capabilities(gateway: Gateway) -> None:
    plain = await gateway.client.post("/v1/messages", json={"to": "+14155552674", "body": "t"})
    media = await gateway.client.post(
        "/v1/messages",
        json={"to": "+14155552674", "media_urls": ["https://example.com/cat.jpg"]},
    )
    whatsapp = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552674", "body": "w", "channel": "whatsapp"}
    )
    assert [r.status_code for r in (plain, media, whatsapp)] == [202, 202, 202]
    assert plain.json()["channel"] == "sms"
    assert media.json()["channel"] == "mms"
    assert media.json()["body"] == ""
    assert media.json()["media_urls"] == ["https://example.com/cat.jpg"]
    assert whatsapp.json()["channel"] == "whatsapp"
    rows = {row["id"]: row for row in await message_rows(gateway)}
    assert rows[media.json()["id"]]["channel"] == "mms"
    assert rows[whatsapp.json()["id"]]["channel"] == "whatsapp"

    sms_with_media = await gateway.client.post(
        "/v1/messages",
        json={"to": "+14155552674", "channel": "sms", "media_urls": ["https://e.com/a.png"]},
    )
    body = assert_problem(sms_with_media, 422, "validation_failed")
    assert "channel" in problem_fields(body)
    assert len(await message_rows(gateway)) == 3


async def test_get_unknown_message_is_404(gateway: Gateway) -> None:
    response = await gateway.client.get("/v1/messages/msg_01ARZ3NDEKTSV4RRFFQ69G5FAV")
    body = assert_problem(response, 404, "not_found")
    assert "msg_01ARZ3NDEKTSV4RRFFQ69G5FAV" in body["detail"]


async def test_list_filters(gateway: Gateway) -> None:
    await gateway.client.post("/v1/numbers", json={"number": "+14155550103"})
    a = (await gateway.client.post("/v1/messages", json={"to": "+14155552675", "body": "a"})).json()
    b = (
        await gateway.client.post(
            "/v1/messages", json={"to": "+14155552676", "body": "b", "from": "+14155550103"}
        )
    ).json()
    batch = (
        await gateway.client.post(
            "/v1/batches", json={"recipients": ["+14155552677", "+14155552678"], "body": "c"}
        )
    ).json()
    c = (await gateway.client.post("/v1/messages", json={"to": "+14155552675", "body": "d"})).json()
    cancel = await gateway.client.post(f"/v1/messages/{c['id']}/cancel")
    assert cancel.status_code == 200
    inbound = await gateway.client.post(
        "/v1/simulator/inbound",
        json={"from": "+14155552679", "to": "+14155550100", "body": "hey"},
    )
    assert inbound.status_code == 202

    async def ids(**params: str) -> set[str]:
        response = await gateway.client.get("/v1/messages", params=params)
        assert response.status_code == 200, response.text
        return {m["id"] for m in response.json()["data"]}

    everything = await ids()
    assert len(everything) == 6
    assert await ids(to="+14155552675") == {a["id"], c["id"]}
    assert await ids(to="+1 415 555 2675") == {a["id"], c["id"]}  # normalised like a send
    # The pool spreads unpinned sends over both numbers, so compare against what was chosen.
    listed = (await gateway.client.get("/v1/messages")).json()["data"]
    sent_from_103 = {m["id"] for m in listed if m["from"] == "+14155550103"}
    assert b["id"] in sent_from_103
    assert await ids(**{"from": "+14155550103"}) == sent_from_103
    sent_from_100 = {m["id"] for m in listed if m["from"] == "+14155550100"}
    assert await ids(**{"from": "+14155550100"}) == sent_from_100
    assert await ids(batch_id=batch["id"]) == set(batch["message_ids"])
    assert await ids(status="canceled") == {c["id"]}
    assert await ids(status="received") == {inbound.json()["id"]}
    assert await ids(status="queued") == {a["id"], b["id"], *batch["message_ids"]}
    assert await ids(conversation_id="conv_01ARZ3NDEKTSV4RRFFQ69G5FAV") == set()

    rows = await message_rows(gateway)
    created = sorted(row["created_at"] for row in rows)
    middle = created[2]
    after = await ids(created_after=middle.isoformat())
    before = await ids(created_before=middle.isoformat())
    assert after == {row["id"] for row in rows if row["created_at"] >= middle}
    assert before == {row["id"] for row in rows if row["created_at"] < middle}
    assert after | before == everything
    assert not after & before
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert await ids(created_after=future) == set()
    assert await ids(created_before=future) == everything

    assert await ids(created_after=str(int(middle.timestamp()) - 3600)) == everything  # unix
    naive = await gateway.client.get("/v1/messages", params={"created_after": "2024-01-01T00:00"})
    assert "created_after" in problem_fields(assert_problem(naive, 422, "validation_failed"))
    bad_to = await gateway.client.get("/v1/messages", params={"to": "+1415"})
    assert problem_fields(assert_problem(bad_to, 422, "validation_failed")) == {
        "to": "too short for US"
    }
    bad = await gateway.client.get("/v1/messages", params={"status": "lost"})
    assert "status" in problem_fields(assert_problem(bad, 422, "validation_failed"))


async def test_cursor_pagination_walks_every_message_once_newest_first(gateway: Gateway) -> None:
    sent = []
    for i in range(7):
        response = await gateway.client.post(
            "/v1/messages", json={"to": "+14155552680", "body": f"n{i}"}
        )
        sent.append(response.json()["id"])
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await gateway.client.get("/v1/messages", params=params)).json()
        pages.append([m["id"] for m in page["data"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert cursor == pages[-1][-1]
    assert [len(p) for p in pages] == [3, 3, 1]
    walked = [i for page in pages for i in page]
    assert walked == list(reversed(sent))
    assert await count(
        gateway, tables.messages, tables.messages.c.project_id == gateway.project_id
    ) == len(walked)

    too_big = await gateway.client.get("/v1/messages", params={"limit": 100_000})
    assert_problem(too_big, 422, "validation_failed")


async def test_list_is_scoped_to_the_calling_project(gateway: Gateway) -> None:
    mine = await gateway.client.post("/v1/messages", json={"to": "+14155552681", "body": "m"})
    _, other = await gateway.new_project()
    async with other:
        theirs = await other.post("/v1/messages", json={"to": "+14155552681", "body": "t"})
        their_list = (await other.get("/v1/messages")).json()["data"]
    my_list = (await gateway.client.get("/v1/messages")).json()["data"]
    assert [m["id"] for m in my_list] == [mine.json()["id"]]
    assert [m["id"] for m in their_list] == [theirs.json()["id"]]


async def test_variables_fill_a_single_message(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/messages",
        json={
            "to": "+14155552682",
            "body": "Hi {{ name }}, {{n}} new",
            "variables": {"name": "Ann", "n": 3},
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["body"] == "Hi Ann, 3 new"
    (row,) = await message_rows(gateway)
    assert row["body"] == "Hi Ann, 3 new"


async def test_media_urls_that_can_never_be_fetched_are_refused_at_once(gateway: Gateway) -> None:
    inside = ["https://cdn.example.com/a.png", "https://169.254.169.254/latest/meta-data"]
    single = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552671", "media_urls": inside, "channel": "mms"}
    )
    body = assert_problem(single, 422, "validation_failed")
    assert set(problem_fields(body)) == {"media_urls[1]"}
    batch = await gateway.client.post(
        "/v1/batches",
        json={
            "body": "hi",
            "recipients": [
                {"to": "+14155552671"},
                {"to": "+14155552672", "media_urls": ["https://[::ffff:127.0.0.1]/x.png"]},
                {"to": "+1415"},
            ],
        },
    )
    body = assert_problem(batch, 422, "validation_failed")
    # Every bad recipient is listed, the unsafe URL beside the others.
    assert set(problem_fields(body)) == {"recipients[1].media_urls[0]", "recipients[2].to"}
    assert await message_rows(gateway) == []
