"""Webhook endpoints in the dashboard: create with the secret shown once, the delivery log,
resend, delete, and a message's deliveries on its page."""

from __future__ import annotations

import re

from sqlalchemy import select

from agentsms.store import tables
from tests.conftest import Gateway
from tests.integration.dashboard_helpers import browser, field_error, signed_in

# .invalid never resolves (RFC 6761): every delivery fails at once, with a reason.
UNREACHABLE = "https://hooks.agentsms.invalid/events"


async def test_webhook_pages_need_a_session(gateway: Gateway) -> None:
    async with browser(gateway) as anonymous:
        for path in ("/dashboard/webhooks", "/dashboard/webhooks/whe_x"):
            response = await anonymous.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/dashboard/login?next=")


async def test_create_shows_the_secret_once_and_refuses_bad_fields(gateway: Gateway) -> None:
    async with signed_in(gateway) as viewer:
        bad = await viewer.post(
            "/dashboard/webhooks", {"url": "ftp://nowhere", "event_types": "message.eaten"}
        )
        assert bad.status_code == 422
        assert field_error(bad.text, "url")
        assert "unknown event type &#39;message.eaten&#39;" in (
            field_error(bad.text, "event_types") or ""
        )
        made = await viewer.post(
            "/dashboard/webhooks",
            {"url": UNREACHABLE, "event_types": "message.*", "description": "ops"},
        )
        assert made.status_code == 201, made.text
        secret = re.search(r'<code id="new-secret" class="secret">([^<]+)</code>', made.text)
        assert secret
        assert secret.group(1).startswith("whsec_")
        listed = await viewer.get("/dashboard/webhooks")
        assert UNREACHABLE in listed.text
        assert secret.group(1) not in listed.text
        viewer.csrf = "forged"
        forged = await viewer.post("/dashboard/webhooks", {"url": UNREACHABLE + "/2"})
        assert forged.status_code == 403
    async with gateway.db.read() as conn:
        query = select(tables.webhook_endpoints).where(
            tables.webhook_endpoints.c.project_id == gateway.project_id
        )
        rows = (await conn.execute(query)).mappings().all()
    assert [(r["url"], r["event_types"], r["description"]) for r in rows] == [
        (UNREACHABLE, ["message.*"], "ops")
    ]


async def test_delivery_log_resend_delete_and_the_message_page(gateway: Gateway) -> None:
    async with signed_in(gateway) as viewer:
        made = await viewer.post("/dashboard/webhooks", {"url": UNREACHABLE})
        endpoint_id = re.search(r'id="endpoint-(whe_[0-9A-Z]+)"', made.text)
        assert endpoint_id
        eid = endpoint_id.group(1)
        sent = await gateway.client.post(
            "/v1/messages", json={"to": "+14155553201", "body": "hello"}
        )
        message_id = sent.json()["id"]
        await gateway.drain()
        log = await viewer.get(f"/dashboard/webhooks/{eid}")
        assert log.status_code == 200
        ids = re.findall(r'<tr id="delivery-(whd_[0-9A-Z]+)">', log.text)
        assert ids, log.text
        assert "message.queued" in log.text
        assert 'data-status="failed"' in log.text
        message_page = await viewer.get(f"/dashboard/messages/{message_id}")
        assert "Webhook deliveries" in message_page.text
        shown = re.findall(r'<tr id="delivery-(whd_[0-9A-Z]+)">', message_page.text)
        # Its message events, not the conversation's.
        assert set(shown) < set(ids)
        assert len(shown) == len(ids) - 1
        for event in ("message.queued", "message.sent", "message.delivered"):
            assert event in message_page.text
        assert "conversation.started" in log.text
        assert "conversation.started" not in message_page.text
        other = await gateway.client.post(
            "/v1/messages", json={"to": "+14155553202", "body": "other"}
        )
        await gateway.drain()
        assert (
            f'id="delivery-{ids[-1]}"'
            not in (await viewer.get(f"/dashboard/messages/{other.json()['id']}")).text
        )

        of_endpoint = select(tables.webhook_deliveries).where(
            tables.webhook_deliveries.c.endpoint_id == eid
        )
        async with gateway.db.read() as conn:
            before = len((await conn.execute(of_endpoint)).all())
        resent = await viewer.post(f"/dashboard/webhooks/{eid}/deliveries/{ids[-1]}/resend")
        assert resent.status_code == 303
        assert "Queued one more attempt" in (await viewer.get(resent.headers["location"])).text
        await gateway.drain()
        async with gateway.db.read() as conn:
            after = len((await conn.execute(of_endpoint)).all())
        assert after == before + 1

        deleted = await viewer.post(f"/dashboard/webhooks/{eid}/delete")
        assert deleted.status_code == 303
        listed = await viewer.get("/dashboard/webhooks")
        assert f'id="endpoint-{eid}"' not in listed.text
        missing = await viewer.post(f"/dashboard/webhooks/{eid}/deliveries/{ids[-1]}/resend")
        assert missing.status_code == 404
