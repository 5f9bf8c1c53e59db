"""The suppression list: ``/v1/opt-outs`` (list, add, remove, CSV import and export), and
sends to anyone on it refused, however they got there."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from agentsms.store import tables
from tests.conftest import Gateway
from tests.integration.conversation_helpers import forget_deliveries, text_in
from tests.integration.helpers import assert_problem, problem_fields

OURS = "+14155550100"


async def _events(gateway: Gateway, event_type: str) -> list[dict[str, Any]]:
    query = select(tables.webhook_events.c.payload).where(
        tables.webhook_events.c.project_id == gateway.project_id,
        tables.webhook_events.c.type == event_type,
    )
    async with gateway.db.read() as conn:
        return [dict(r[0])["data"] for r in (await conn.execute(query)).all()]


async def _refused(gateway: Gateway, person: str) -> None:
    refused = await gateway.client.post("/v1/messages", json={"to": person, "body": "Sale!"})
    assert "to" in problem_fields(assert_problem(refused, 422, "recipient_opted_out"))


async def test_add_list_filter_and_remove(gateway: Gateway) -> None:
    subscribed = await gateway.client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://hooks.example.com/c", "event_types": ["recipient.*"]},
    )
    assert subscribed.status_code == 201, subscribed.text
    started = await gateway.client.post("/v1/messages", json={"to": "+14155556201", "body": "Hi"})
    added = await gateway.client.post(
        "/v1/opt-outs", json={"phone_number": "+1 (415) 555-6201", "keyword": "told us by phone"}
    )
    assert added.status_code == 201, added.text
    entry = added.json()
    assert entry["phone_number"] == "+14155556201"
    assert (entry["object"], entry["scope"], entry["source"]) == ("opt_out", "project", "api")
    assert (entry["keyword"], entry["number"]) == ("told us by phone", None)
    again = await gateway.client.post("/v1/opt-outs", json={"phone_number": "+14155556201"})
    assert again.status_code == 200
    assert again.json() == entry
    conversation = await gateway.client.get(
        f"/v1/conversations/{started.json()['conversation_id']}"
    )
    assert conversation.json()["status"] == "opted_out"
    await _refused(gateway, "+14155556201")

    await text_in(gateway, "+14155556202", "STOP")
    listed = (await gateway.client.get("/v1/opt-outs")).json()
    assert [(e["phone_number"], e["source"]) for e in listed["data"]] == [
        ("+14155556202", "keyword"),
        ("+14155556201", "api"),
    ]
    assert listed["data"][0]["keyword"] == "STOP"
    assert listed["data"][0]["number"] == OURS
    only = await gateway.client.get("/v1/opt-outs", params={"source": "keyword"})
    assert [e["phone_number"] for e in only.json()["data"]] == ["+14155556202"]
    one = await gateway.client.get("/v1/opt-outs", params={"phone_number": "+1 415 555 6201"})
    assert [e["phone_number"] for e in one.json()["data"]] == ["+14155556201"]

    removed = await gateway.client.delete("/v1/opt-outs/+14155556201")
    assert removed.status_code == 200, removed.text
    assert removed.json() == entry
    gone = await gateway.client.get("/v1/opt-outs/+14155556201")
    assert_problem(gone, 404, "not_found")
    assert_problem(await gateway.client.delete("/v1/opt-outs/+14155556201"), 404, "not_found")
    allowed = await gateway.client.post("/v1/messages", json={"to": "+14155556201", "body": "Hi"})
    assert allowed.status_code == 202, allowed.text
    (opted_in,) = await _events(gateway, "recipient.opted_in")
    assert (opted_in["recipient"], opted_in["source"]) == ("+14155556201", "api")
    sources = {e["source"] for e in await _events(gateway, "recipient.opted_out")}
    assert sources == {"api", "keyword"}
    await forget_deliveries(gateway)


async def test_bad_numbers_cursor_and_filters_are_422(gateway: Gateway) -> None:
    bad = await gateway.client.post("/v1/opt-outs", json={"phone_number": "12"})
    assert "phone_number" in problem_fields(assert_problem(bad, 422, "validation_failed"))
    for params in ({"cursor": "garbage!"}, {"source": "fax"}, {"phone_number": "abc"}):
        response = await gateway.client.get("/v1/opt-outs", params=params)
        assert set(params) <= set(
            problem_fields(assert_problem(response, 422, "validation_failed"))
        )


async def test_cursor_pages_through_the_list_newest_first(gateway: Gateway) -> None:
    numbers = [f"+1415555630{i}" for i in range(5)]
    csv_text = "phone_number,created_at\n" + "".join(
        f"{n},2026-01-0{1 + i % 2}T10:00:00Z\n" for i, n in enumerate(numbers)
    )
    assert (await gateway.client.post("/v1/opt-outs/import", content=csv_text)).status_code == 200
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await gateway.client.get("/v1/opt-outs", params=params)).json()
        seen += [e["phone_number"] for e in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Newest first; entries of the same moment by number, descending.
    assert seen == [numbers[3], numbers[1], numbers[4], numbers[2], numbers[0]]


async def test_csv_import_is_all_or_nothing_and_export_reads_back(gateway: Gateway) -> None:
    bad = "phone_number,keyword\n+14155556401,STOP\nnot a number,\n\n+14155556402,\n12345,x\n"
    refused = await gateway.client.post(
        "/v1/opt-outs/import", content=bad, headers={"Content-Type": "text/csv"}
    )
    fields = problem_fields(assert_problem(refused, 422, "validation_failed"))
    assert set(fields) == {"rows[3].phone_number", "rows[6].phone_number"}
    assert "not a number" in fields["rows[3].phone_number"]
    assert (await gateway.client.get("/v1/opt-outs")).json()["data"] == []

    await gateway.client.post("/v1/opt-outs", json={"phone_number": "+14155556402"})
    good = "Phone_Number,Keyword\n+14155556401,unsubscribe me\n+1 415-555-6402,\n+14155556401,\n"
    imported = await gateway.client.post("/v1/opt-outs/import", content=good)
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"object": "opt_out_import", "added": 1, "already": 1}
    bare = await gateway.client.post("/v1/opt-outs/import", content="+14155556403\n+1 4155556404\n")
    assert bare.json()["added"] == 2
    for person in ("+14155556401", "+14155556403", "+14155556404"):
        await _refused(gateway, person)
    entry = (await gateway.client.get("/v1/opt-outs/+14155556401")).json()
    assert (entry["source"], entry["keyword"]) == ("import", "unsubscribe me")

    exported = await gateway.client.get("/v1/opt-outs/export")
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.splitlines()
    assert lines[0] == "phone_number,scope,source,keyword,number,created_at"
    assert sorted(line.split(",")[0] for line in lines[1:]) == [
        "+14155556401",
        "+14155556402",
        "+14155556403",
        "+14155556404",
    ]
    # The export imports as it is into another project, dates kept.
    _, other = await gateway.new_project()
    async with other:
        again = await other.post("/v1/opt-outs/import", content=exported.text)
        assert again.json() == {"object": "opt_out_import", "added": 4, "already": 0}
        copied = (await other.get("/v1/opt-outs/+14155556401")).json()
    assert copied["created_at"] == entry["created_at"]
    assert copied["keyword"] == "unsubscribe me"

    empty = await gateway.client.post("/v1/opt-outs/import", content="name,email\nAna,a@b.c\n")
    assert "file" in problem_fields(assert_problem(empty, 422, "validation_failed"))
