"""The web inbox through HTTP: conversations listed with unread counts, a thread, takeover."""

from __future__ import annotations

import re

from tests.conftest import Gateway
from tests.integration.conversation_helpers import (
    agent_server,
    demo_persona,
    insecure_gateway,
    send_with_webhook_agent,
    start_reminder,
    text_in,
    wait_for,
)
from tests.integration.dashboard_helpers import browser, field_error, signed_in


def _row(html: str, conversation_id: str) -> str:
    found = re.search(rf'<tr id="conv-{conversation_id}".*?</tr>', html, re.S)
    assert found, f"no inbox row for {conversation_id}"
    return found.group(0)


def _unread(row: str) -> int:
    found = re.search(r'<td data-label="Unread" class="unread-count">(?:<span[^>]*>)?(\d+)', row)
    assert found
    return int(found.group(1))


async def test_inbox_and_thread_need_a_session(gateway: Gateway) -> None:
    first = await text_in(gateway, "+14155553001", "hello")
    async with browser(gateway) as anonymous:
        for path in ("/dashboard/conversations", f"/dashboard/conversations/{first['id']}"):
            response = await anonymous.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/dashboard/login?next=")


async def test_inbox_lists_newest_first_with_last_message_and_unread(gateway: Gateway) -> None:
    first = await text_in(gateway, "+14155553011", "first person, hello")
    await text_in(gateway, "+14155553011", "are you there?")
    second = await text_in(gateway, "+14155553012", "second person")
    async with signed_in(gateway) as viewer:
        page = await viewer.get("/dashboard/conversations")
    assert page.status_code == 200
    one, two = first["conversation_id"], second["conversation_id"]
    assert page.text.index(f'id="conv-{two}"') < page.text.index(f'id="conv-{one}"')
    row = _row(page.text, one)
    assert "are you there?" in row
    assert _unread(row) == 2
    assert ">open<" in row
    assert _unread(_row(page.text, two)) == 1


async def test_inbox_filters_by_status_and_number(gateway: Gateway) -> None:
    kept = await text_in(gateway, "+14155553021", "keep me")
    other = await text_in(gateway, "+14155553022", "not me")
    async with signed_in(gateway) as viewer:
        found = await viewer.get("/dashboard/conversations", params={"number": "+14155553021"})
        assert f"conv-{kept['conversation_id']}" in found.text
        assert f"conv-{other['conversation_id']}" not in found.text
        ended = await viewer.get("/dashboard/conversations", params={"status": "ended"})
        assert ended.status_code == 200
        assert f"conv-{kept['conversation_id']}" not in ended.text
        bad = await viewer.get(
            "/dashboard/conversations", params={"status": "lost", "number": "12"}
        )
    assert bad.status_code == 422
    assert "must be one of" in (field_error(bad.text, "status") or "")
    assert field_error(bad.text, "number")


async def test_human_reply_pauses_the_agent_and_reads_the_texts(gateway: Gateway) -> None:
    inbound = await text_in(gateway, "+14155553031", "I need a person")
    cid = inbound["conversation_id"]
    async with signed_in(gateway) as viewer:
        thread = await viewer.get(f"/dashboard/conversations/{cid}")
        assert thread.status_code == 200
        assert "I need a person" in thread.text
        assert "img-src 'self' data: https:" in thread.headers["content-security-policy"]
        sent = await viewer.post(f"/dashboard/conversations/{cid}/reply", {"body": "Hi, I am Sam"})
        assert sent.status_code == 303
        after = await viewer.get(sent.headers["location"])
        assert "Hi, I am Sam" in after.text
        assert '<span class="hint purpose">human</span>' in after.text  # says who wrote it
        assert "paused: a human is answering" in after.text
        assert "Resume agent" in after.text
        inbox = await viewer.get("/dashboard/conversations")
        assert _unread(_row(inbox.text, cid)) == 0
        assert "agent paused" in _row(inbox.text, cid)
        resumed = await viewer.post(f"/dashboard/conversations/{cid}/resume")
        assert resumed.status_code == 303
    shown = (await gateway.client.get(f"/v1/conversations/{cid}")).json()
    assert shown["agent_paused"] is False
    messages = [m for m in shown["messages"] if m["direction"] == "outbound"]
    assert [m["body"] for m in messages] == ["Hi, I am Sam"]


async def test_a_blank_reply_is_refused_beside_the_field(gateway: Gateway) -> None:
    inbound = await text_in(gateway, "+14155553041", "hello?")
    cid = inbound["conversation_id"]
    async with signed_in(gateway) as viewer:
        refused = await viewer.post(f"/dashboard/conversations/{cid}/reply", {"body": "   "})
    assert refused.status_code == 422
    assert field_error(refused.text, "body") == "write a reply first"
    shown = (await gateway.client.get(f"/v1/conversations/{cid}")).json()
    assert shown["agent_paused"] is False
    assert [m["direction"] for m in shown["messages"]] == ["inbound"]


async def test_posts_without_csrf_change_nothing(gateway: Gateway) -> None:
    inbound = await text_in(gateway, "+14155553051", "hello")
    cid = inbound["conversation_id"]
    async with signed_in(gateway) as viewer:
        viewer.csrf = "forged"
        for action, data in (("reply", {"body": "sneaky"}), ("pause", {}), ("end", {})):
            refused = await viewer.post(f"/dashboard/conversations/{cid}/{action}", data)
            assert refused.status_code == 403, action
    shown = (await gateway.client.get(f"/v1/conversations/{cid}")).json()
    assert shown["status"] == "open"
    assert shown["agent_paused"] is False
    assert len(shown["messages"]) == 1


async def test_end_with_an_outcome_and_too_long_an_outcome(gateway: Gateway) -> None:
    inbound = await text_in(gateway, "+14155553061", "bye")
    cid = inbound["conversation_id"]
    async with signed_in(gateway) as viewer:
        long = await viewer.post(f"/dashboard/conversations/{cid}/end", {"outcome": "x" * 101})
        assert long.status_code == 422
        assert "at most 100" in (field_error(long.text, "outcome") or "")
        ended = await viewer.post(f"/dashboard/conversations/{cid}/end", {"outcome": "booked"})
        assert ended.status_code == 303
        page = await viewer.get(ended.headers["location"])
        assert 'id="outcome">booked<' in page.text
        assert "Send reply" not in page.text
        paused = await viewer.post(f"/dashboard/conversations/{cid}/pause")
        assert paused.status_code == 422
    shown = (await gateway.client.get(f"/v1/conversations/{cid}")).json()
    assert (shown["status"], shown["outcome"]) == ("ended", "booked")


async def test_another_projects_conversation_is_not_found(gateway: Gateway) -> None:
    async with signed_in(gateway) as viewer:
        missing = await viewer.get("/dashboard/conversations/conv_nope")
    assert missing.status_code == 404


async def test_overview_lists_conversations_needing_attention(gateway: Gateway) -> None:
    person = "+14155553071"
    async with signed_in(gateway) as viewer:
        calm = await viewer.get("/dashboard")
    assert "None: every open conversation has its agent." in calm.text
    with agent_server() as (server, url):
        server.status = 503
        async with insecure_gateway(gateway) as gw:
            sent = await send_with_webhook_agent(gw, person, url)
            cid = sent["conversation_id"]
            await text_in(gw, person, "anyone?")
            await wait_for(gw, cid, lambda c: c["status"] == "needs_attention")
            async with signed_in(gw) as viewer:
                overview = await viewer.get("/dashboard")
                inbox = await viewer.get(
                    "/dashboard/conversations", params={"status": "needs_attention"}
                )
    found = re.search(r'<ul class="attention" id="attention">(.*?)</ul>', overview.text, re.S)
    assert found, overview.text
    assert f"/dashboard/conversations/{cid}" in found.group(1)
    assert "anyone?" in found.group(1)
    row = _row(inbox.text, cid)
    assert "needs attention" in row
    assert _unread(row) == 1


async def test_compliance_settings_are_saved_and_errors_show_beside_fields(
    gateway: Gateway,
) -> None:
    async with signed_in(gateway) as viewer:
        shown = await viewer.get("/dashboard/settings")
        assert 'value="STOP, STOPALL, UNSUBSCRIBE' in shown.text
        form = {
            "quiet_enabled": "1",
            "quiet_start": "22:00",
            "quiet_end": "07:30",
            "quiet_timezone": "Europe/Paris",
            "opt_out_keywords": "STOP, ARRET",
            "opt_out_message": "Bye now.",
            "opt_in_keywords": "START",
            "opt_in_message": "Welcome back.",
            "help_keywords": "HELP AIDE",
            "help_message": "Call us.",
        }
        saved = await viewer.post("/dashboard/settings/compliance", form)
        assert saved.status_code == 303, saved.text
        bad = await viewer.post(
            "/dashboard/settings/compliance",
            form | {"quiet_timezone": "Mars/Olympus", "help_message": " ", "opt_in_keywords": ""},
        )
        assert bad.status_code == 422
        assert "unknown time zone" in (field_error(bad.text, "quiet_hours") or "")
        assert field_error(bad.text, "help_message") == "must be a non-empty text"
        assert "non-empty list" in (field_error(bad.text, "opt_in_keywords") or "")
        assert 'value="Mars/Olympus"' in bad.text
        viewer.csrf = "forged"
        forged = await viewer.post("/dashboard/settings/compliance", form | {"help_message": "x"})
        assert forged.status_code == 403
    settings = (await gateway.client.get("/v1/project")).json()["settings"]
    assert settings["quiet_hours"] == {"start": "22:00", "end": "07:30", "timezone": "Europe/Paris"}
    assert settings["opt_out_keywords"] == ["STOP", "ARRET"]
    assert settings["help_keywords"] == ["HELP", "AIDE"]
    assert settings["help_message"] == "Call us."
    # The saved words now answer a text.
    await text_in(gateway, "+14155553081", "aide")
    await gateway.drain()
    log = (await gateway.client.get("/v1/simulator/log", params={"to": "+14155553081"})).json()
    assert [row["body"] for row in log["data"]] == ["Call us."]


async def test_an_ended_pathway_conversation_shows_outcome_data_and_its_node(
    gateway: Gateway,
) -> None:
    person = "+14155553091"
    made = await demo_persona(gateway, name="Reminders")
    sent = await start_reminder(gateway, person, made["id"])
    cid = sent["conversation_id"]
    shown = await wait_for(gateway, cid, lambda c: c["status"] == "ended")
    async with signed_in(gateway) as viewer:
        page = await viewer.get(f"/dashboard/conversations/{cid}")
        inbox = await viewer.get("/dashboard/conversations", params={"status": "ended"})
    assert page.status_code == 200
    assert 'id="outcome">rescheduled<' in page.text
    assert "<dt>new_time</dt>" in page.text
    assert ">Reminders</a>" in page.text
    node = shown["current_node_id"]
    assert node
    assert f'<dd id="current-node">{node}</dd>' in page.text
    assert f'class="node current" data-node="{node}"' in page.text
    assert page.text.count('class="bubble outbound"') == 2
    assert "Send reply" not in page.text
    row = _row(inbox.text, cid)
    assert "Reminders" in row
    assert "rescheduled" in row
