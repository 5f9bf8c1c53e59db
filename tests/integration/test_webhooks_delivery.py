"""Webhook endpoints and signed deliveries, end to end against a real local receiver.

The receiver is an HTTP server on 127.0.0.1 (so these tests run the app with
``AGENTSMS_ALLOW_INSECURE_URLS`` on); it verifies every request with the reference
``standardwebhooks`` package.
"""

from __future__ import annotations

import asyncio
import email.utils
import http.server
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from agentsms.app import create_app
from agentsms.jobs.worker import Worker
from agentsms.store.tables import jobs, webhook_events
from agentsms.webhooks import delivery, emit
from agentsms.webhooks.delivery import DeliveryHandler, purge_old
from agentsms.webhooks.events import DELIVER_JOB
from tests import conftest
from tests.conftest import Gateway, open_gateway


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers each path from a script of (status, headers, delay); 200 when unscripted."""

    port: int
    requests: list[Received] = field(default_factory=list)
    script: dict[str, list[tuple[int, dict[str, str], float]]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str, *answers: int | tuple[int, dict[str, str], float]) -> None:
        self.script[path] = [a if isinstance(a, tuple) else (a, {}, 0.0) for a in answers]

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            found.requests.append(Received(self.path, dict(self.headers.items()), body))
            answers = found.script.get(self.path) or []
            status, headers, delay = answers.pop(0) if answers else (200, {}, 0.0)
            if delay:
                time.sleep(delay)
            reply = b"x" * 3_000_000 if self.path == "/huge" else b"ok"
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout test)

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    found.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield found
    server.shutdown()


@pytest.fixture(scope="module")
async def insecure_app(backend_url: str) -> AsyncIterator[FastAPI]:
    app = create_app(
        conftest.test_settings(
            backend_url,
            allow_insecure_urls=True,
            webhook_retry_schedule=[0.0],
            webhook_timeout_seconds=5.0,  # a loaded CI machine may take seconds to connect
        )
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def gw(insecure_app: FastAPI) -> AsyncIterator[Gateway]:
    async with open_gateway(insecure_app, "webhooks") as opened:
        yield opened


def use_handler(gateway: Gateway, **overrides: Any) -> DeliveryHandler:
    """Run deliveries with these settings (e.g. a retry schedule) for this test."""
    settings = gateway.settings.model_copy(update=overrides)
    handler = DeliveryHandler(gateway.db, settings)
    gateway.worker.handlers[DELIVER_JOB] = handler.handle
    return handler


async def create(gateway: Gateway, url: str, **fields: Any) -> dict[str, Any]:
    response = await gateway.client.post("/v1/webhook-endpoints", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def send_event(
    gateway: Gateway, event_type: str = "message.sent", webhook_url: str | None = None, **data: Any
) -> None:
    async with gateway.db.write() as conn:
        await emit(
            conn,
            project_id=gateway.project_id,
            event_type=event_type,
            data=data or {"n": 1},
            webhook_url=webhook_url,
        )


async def deliveries(gateway: Gateway, endpoint_id: str, **params: Any) -> list[dict[str, Any]]:
    response = await gateway.client.get(
        f"/v1/webhook-endpoints/{endpoint_id}/deliveries", params=params
    )
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def queued_for(gateway: Gateway, endpoint_id: str) -> int:
    """Delivery jobs still in the queue for one endpoint (other tests' jobs ignored)."""
    async with gateway.db.read() as conn:
        rows = (await conn.execute(select(jobs.c.payload).where(jobs.c.kind == DELIVER_JOB))).all()
    payloads = [json.loads(p) if isinstance(p, str) else p for (p,) in rows]
    return sum(1 for p in payloads if p["endpoint_id"] == endpoint_id)


def verified(secret: str, request: Received) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return payload


# --- endpoints CRUD ---------------------------------------------------------------------


async def test_create_shows_the_secret_once_and_crud_works(gw: Gateway, receiver: Receiver) -> None:
    created = await create(
        gw,
        receiver.url("/crud"),
        event_types=["message.delivered", "conversation.*", "message.delivered"],
        description="orders system",
    )
    assert created["secret"].startswith("whsec_")
    assert created["id"].startswith("whe_")
    assert created["event_types"] == ["message.delivered", "conversation.*"]
    assert created["enabled"] is True
    assert created["kind"] == "endpoint"

    got = (await gw.client.get(f"/v1/webhook-endpoints/{created['id']}")).json()
    assert got["secret"] is None
    assert got["description"] == "orders system"

    everything = await create(gw, receiver.url("/crud2"), event_types=["*"])
    assert everything["event_types"] == ["*"]
    third = await create(gw, receiver.url("/crud3"))
    page = (await gw.client.get("/v1/webhook-endpoints", params={"limit": 2})).json()
    assert [e["id"] for e in page["data"]] == [third["id"], everything["id"]]
    assert all(e["secret"] is None for e in page["data"])
    rest = (
        await gw.client.get(
            "/v1/webhook-endpoints", params={"limit": 2, "cursor": page["next_cursor"]}
        )
    ).json()
    assert [e["id"] for e in rest["data"]] == [created["id"]]
    assert rest["next_cursor"] is None

    patched = await gw.client.patch(
        f"/v1/webhook-endpoints/{third['id']}", json={"event_types": ["message.failed"]}
    )
    assert patched.json()["event_types"] == ["message.failed"]

    assert (await gw.client.delete(f"/v1/webhook-endpoints/{created['id']}")).status_code == 204
    assert (await gw.client.get(f"/v1/webhook-endpoints/{created['id']}")).status_code == 404
    assert (await gw.client.delete(f"/v1/webhook-endpoints/{created['id']}")).status_code == 404


async def test_bad_input_is_422_naming_the_field_and_changes_nothing(
    gw: Gateway, receiver: Receiver
) -> None:
    bad_type = await gw.client.post(
        "/v1/webhook-endpoints",
        json={"url": receiver.url("/x"), "event_types": ["message.sent", "message.exploded"]},
    )
    assert bad_type.status_code == 422
    problem = bad_type.json()
    assert problem["errors"][0]["field"] == "event_types[1]"
    assert "message.exploded" in problem["errors"][0]["message"]

    bad_scheme = await gw.client.post("/v1/webhook-endpoints", json={"url": "ftp://example.com/"})
    assert bad_scheme.status_code == 422
    assert bad_scheme.json()["errors"][0]["field"] == "url"

    extra = await gw.client.post("/v1/webhook-endpoints", json={"url": "https://a.example", "x": 1})
    assert extra.status_code == 422

    listed = (await gw.client.get("/v1/webhook-endpoints")).json()
    assert listed["data"] == []


async def test_private_literal_urls_are_refused_when_insecure_mode_is_off(
    gateway: Gateway,
) -> None:
    for url in (
        "https://127.0.0.1/hook",
        "https://2130706433/",
        "https://[::ffff:10.0.0.1]/",
        "http://example.com/hook",
    ):
        response = await gateway.client.post("/v1/webhook-endpoints", json={"url": url})
        assert response.status_code == 422, url
        assert response.json()["errors"][0]["field"] == "url"
    ok = await gateway.client.post("/v1/webhook-endpoints", json={"url": "https://example.com/h"})
    assert ok.status_code == 201


# --- deliveries ---------------------------------------------------------------------------


async def test_delivery_is_signed_and_logged(gw: Gateway, receiver: Receiver) -> None:
    endpoint = await create(gw, receiver.url("/signed"))
    await send_event(gw, "message.delivered", order="A-1")
    await gw.drain()

    [request] = receiver.at("/signed")
    payload = verified(endpoint["secret"], request)
    assert payload["type"] == "message.delivered"
    assert payload["id"].startswith("evt_")
    assert payload["data"] == {"order": "A-1"}
    assert request.headers["webhook-id"] == payload["id"]
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 30

    [log] = await deliveries(gw, endpoint["id"])
    assert log["status"] == "succeeded"
    assert log["status_code"] == 200
    assert log["attempt"] == 1
    assert log["event_id"] == payload["id"]
    assert log["event_type"] == "message.delivered"
    assert log["next_retry_at"] is None
    assert log["duration_ms"] >= 0


async def test_only_subscribed_types_are_delivered(gw: Gateway, receiver: Receiver) -> None:
    await create(gw, receiver.url("/only-failed"), event_types=["message.failed"])
    await create(gw, receiver.url("/conv-group"), event_types=["conversation.*"])
    await send_event(gw, "message.sent")
    await send_event(gw, "message.failed")
    await send_event(gw, "conversation.ended")
    await gw.drain()
    assert [json.loads(r.body)["type"] for r in receiver.at("/only-failed")] == ["message.failed"]
    assert [json.loads(r.body)["type"] for r in receiver.at("/conv-group")] == [
        "conversation.ended"
    ]


async def test_no_endpoint_means_nothing_is_stored_or_queued(gw: Gateway) -> None:
    await send_event(gw, "message.sent")
    sent = await gw.client.post("/v1/messages", json={"to": "+14155552675", "body": "hi"})
    assert sent.status_code == 202
    await gw.drain()
    async with gw.db.read() as conn:
        stored = (
            await conn.execute(
                select(func.count()).where(webhook_events.c.project_id == gw.project_id)
            )
        ).scalar()
    assert stored == 0  # so no delivery job can exist for this project either


async def test_retry_keeps_the_webhook_id_and_signs_afresh(gw: Gateway, receiver: Receiver) -> None:
    use_handler(gw, webhook_retry_schedule=[1.0])
    endpoint = await create(gw, receiver.url("/flaky"))
    receiver.on("/flaky", 500, 200)
    await send_event(gw)
    await gw.drain()
    assert len(receiver.at("/flaky")) == 1
    [first_log] = await deliveries(gw, endpoint["id"])
    assert first_log["status"] == "failed"
    assert first_log["status_code"] == 500
    assert first_log["next_retry_at"] is not None

    await asyncio.sleep(1.3)  # the 1 s schedule with +-20 % jitter is due by now
    await gw.drain()
    first, second = receiver.at("/flaky")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.headers["webhook-timestamp"] != second.headers["webhook-timestamp"]
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    assert first.body == second.body
    assert verified(endpoint["secret"], second)["id"] == first.headers["webhook-id"]
    logs = await deliveries(gw, endpoint["id"])
    assert [(d["attempt"], d["status"]) for d in logs] == [(2, "succeeded"), (1, "failed")]


async def test_attempts_stop_at_the_configured_limit(gw: Gateway, receiver: Receiver) -> None:
    use_handler(gw, webhook_retry_schedule=[0.0], webhook_max_attempts=3)
    endpoint = await create(gw, receiver.url("/down"))
    receiver.on("/down", 503, 503, 503, 503, 503)
    await send_event(gw)
    await gw.drain()
    assert len(receiver.at("/down")) == 3
    logs = await deliveries(gw, endpoint["id"])
    assert [d["attempt"] for d in logs] == [3, 2, 1]
    assert logs[0]["next_retry_at"] is None
    assert all(d["next_retry_at"] is not None for d in logs[1:])
    assert await queued_for(gw, endpoint["id"]) == 0


async def test_410_disables_the_endpoint(gw: Gateway, receiver: Receiver) -> None:
    endpoint = await create(gw, receiver.url("/gone"))
    receiver.on("/gone", 410)
    await send_event(gw)
    await gw.drain()
    got = (await gw.client.get(f"/v1/webhook-endpoints/{endpoint['id']}")).json()
    assert got["enabled"] is False
    assert "410" in got["disabled_reason"]
    [log] = await deliveries(gw, endpoint["id"])
    assert log["status_code"] == 410
    assert log["next_retry_at"] is None

    await send_event(gw)
    await gw.drain()
    assert len(receiver.at("/gone")) == 1  # disabled: nothing more is sent

    enabled = await gw.client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": True}
    )
    assert enabled.json()["enabled"] is True
    await send_event(gw)
    await gw.drain()
    assert len(receiver.at("/gone")) == 2


async def test_redirects_are_not_followed(gw: Gateway, receiver: Receiver) -> None:
    use_handler(gw, webhook_max_attempts=1)
    endpoint = await create(gw, receiver.url("/moved"))
    receiver.on("/moved", (307, {"Location": receiver.url("/target")}, 0.0))
    await send_event(gw)
    await gw.drain()
    assert len(receiver.at("/moved")) == 1
    assert receiver.at("/target") == []
    [log] = await deliveries(gw, endpoint["id"])
    assert log["status"] == "failed"
    assert log["status_code"] == 307
    assert "not followed" in log["error"]


async def test_a_slow_endpoint_times_out(gw: Gateway, receiver: Receiver) -> None:
    use_handler(gw, webhook_timeout_seconds=0.3, webhook_max_attempts=1)
    endpoint = await create(gw, receiver.url("/slow"))
    receiver.on("/slow", (200, {}, 1.5))
    await send_event(gw)
    await gw.drain()
    [log] = await deliveries(gw, endpoint["id"])
    assert log["status"] == "failed"
    assert log["status_code"] is None
    assert "timed out" in log["error"]
    assert log["duration_ms"] < 1400


async def test_rotation_signs_with_both_secrets(gw: Gateway, receiver: Receiver) -> None:
    endpoint = await create(gw, receiver.url("/rotate"))
    rotated = (await gw.client.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")).json()
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != endpoint["secret"]
    assert rotated["previous_secret_expires_at"] is not None
    await send_event(gw)
    await gw.drain()
    [request] = receiver.at("/rotate")
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verified(endpoint["secret"], request) == verified(rotated["secret"], request)


async def test_resend_sends_the_same_event_again(gw: Gateway, receiver: Receiver) -> None:
    endpoint = await create(gw, receiver.url("/resend"))
    await send_event(gw)
    await gw.drain()
    [first] = await deliveries(gw, endpoint["id"])
    answer = await gw.client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries/{first['id']}/resend"
    )
    assert answer.status_code == 202
    assert answer.json()["event_id"] == first["event_id"]
    await gw.drain()
    one, two = receiver.at("/resend")
    assert one.headers["webhook-id"] == two.headers["webhook-id"] == first["event_id"]
    logs = await deliveries(gw, endpoint["id"])
    assert [d["attempt"] for d in logs] == [2, 1]
    missing = await gw.client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries/whd_nope/resend"
    )
    assert missing.status_code == 404


async def test_delivery_log_pages_and_filters(gw: Gateway, receiver: Receiver) -> None:
    endpoint = await create(gw, receiver.url("/many"))
    for n in range(5):
        await send_event(gw, n=n)
    await gw.drain()
    page = (
        await gw.client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", params={"limit": 3}
        )
    ).json()
    assert len(page["data"]) == 3
    rest = await deliveries(gw, endpoint["id"], limit=3, cursor=page["next_cursor"])
    assert len(rest) == 2
    ids = [d["id"] for d in page["data"] + rest]
    assert ids == sorted(ids, reverse=True)
    one_event = await deliveries(gw, endpoint["id"], event_id=rest[0]["event_id"])
    assert [d["id"] for d in one_event] == [rest[0]["id"]]
    assert await deliveries(gw, endpoint["id"], status="failed") == []


async def test_per_send_webhook_url_is_signed_with_the_project_secret(
    gw: Gateway, receiver: Receiver
) -> None:
    await send_event(gw, "conversation.started", webhook_url=receiver.url("/override"))
    await gw.drain()
    [request] = receiver.at("/override")
    secret = (await gw.client.get("/v1/webhook-signing-secret")).json()["secret"]
    assert verified(secret, request)["type"] == "conversation.started"
    overrides = (await gw.client.get("/v1/webhook-endpoints", params={"kind": "override"})).json()
    [override] = overrides["data"]
    assert override["url"] == receiver.url("/override")
    [log] = await deliveries(gw, override["id"])
    assert log["status"] == "succeeded"

    rotated = (await gw.client.post("/v1/webhook-signing-secret/rotate")).json()
    await send_event(gw, "conversation.ended", webhook_url=receiver.url("/override"))
    await gw.drain()
    second = receiver.at("/override")[1]
    assert verified(secret, second) == verified(rotated["secret"], second)


async def test_deleting_an_endpoint_drops_its_queued_deliveries(
    gw: Gateway, receiver: Receiver
) -> None:
    endpoint = await create(gw, receiver.url("/deleted"))
    await send_event(gw)
    assert (await gw.client.delete(f"/v1/webhook-endpoints/{endpoint['id']}")).status_code == 204
    await gw.drain()
    assert receiver.at("/deleted") == []
    assert await queued_for(gw, endpoint["id"]) == 0


async def test_deleting_or_disabling_drops_queued_deliveries_at_once(
    gw: Gateway, receiver: Receiver
) -> None:
    deleted = await create(gw, receiver.url("/dropped-by-delete"))
    disabled = await create(gw, receiver.url("/dropped-by-disable"))
    kept = await create(gw, receiver.url("/kept"))
    for n in range(3):
        await send_event(gw, n=n)
    assert [await queued_for(gw, e["id"]) for e in (deleted, disabled, kept)] == [3, 3, 3]
    assert (await gw.client.delete(f"/v1/webhook-endpoints/{deleted['id']}")).status_code == 204
    patched = await gw.client.patch(
        f"/v1/webhook-endpoints/{disabled['id']}", json={"enabled": False}
    )
    assert patched.status_code == 200
    # Gone from the queue before any worker looks, the other endpoint's untouched.
    assert [await queued_for(gw, e["id"]) for e in (deleted, disabled, kept)] == [0, 0, 3]
    await gw.drain()
    assert receiver.at("/dropped-by-delete") == receiver.at("/dropped-by-disable") == []
    assert len(receiver.at("/kept")) == 3


async def _until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("change", ["delete", "disable", "move"])
async def test_a_change_to_the_endpoint_reaches_deliveries_already_claimed(
    gw: Gateway, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    monkeypatch.setattr(delivery, "CONCURRENCY", 2)
    handler = use_handler(gw)
    endpoint = await create(gw, receiver.url("/busy"))
    receiver.on("/busy", (200, {}, 0.5), (200, {}, 0.5))
    for n in range(10):
        await send_event(gw, n=n)
    # One claim takes all ten; two attempts are in flight, eight wait their turn.
    run = asyncio.create_task(gw.worker.run_once())
    await _until(lambda: len(receiver.at("/busy")) == 2)
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    if change == "delete":
        response = await gw.client.delete(path)
    elif change == "disable":
        response = await gw.client.patch(path, json={"enabled": False})
    else:
        response = await gw.client.patch(path, json={"url": receiver.url("/moved")})
    assert response.status_code in (200, 204), response.text
    # At least our ten: the app's database is shared, so an earlier test's retry may come due
    # and join the claim; the receiver's counts below are this endpoint's own.
    assert await run >= 10
    await handler.idle()
    await gw.drain()
    assert len(receiver.at("/busy")) == 2  # only those already under way
    assert len(receiver.at("/moved")) == (8 if change == "move" else 0)
    assert await queued_for(gw, endpoint["id"]) == 0


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (503, "2", 2.0),
        (429, "http-date in 3 s", 3.0),
        (503, "86400", 3600.0),  # capped at an hour
        (500, "60", 0.0),  # only 429 and 503 ask us to wait
        (429, "soon", 0.0),  # unreadable: the schedule alone
    ],
)
async def test_retry_after_on_429_and_503_is_honoured(
    gw: Gateway, receiver: Receiver, status: int, retry_after: str, expected: float
) -> None:
    use_handler(gw, webhook_retry_schedule=[0.0], webhook_max_attempts=2)
    endpoint = await create(gw, receiver.url("/later"))
    if retry_after.startswith("http-date"):
        retry_after = email.utils.formatdate(time.time() + 3, usegmt=True)
    receiver.on("/later", (status, {"Retry-After": retry_after}, 0.0))
    await send_event(gw)
    ran = await gw.worker.run_once()
    assert ran >= 1
    await gw.worker.run_once()  # a retry due at once (the schedule's 0 s) runs here
    logs = await deliveries(gw, endpoint["id"])
    first = logs[-1]
    assert first["status_code"] == status
    waited = (
        datetime.fromisoformat(first["next_retry_at"]) - datetime.fromisoformat(first["created_at"])
    ).total_seconds()
    assert expected - 1.1 <= waited <= expected + 0.1, waited
    assert len(logs) == (2 if expected == 0 else 1)
    assert (await gw.client.delete(f"/v1/webhook-endpoints/{endpoint['id']}")).status_code == 204


async def test_a_big_answer_body_is_not_a_failure(gw: Gateway, receiver: Receiver) -> None:
    endpoint = await create(gw, receiver.url("/huge"))
    await send_event(gw)
    await gw.drain()
    [log] = await deliveries(gw, endpoint["id"])
    assert log["status"] == "succeeded"
    assert log["response_body"] == "x" * 1000


async def test_old_events_and_logs_are_purged(gw: Gateway, receiver: Receiver) -> None:
    endpoint = await create(gw, receiver.url("/purge"))
    await send_event(gw)
    await gw.drain()
    assert len(await deliveries(gw, endpoint["id"])) == 1
    await purge_old(gw.db, gw.settings)  # 30 days: nothing is that old
    assert len(await deliveries(gw, endpoint["id"])) == 1
    await asyncio.sleep(0.01)
    await purge_old(gw.db, gw.settings.model_copy(update={"webhook_retention_days": 1e-9}))
    assert await deliveries(gw, endpoint["id"]) == []


async def test_a_slow_endpoint_does_not_hold_up_sending(gw: Gateway, receiver: Receiver) -> None:
    handler = use_handler(gw, webhook_timeout_seconds=10)
    endpoint = await create(gw, receiver.url("/sluggish"), event_types=["conversation.ended"])
    receiver.on("/sluggish", (200, {}, 4.0))  # longer than the handler waits inline (2 s)
    await send_event(gw, "conversation.ended")
    sent = await gw.client.post("/v1/messages", json={"to": "+14155552674", "body": "hi"})
    await gw.drain()
    # The text went out while the webhook attempt was still waiting for its answer.
    message = (await gw.client.get(f"/v1/messages/{sent.json()['id']}")).json()
    assert message["status"] == "delivered"
    assert await deliveries(gw, endpoint["id"]) == []
    await handler.idle()
    [log] = await deliveries(gw, endpoint["id"])
    assert log["status"] == "succeeded"
    assert log["duration_ms"] >= 4000


async def test_a_stopping_worker_releases_the_deliveries_it_still_holds(
    gw: Gateway, receiver: Receiver
) -> None:
    """SIGTERM (``Worker.stop``) while attempts wait on a slow endpoint in the background:
    the worker returns holding none of its jobs; they are queued again, due now. When the
    abandoned attempts answer after all, their late record does not complete the jobs."""
    handler = use_handler(gw, webhook_timeout_seconds=10)
    worker = Worker(gw.db, gw.settings, {DELIVER_JOB: handler.handle}, concurrency=1)
    endpoint = await create(gw, receiver.url("/stuck"), event_types=["conversation.ended"])
    receiver.on("/stuck", *[(200, {}, 3.5)] * 3)  # longer than the handler waits inline
    for _ in range(3):
        await send_event(gw, "conversation.ended")
    running = asyncio.create_task(worker.run())
    deadline = time.monotonic() + 10
    while len(receiver.at("/stuck")) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert len(receiver.at("/stuck")) == 3
    worker.stop()
    await asyncio.wait_for(running, timeout=10)

    async with gw.db.read() as conn:
        held = await conn.execute(select(func.count()).where(jobs.c.lease_owner == worker.owner))
        assert held.scalar_one() == 0
        rows = (
            await conn.execute(
                select(jobs.c.status, jobs.c.run_at, jobs.c.payload).where(
                    jobs.c.kind == DELIVER_JOB
                )
            )
        ).all()
    mine = [
        (status, run_at)
        for status, run_at, payload in rows
        if (json.loads(payload) if isinstance(payload, str) else payload)["endpoint_id"]
        == endpoint["id"]
    ]
    assert len(mine) == 3
    assert all(status == "queued" and run_at <= time.time() for status, run_at in mine)
    await handler.idle()  # the attempts answer: logged, but the released jobs stay queued
    assert len(await deliveries(gw, endpoint["id"])) == 3
    assert await queued_for(gw, endpoint["id"]) == 3


# --- message events from the real send path --------------------------------------------


def _events(receiver: Receiver, path: str, secret: str) -> list[dict[str, Any]]:
    return [verified(secret, request) for request in receiver.at(path)]


async def test_a_send_reports_queued_sent_delivered_with_the_message_resource(
    gw: Gateway, receiver: Receiver
) -> None:
    endpoint = await create(gw, receiver.url("/messages"), event_types=["message.*"])
    sent = await gw.client.post(
        "/v1/messages",
        json={"to": "+14155552671", "body": "your table is ready", "metadata": {"order": "A1"}},
    )
    assert sent.status_code == 202
    message_id = sent.json()["id"]
    await gw.drain()

    events = _events(receiver, "/messages", endpoint["secret"])
    assert [e["type"] for e in events] == ["message.queued", "message.sent", "message.delivered"]
    assert all(e["data"]["message"]["id"] == message_id for e in events)
    assert all(e["data"]["metadata"] == {"order": "A1"} for e in events)
    assert events[0]["data"]["message"] == sent.json()  # the shape of the 202 answer
    final = (await gw.client.get(f"/v1/messages/{message_id}")).json()
    assert events[-1]["data"]["message"] == final  # the shape of GET /v1/messages/{id}
    assert len({e["id"] for e in events}) == 3

    # Every outbound text opens a conversation: its metadata and history come along.
    conversation_id = final["conversation_id"]
    assert conversation_id is not None
    assert events[0]["data"]["conversation"]["id"] == conversation_id
    assert events[0]["data"]["conversation_metadata"] == {}
    history = events[-1]["data"]["recent_history"]
    assert any(entry["body"] == "your table is ready" for entry in history)


async def test_an_inbound_text_reports_message_received(gw: Gateway, receiver: Receiver) -> None:
    endpoint = await create(gw, receiver.url("/inbound"), event_types=["message.received"])
    answer = await gw.client.post(
        "/v1/simulator/inbound",
        json={"from": "+14155552671", "to": "+14155550100", "body": "running late"},
    )
    assert answer.status_code in (200, 201, 202), answer.text
    await gw.drain()
    [event] = _events(receiver, "/inbound", endpoint["secret"])
    assert event["type"] == "message.received"
    assert event["data"]["message"]["body"] == "running late"
    assert event["data"]["message"]["direction"] == "inbound"


async def test_a_conversation_webhook_url_gets_its_events_without_any_endpoint(
    insecure_app: FastAPI, receiver: Receiver
) -> None:
    async with open_gateway(insecure_app, "conversation-hook") as gateway:
        sent = await gateway.client.post(
            "/v1/messages",
            json={
                "to": "+14155552672",
                "body": "hello",
                "conversation": {"webhook_url": receiver.url("/conversation")},
            },
        )
        assert sent.status_code == 202, sent.text
        await gateway.drain()
        secret = (await gateway.client.get("/v1/webhook-signing-secret")).json()["secret"]
        # Deliveries run concurrently: arrival order is not promised, only that each arrives.
        events = _events(receiver, "/conversation", secret)
        types = [e["type"] for e in events]
        assert "conversation.started" in types
        assert "message.queued" in types
        assert "message.delivered" in types
        delivered = events[types.index("message.delivered")]
        assert delivered["data"]["conversation"]["id"] == sent.json()["conversation_id"]


async def test_a_bad_conversation_webhook_url_is_refused_at_the_api(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/messages",
        json={
            "to": "+14155552673",
            "body": "hello",
            "conversation": {"webhook_url": "https://169.254.169.254/latest/meta-data"},
        },
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "conversation.webhook_url"
