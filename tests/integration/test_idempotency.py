"""``Idempotency-Key``: replay, mismatch, in flight, per project, no key on failure."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update

from agentsms.core import idempotency
from agentsms.store import tables
from agentsms.store.repositories import idempotency as idempotency_repo
from agentsms.store.types import utcnow
from tests.conftest import Gateway
from tests.integration.helpers import (
    assert_problem,
    count,
    idempotency_row,
    message_rows,
    settle,
)

MESSAGE = {"to": "+14155552701", "body": "once only", "metadata": {"a": 1}}


async def _project_counts(gateway: Gateway, project_id: str | None = None) -> tuple[int, int]:
    """Messages and send jobs of a project."""
    rows = await message_rows(gateway, project_id)
    ids = [row["id"] for row in rows]
    jobs = await count(gateway, tables.jobs, tables.jobs.c.ref.in_(ids)) if ids else 0
    return len(rows), jobs


async def test_same_key_and_body_replays_exactly_and_sends_nothing(gateway: Gateway) -> None:
    headers = {"Idempotency-Key": "order-1"}
    first = await gateway.client.post("/v1/messages", json=MESSAGE, headers=headers)
    assert first.status_code == 202
    assert "idempotent-replayed" not in first.headers
    stored = await idempotency_row(gateway, "order-1")
    assert stored is not None
    assert stored["state"] == "done"
    assert stored["response_status"] == 202
    assert stored["response_body"] == first.text

    await settle(gateway, [first.json()["id"]])
    # Same body with its keys in another order and other whitespace: still the same request.
    replay = await gateway.client.post(
        "/v1/messages",
        content='{"metadata": {"a": 1}, "body": "once only",   "to": "+14155552701"}',
        headers={**headers, "Content-Type": "application/json"},
    )

    assert replay.status_code == 202
    assert replay.content == first.content  # the first response, not today's status
    assert replay.json()["status"] == "queued"
    assert replay.headers["idempotent-replayed"] == "true"
    assert await _project_counts(gateway) == (1, 0)
    sim = await gateway.client.get("/v1/simulator/log", params={"to": "+14155552701"})
    mine = [s for s in sim.json()["data"] if s["reference"] == first.json()["id"]]
    assert len(mine) == 1


async def test_batches_replay_too(gateway: Gateway) -> None:
    payload = {"recipients": ["+14155552702", "+14155552703"], "body": "batch once"}
    headers = {"Idempotency-Key": "batch-1"}
    first = await gateway.client.post("/v1/batches", json=payload, headers=headers)
    second = await gateway.client.post("/v1/batches", json=payload, headers=headers)
    assert (first.status_code, second.status_code) == (202, 202)
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert await _project_counts(gateway) == (2, 2)
    assert (
        await count(gateway, tables.batches, tables.batches.c.project_id == gateway.project_id) == 1
    )


async def test_same_key_different_body_is_422(gateway: Gateway) -> None:
    headers = {"Idempotency-Key": "order-2"}
    first = await gateway.client.post("/v1/messages", json=MESSAGE, headers=headers)
    assert first.status_code == 202
    changed = await gateway.client.post(
        "/v1/messages", json={**MESSAGE, "body": "changed"}, headers=headers
    )
    body = assert_problem(changed, 422, "idempotency_key_reused")
    assert "different request" in body["detail"]
    other_path = await gateway.client.post(
        "/v1/batches", json={"recipients": ["+14155552701"], "body": "x"}, headers=headers
    )
    assert_problem(other_path, 422, "idempotency_key_reused")
    assert await _project_counts(gateway) == (1, 1)
    stored = await idempotency_row(gateway, "order-2")
    assert stored is not None
    assert stored["response_body"] == first.text


async def test_duplicate_while_the_first_is_in_flight_is_409(gateway: Gateway) -> None:
    headers = {"Idempotency-Key": "order-3"}
    # The first request holds the key and is still working.
    async with idempotency.claim(gateway.project_id, "order-3"):
        duplicate = await gateway.client.post("/v1/messages", json=MESSAGE, headers=headers)

    body = assert_problem(duplicate, 409, "idempotency_key_in_flight")
    assert "in progress" in body["detail"]
    assert await _project_counts(gateway) == (0, 0)
    assert await idempotency_row(gateway, "order-3") is None

    # Once the first request is over, a retry goes through.
    retry = await gateway.client.post("/v1/messages", json=MESSAGE, headers=headers)
    assert retry.status_code == 202
    assert await _project_counts(gateway) == (1, 1)


async def test_duplicate_in_flight_in_another_process_is_409(gateway: Gateway) -> None:
    if gateway.db.is_sqlite:
        pytest.skip("SQLite serializes write transactions: a duplicate waits, then replays")
    headers = {"Idempotency-Key": "order-5"}
    # Another API process is inside its write transaction for this key.
    async with gateway.db.write() as conn:
        assert await idempotency_repo.lock_key(conn, gateway.project_id, "order-5")
        duplicate = await gateway.client.post("/v1/messages", json=MESSAGE, headers=headers)
    assert_problem(duplicate, 409, "idempotency_key_in_flight")
    assert await _project_counts(gateway) == (0, 0)
    retry = await gateway.client.post("/v1/messages", json=MESSAGE, headers=headers)
    assert retry.status_code == 202
    assert await _project_counts(gateway) == (1, 1)


async def test_concurrent_duplicates_send_once(gateway: Gateway) -> None:
    headers = {"Idempotency-Key": "order-4"}
    responses = await asyncio.gather(
        *(gateway.client.post("/v1/messages", json=MESSAGE, headers=headers) for _ in range(4))
    )
    codes = sorted(r.status_code for r in responses)
    assert set(codes) <= {202, 409}, [r.text for r in responses]
    accepted = [r for r in responses if r.status_code == 202]
    assert accepted
    assert {r.content for r in accepted} == {accepted[0].content}
    for conflict in (r for r in responses if r.status_code == 409):
        assert_problem(conflict, 409, "idempotency_key_in_flight")
    assert await _project_counts(gateway) == (1, 1)


async def test_keys_are_scoped_per_project(gateway: Gateway) -> None:
    headers = {"Idempotency-Key": "shared-key"}
    mine = await gateway.client.post("/v1/messages", json=MESSAGE, headers=headers)
    other_id, other = await gateway.new_project()
    async with other:
        theirs = await other.post("/v1/messages", json=MESSAGE, headers=headers)
    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers
    assert await _project_counts(gateway) == (1, 1)
    assert await _project_counts(gateway, other_id) == (1, 1)
    assert await idempotency_row(gateway, "shared-key", other_id) is not None


async def test_failed_validation_stores_no_key(gateway: Gateway) -> None:
    headers = {"Idempotency-Key": "fix-and-retry"}
    bad = await gateway.client.post(
        "/v1/messages", json={**MESSAGE, "to": "+1415555"}, headers=headers
    )
    assert_problem(bad, 422, "validation_failed")
    assert await idempotency_row(gateway, "fix-and-retry") is None
    unknown_field = await gateway.client.post(
        "/v1/messages", json={**MESSAGE, "colour": "red"}, headers=headers
    )
    assert_problem(unknown_field, 422, "validation_failed")
    assert await idempotency_row(gateway, "fix-and-retry") is None
    assert await _project_counts(gateway) == (0, 0)

    fixed = await gateway.client.post("/v1/messages", json=MESSAGE, headers=headers)
    assert fixed.status_code == 202
    assert await _project_counts(gateway) == (1, 1)
    stored = await idempotency_row(gateway, "fix-and-retry")
    assert stored is not None
    assert stored["state"] == "done"


async def test_failed_batch_stores_no_key(gateway: Gateway) -> None:
    headers = {"Idempotency-Key": "batch-fix"}
    bad = await gateway.client.post(
        "/v1/batches", json={"recipients": ["+14155552704", "nope"], "body": "b"}, headers=headers
    )
    assert_problem(bad, 422, "validation_failed")
    assert await idempotency_row(gateway, "batch-fix") is None
    fixed = await gateway.client.post(
        "/v1/batches", json={"recipients": ["+14155552704"], "body": "b"}, headers=headers
    )
    assert fixed.status_code == 202
    assert await _project_counts(gateway) == (1, 1)


async def test_a_key_older_than_24_hours_is_forgotten(gateway: Gateway) -> None:
    headers = {"Idempotency-Key": "yesterday"}
    first = await gateway.client.post("/v1/messages", json=MESSAGE, headers=headers)
    assert first.status_code == 202
    keys = tables.idempotency_keys
    async with gateway.db.write() as conn:
        await conn.execute(
            update(keys)
            .where(keys.c.project_id == gateway.project_id, keys.c.key == "yesterday")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    again = await gateway.client.post("/v1/messages", json=MESSAGE, headers=headers)
    assert again.status_code == 202
    assert again.json()["id"] != first.json()["id"]
    assert await _project_counts(gateway) == (2, 2)


async def test_key_length_is_checked(gateway: Gateway) -> None:
    too_long = await gateway.client.post(
        "/v1/messages", json=MESSAGE, headers={"Idempotency-Key": "k" * 256}
    )
    assert_problem(too_long, 422, "invalid_idempotency_key")
    assert await _project_counts(gateway) == (0, 0)


async def test_expired_keys_are_purged_and_live_ones_kept(gateway: Gateway) -> None:
    for key in ("purge-old", "purge-new"):
        headers = {"Idempotency-Key": key}
        response = await gateway.client.post("/v1/messages", json=MESSAGE, headers=headers)
        assert response.status_code == 202
    async with gateway.db.write() as conn:
        await conn.execute(
            update(tables.idempotency_keys)
            .where(tables.idempotency_keys.c.key == "purge-old")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    async with gateway.db.write() as conn:
        purged = await idempotency.purge_expired(conn, 500)
    assert purged >= 1
    assert await idempotency_row(gateway, "purge-old") is None
    assert await idempotency_row(gateway, "purge-new") is not None


async def test_concurrent_sends_share_transactions_and_are_answered_as_if_alone(
    gateway: Gateway,
) -> None:
    """A burst of single sends is accepted in shared transactions (group commit), yet each
    request gets exactly the answer it would get alone: accepted, refused for its own
    reason, replayed, or refused for reusing a key; refused ones store nothing."""
    client = gateway.client
    earlier = await client.post("/v1/messages", json=MESSAGE, headers={"Idempotency-Key": "k-old"})
    assert earlier.status_code == 202
    opted_out = "+14155553599"
    stop = await client.post(
        "/v1/simulator/inbound", json={"from": opted_out, "to": "+14155550100", "body": "STOP"}
    )
    assert stop.status_code == 202
    before = await message_rows(gateway)
    sends = gateway.app.state.agentsms.sends
    groups_before = sends.groups

    good = [({"to": f"+1415555{2800 + i}", "body": f"hello {i}"}, f"k-good-{i}") for i in range(20)]
    requests = [
        *good,
        ({"to": "+1415555", "body": "too short a number"}, "k-bad-number"),
        ({"to": "+14155552890", "body": ""}, "k-empty"),
        ({"to": opted_out, "body": "are you there?"}, "k-opted-out"),
        (MESSAGE, "k-old"),
    ]
    responses = await asyncio.gather(
        *(
            client.post("/v1/messages", json=body, headers={"Idempotency-Key": key})
            for body, key in requests
        )
    )
    # Reusing the earlier key with another body (not in the same burst: a key in flight
    # is a 409 by design).
    reused = await client.post(
        "/v1/messages", json={**MESSAGE, "body": "changed"}, headers={"Idempotency-Key": "k-old"}
    )

    accepted = responses[: len(good)]
    assert [r.status_code for r in accepted] == [202] * len(good)
    assert [r.json()["to"] for r in accepted] == [body["to"] for body, _ in good]
    assert len({r.json()["id"] for r in accepted}) == len(good)
    bad_number = assert_problem(responses[20], 422, "validation_failed")
    assert [e["field"] for e in bad_number["errors"]] == ["to"]
    empty = assert_problem(responses[21], 422, "validation_failed")
    assert [e["field"] for e in empty["errors"]] == ["body"]
    assert_problem(responses[22], 422, "recipient_opted_out")
    assert responses[23].status_code == 202
    assert responses[23].headers["idempotent-replayed"] == "true"
    assert responses[23].content == earlier.content
    assert_problem(reused, 422, "idempotency_key_reused")

    after = await message_rows(gateway)
    new = {row["id"] for row in after} - {row["id"] for row in before}
    assert new == {r.json()["id"] for r in accepted}
    for _, key in good:
        assert await idempotency_row(gateway, key) is not None
    for key in ("k-bad-number", "k-empty", "k-opted-out"):
        assert await idempotency_row(gateway, key) is None
    # Fewer transactions than requests: they were shared.
    assert sends.groups - groups_before < len(requests)


async def test_a_template_send_sharing_a_group_with_a_refused_one_is_still_accepted(
    gateway: Gateway,
) -> None:
    """When a group is taken one by one (an opt-out among them), a template send is sent
    from its template as it was asked, not refused for carrying both body and template."""
    created = await gateway.client.post(
        "/v1/templates", json={"name": "hello", "body": "Hi {{name}}, see you soon"}
    )
    assert created.status_code == 201, created.text
    opted_out = "+14155553598"
    stop = await gateway.client.post(
        "/v1/simulator/inbound", json={"from": opted_out, "to": "+14155550100", "body": "STOP"}
    )
    assert stop.status_code == 202

    templated, refused = await asyncio.gather(
        gateway.client.post(
            "/v1/messages",
            json={
                "to": "+14155552891",
                "template_id": created.json()["id"],
                "variables": {"name": "Ana"},
            },
        ),
        gateway.client.post("/v1/messages", json={"to": opted_out, "body": "still there?"}),
    )

    assert templated.status_code == 202, templated.text
    assert templated.json()["body"] == "Hi Ana, see you soon"
    assert_problem(refused, 422, "recipient_opted_out")
