"""``/v1/batches``: many recipients, all or nothing, with templates and progress counts."""

from __future__ import annotations

import time

from agentsms.store import tables
from tests.conftest import Gateway
from tests.integration.helpers import assert_problem, count, message_rows, problem_fields, settle


async def _stored(gateway: Gateway) -> tuple[int, int, int]:
    """Messages, batches and send jobs of the gateway's project."""
    messages = await count(
        gateway, tables.messages, tables.messages.c.project_id == gateway.project_id
    )
    batches = await count(
        gateway, tables.batches, tables.batches.c.project_id == gateway.project_id
    )
    ids = [row["id"] for row in await message_rows(gateway)]
    jobs = await count(gateway, tables.jobs, tables.jobs.c.ref.in_(ids)) if ids else 0
    return messages, batches, jobs


async def test_list_of_numbers_sharing_a_body(gateway: Gateway) -> None:
    recipients = ["+14155552601", "+1 415 555 2602", "+14155552603"]
    response = await gateway.client.post(
        "/v1/batches",
        json={"recipients": recipients, "body": "Sale today", "metadata": {"campaign": "c1"}},
    )

    assert response.status_code == 202, response.text
    batch = response.json()
    assert batch["id"].startswith("batch_")
    assert batch["total"] == 3
    assert batch["counts"] == {"queued": 3}
    assert batch["completed"] == 0
    assert batch["metadata"] == {"campaign": "c1"}
    assert len(batch["message_ids"]) == 3
    rows = {row["id"]: row for row in await message_rows(gateway)}
    assert set(rows) == set(batch["message_ids"])
    # Recipient order is kept and numbers are normalised.
    assert [rows[i]["to_number"] for i in batch["message_ids"]] == [
        "+14155552601",
        "+14155552602",
        "+14155552603",
    ]
    assert all(r["body"] == "Sale today" and r["batch_id"] == batch["id"] for r in rows.values())
    assert all(r["metadata"] == {"campaign": "c1"} for r in rows.values())
    assert await _stored(gateway) == (3, 1, 3)

    await settle(gateway, batch["message_ids"])
    progress = (await gateway.client.get(f"/v1/batches/{batch['id']}")).json()
    assert progress["counts"] == {"delivered": 3}
    assert progress["completed"] == 3
    assert progress["total"] == 3
    assert progress["message_ids"] is None
    listed = (await gateway.client.get(f"/v1/batches/{batch['id']}/messages")).json()
    assert {m["id"] for m in listed["data"]} == set(batch["message_ids"])
    assert all(m["status"] == "delivered" and m["batch_id"] == batch["id"] for m in listed["data"])


async def test_recipient_objects_with_their_own_fields_and_variables(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/batches",
        json={
            "body": "Hi {{name}}, your code is {{code}}",
            "variables": {"code": "000", "name": "friend"},
            "metadata": {"campaign": "c2"},
            "recipients": [
                {"to": "+14155552611", "variables": {"name": "Ann", "code": "111"}},
                {
                    "to": "+14155552612",
                    "variables": {"name": "Bob"},
                    "external_id": "crm-2",
                    "metadata": {"row": 2},
                },
                {"to": "+14155552613", "body": "Custom for {{name}}", "variables": {"name": "Cy"}},
                "+14155552614",
            ],
        },
    )
    assert response.status_code == 202, response.text
    ids = response.json()["message_ids"]
    messages = [(await gateway.client.get(f"/v1/messages/{i}")).json() for i in ids]
    assert [m["body"] for m in messages] == [
        "Hi Ann, your code is 111",
        "Hi Bob, your code is 000",
        "Custom for Cy",
        "Hi friend, your code is 000",
    ]
    assert messages[1]["external_id"] == "crm-2"
    assert messages[1]["metadata"] == {"campaign": "c2", "row": 2}
    assert messages[0]["metadata"] == {"campaign": "c2"}
    rows = {row["id"]: row for row in await message_rows(gateway)}
    assert [rows[i]["body"] for i in ids] == [m["body"] for m in messages]


async def test_missing_variable_names_the_index_and_the_variable(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/batches",
        json={
            "body": "Hi {{name}}",
            "recipients": [
                {"to": "+14155552621", "variables": {"name": "Ann"}},
                {"to": "+14155552622"},
                {"to": "+14155552623", "variables": {"nom": "Cy"}},
            ],
        },
    )

    body = assert_problem(response, 422, "validation_failed")
    assert problem_fields(body) == {
        "recipients[1].body": "missing variable 'name'",
        "recipients[2].body": "missing variable 'name'",
    }
    assert "1, 2" in body["detail"]
    assert await _stored(gateway) == (0, 0, 0)

    single = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552621", "body": "Hi {{ name }}"}
    )
    assert problem_fields(assert_problem(single, 422, "validation_failed")) == {
        "body": "missing variable 'name'"
    }
    assert await _stored(gateway) == (0, 0, 0)


async def test_one_bad_recipient_rejects_all_and_lists_every_bad_index(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/batches",
        json={
            "body": "hello",
            "recipients": [
                "+14155552631",
                "+1415555",
                {"to": "+14155552633"},
                {"to": "+14155552634", "body": "x" * 1601},
                "0044 20 7183 8750",
                {"to": "+14155552636", "media_urls": ["ftp://nope/x.png"]},
            ],
        },
    )

    body = assert_problem(response, 422, "validation_failed")
    fields = problem_fields(body)
    assert fields == {
        "recipients[1].to": "too short for US",
        "recipients[3].body": "is 1601 characters; the limit is 1600",
        "recipients[4].to": "must start with + and country code",
        "recipients[5].media_urls[0]": "must be an http or https URL",
    }
    assert body["detail"].startswith("4 of 6 recipients are invalid: indexes 1, 3, 4, 5")
    assert await _stored(gateway) == (0, 0, 0)


async def test_shape_errors_are_reported_per_index(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/batches",
        json={"body": "x", "recipients": ["+14155552641", 5, {"to": "+14155552643", "bogus": 1}]},
    )
    fields = problem_fields(assert_problem(response, 422, "validation_failed"))
    assert fields == {
        "recipients[1]": "must be a phone number or an object with 'to'",
        "recipients[2].bogus": "unknown field",
    }
    assert await _stored(gateway) == (0, 0, 0)

    empty = await gateway.client.post("/v1/batches", json={"body": "x", "recipients": []})
    assert "recipients" in problem_fields(assert_problem(empty, 422, "validation_failed"))


async def test_more_than_10000_recipients_are_rejected(gateway: Gateway) -> None:
    recipients = [f"+1415555{i % 10000:04d}" for i in range(10_001)]
    response = await gateway.client.post(
        "/v1/batches", json={"body": "too many", "recipients": recipients}
    )
    body = assert_problem(response, 422, "validation_failed")
    assert problem_fields(body) == {"recipients": "at most 10000 per request, got 10001"}
    assert await _stored(gateway) == (0, 0, 0)


async def test_10000_recipients_are_accepted_in_one_request(gateway: Gateway) -> None:
    recipients = [f"+1415555{i:04d}" for i in range(10_000)]
    started = time.perf_counter()
    response = await gateway.client.post(
        "/v1/batches",
        # Far in the future, so no later test's drain has to send them.
        json={"body": "ten thousand", "recipients": recipients, "send_at": "2099-01-01T00:00:00Z"},
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 202, response.text
    batch = response.json()
    assert batch["total"] == 10_000
    assert batch["counts"] == {"scheduled": 10_000}
    assert len(set(batch["message_ids"])) == 10_000
    assert await _stored(gateway) == (10_000, 1, 10_000)
    assert elapsed < 20, f"10,000-recipient intake took {elapsed:.1f}s"
    progress = (await gateway.client.get(f"/v1/batches/{batch['id']}")).json()
    assert progress["counts"] == {"scheduled": 10_000}
    page = (
        await gateway.client.get(f"/v1/batches/{batch['id']}/messages", params={"limit": 1000})
    ).json()
    assert len(page["data"]) == 1000
    assert page["next_cursor"] == page["data"][-1]["id"]


async def test_counts_per_status_follow_progress(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/batches",
        json={
            "recipients": [
                "+14155552651",
                "+14155552652",
                "+14155552653",
                {"to": "+442071838750", "media_urls": ["https://example.com/a.png"]},
            ],
            "body": "progress",
        },
    )
    assert response.status_code == 202, response.text
    batch = response.json()
    ids = batch["message_ids"]
    assert batch["counts"] == {"queued": 4}
    canceled = await gateway.client.post(f"/v1/messages/{ids[2]}/cancel")
    assert canceled.status_code == 200
    progress = (await gateway.client.get(f"/v1/batches/{batch['id']}")).json()
    assert progress["counts"] == {"queued": 3, "canceled": 1}
    assert progress["completed"] == 1

    await settle(gateway, ids)
    progress = (await gateway.client.get(f"/v1/batches/{batch['id']}")).json()
    # MMS to a landline is refused by the carrier simulator: a permanent failure.
    assert progress["counts"] == {"delivered": 2, "canceled": 1, "failed": 1}
    assert progress["completed"] == 4
    rows = {row["id"]: row["status"] for row in await message_rows(gateway)}
    assert [rows[i] for i in ids] == ["delivered", "delivered", "canceled", "failed"]

    only_delivered = (
        await gateway.client.get(
            f"/v1/batches/{batch['id']}/messages", params={"status": "delivered"}
        )
    ).json()
    assert {m["id"] for m in only_delivered["data"]} == {ids[0], ids[1]}


async def test_batch_messages_paginate(gateway: Gateway) -> None:
    recipients = [f"+141555526{i:02d}" for i in range(60, 67)]
    batch = (
        await gateway.client.post("/v1/batches", json={"recipients": recipients, "body": "p"})
    ).json()
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = await gateway.client.get(f"/v1/batches/{batch['id']}/messages", params=params)
        assert page.status_code == 200
        seen += [m["id"] for m in page.json()["data"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(batch["message_ids"], reverse=True)
    await settle(gateway, batch["message_ids"])


async def test_unknown_batch_is_404(gateway: Gateway) -> None:
    missing = "batch_01ARZ3NDEKTSV4RRFFQ69G5FAV"
    assert_problem(await gateway.client.get(f"/v1/batches/{missing}"), 404, "not_found")
    assert_problem(await gateway.client.get(f"/v1/batches/{missing}/messages"), 404, "not_found")
