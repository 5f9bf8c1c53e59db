"""The dashboard through HTTP (no browser): sign-in, CSRF, compose, CSV preview, pages."""

from __future__ import annotations

import re

from sqlalchemy import select

from agentsms.store import tables
from tests.conftest import Gateway
from tests.integration.dashboard_helpers import browser, csrf_of, field_error, signed_in
from tests.integration.helpers import message_rows

CSV = (
    "phone,name,city\n"
    "+14155552671,Ann,Paris\n"
    "+14155552672,Bob,Oslo\n"
    "not-a-number,Cid,Rome\n"
    "+14155552673,,Lima\n"
)


async def test_pages_redirect_to_sign_in(gateway: Gateway) -> None:
    async with browser(gateway) as anonymous:
        for path in ("/dashboard", "/dashboard/messages", "/dashboard/batches/batch_x"):
            response = await anonymous.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/dashboard/login?next=")


async def test_sign_in_sets_a_strict_httponly_session_cookie(gateway: Gateway) -> None:
    async with browser(gateway) as visitor:
        response = await visitor.sign_in(gateway.api_key)
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "path=/dashboard" in cookie
        assert "secure" not in cookie  # plain http
        page = await visitor.get("/dashboard")
        assert page.status_code == 200
        assert "Messages per hour" in page.text
    async with browser(gateway, base_url="https://testserver") as secure_visitor:
        response = await secure_visitor.sign_in(gateway.api_key)
        assert "secure" in response.headers["set-cookie"].lower()


async def test_wrong_api_key_is_refused_with_a_visible_error(gateway: Gateway) -> None:
    async with browser(gateway) as visitor:
        await visitor.get("/dashboard/login")
        response = await visitor.post("/dashboard/login", {"api_key": "ask_wrong"})
        assert response.status_code == 401
        assert field_error(response.text, "api_key") == "invalid API key"
        assert 'aria-invalid="true"' in response.text
        assert (await visitor.get("/dashboard")).status_code == 303


async def test_posts_without_a_valid_csrf_token_are_refused(gateway: Gateway) -> None:
    async with browser(gateway) as visitor:
        await visitor.get("/dashboard/login")
        # Sign-in itself is protected (login CSRF).
        response = await visitor.http.post("/dashboard/login", data={"api_key": gateway.api_key})
        assert response.status_code == 403
        assert "security token" in response.text
    async with signed_in(gateway) as person:
        form = {"to": "+14155552671", "body": "hello"}
        missing = await person.http.post("/dashboard/compose/message", data=form)
        wrong = await person.http.post(
            "/dashboard/compose/message", data={**form, "csrf_token": "forged"}
        )
        header = await person.http.post(
            "/dashboard/compose/count", data={"body": "x"}, headers={"X-CSRF-Token": "forged"}
        )
        assert (missing.status_code, wrong.status_code, header.status_code) == (403, 403, 403)
        assert await message_rows(gateway) == []
        # The real token works, as a form field or as htmx's header.
        ok = await person.post("/dashboard/compose/message", form)
        assert ok.status_code == 303
        counted = await person.http.post(
            "/dashboard/compose/count", data={"body": "x"}, headers={"X-CSRF-Token": person.csrf}
        )
        assert counted.status_code == 200


async def test_a_token_from_another_session_is_refused(gateway: Gateway) -> None:
    async with signed_in(gateway) as first, signed_in(gateway) as second:
        assert first.csrf != second.csrf
        response = await second.http.post(
            "/dashboard/compose/message",
            data={"to": "+14155552671", "body": "x", "csrf_token": first.csrf},
        )
        assert response.status_code == 403


async def test_sign_out_ends_the_session(gateway: Gateway) -> None:
    async with signed_in(gateway) as person:
        response = await person.post("/dashboard/logout")
        assert response.status_code == 303
        assert (await person.get("/dashboard")).status_code == 303


async def test_a_saved_cookie_is_dead_after_sign_out(gateway: Gateway) -> None:
    async with signed_in(gateway) as person, browser(gateway) as thief:
        saved = person.http.cookies["agentsms_session"]
        thief.http.cookies.set("agentsms_session", saved, path="/dashboard")
        assert (await thief.get("/dashboard")).status_code == 200  # a copy works while live
        sessions = tables.dashboard_sessions
        async with gateway.db.read() as conn:
            stored = (await conn.execute(select(sessions.c.id_hash))).scalars().all()
        assert saved not in stored  # only a digest of the session id is kept
        assert (await person.post("/dashboard/logout")).status_code == 303
        replayed = await thief.get("/dashboard")
        assert replayed.status_code == 303
        assert replayed.headers["location"].startswith("/dashboard/login")
        refused = await thief.http.post(
            "/dashboard/compose/message",
            data={"to": "+14155552671", "body": "x", "csrf_token": person.csrf},
        )
        assert refused.status_code in (401, 403)
        stream = await thief.http.get("/dashboard/stream")
        assert stream.status_code == 204
    assert await message_rows(gateway) == []


async def test_compose_errors_are_shown_beside_their_fields(gateway: Gateway) -> None:
    async with signed_in(gateway) as person:
        await person.get("/dashboard/compose")
        response = await person.post(
            "/dashboard/compose/message",
            {"to": "0044", "body": "", "from": "+14155550999", "send_at": "tomorrow"},
        )
        assert response.status_code == 422
        html = response.text
        assert field_error(html, "send_at") == "must be a date and time like 2026-11-29T14:30"
        assert (await message_rows(gateway)) == []
        # With a valid time, the core's own field errors appear beside each field.
        too_long = "x" * 1601
        response = await person.post(
            "/dashboard/compose/message", {"to": "0044", "body": too_long, "from": "+14155550999"}
        )
        html = response.text
        assert field_error(html, "to") is not None
        assert "the limit is 1600" in (field_error(html, "body") or "")
        assert field_error(html, "from") == "is not a number in this project&#39;s sender pool"
        assert 'value="0044"' in html  # what was typed is kept
        assert await message_rows(gateway) == []


async def test_compose_sends_and_shows_the_message(gateway: Gateway) -> None:
    async with signed_in(gateway) as person:
        await person.get("/dashboard/compose")
        response = await person.post(
            "/dashboard/compose/message", {"to": "+1 415 555 2671", "body": "Hi there"}
        )
        assert response.status_code == 303
        location = response.headers["location"]
        message_id = location.rsplit("/", 1)[1]
        [row] = await message_rows(gateway)
        assert row["id"] == message_id
        assert row["to_number"] == "+14155552671"
        await gateway.drain()
        page = await person.get(location)
        assert 'data-status="delivered"' in page.text
        assert re.findall(r'class="badge s-(\w+)"', page.text)[1:] == [
            "queued",
            "sending",
            "sent",
            "delivered",
        ]


async def test_compose_schedules_and_the_message_can_be_canceled(gateway: Gateway) -> None:
    async with signed_in(gateway) as person:
        await person.get("/dashboard/compose")
        response = await person.post(
            "/dashboard/compose/message",
            {"to": "+14155552671", "body": "later", "send_at": "2099-01-01T10:00"},
        )
        location = response.headers["location"]
        page = await person.get(location)
        assert 'data-status="scheduled"' in page.text
        assert "2099-01-01 10:00:00 UTC" in page.text
        canceled = await person.post(f"{location}/cancel")
        assert canceled.status_code == 303
        [row] = await message_rows(gateway)
        assert row["status"] == "canceled"


async def test_live_counter_reports_segments_encoding_and_price(gateway: Gateway) -> None:
    async with signed_in(gateway) as person:
        plain = await person.post("/dashboard/compose/count", {"body": "a" * 161})
        assert 'data-segments="2"' in plain.text
        assert 'data-encoding="GSM-7"' in plain.text
        emoji = await person.post("/dashboard/compose/count", {"body": "héllo 😀"})
        assert 'data-encoding="UCS-2"' in emoji.text
        assert "0.00 USD" in emoji.text


async def test_csv_preview_fills_every_row_and_names_the_bad_ones(gateway: Gateway) -> None:
    async with signed_in(gateway) as person:
        response = await person.http.post(
            "/dashboard/compose/preview",
            data={"body": "Hi {{name}} from {{city}}"},
            files={"file": ("people.csv", CSV.encode(), "text/csv")},
            headers={"X-CSRF-Token": person.csrf},
        )
        assert response.status_code == 200
        html = response.text
        assert "Hi Ann from Paris" in html
        assert "Hi Bob from Oslo" in html
        assert "4 recipients" in html
        assert "2 with problems" in html
        assert "missing variable &#39;name&#39;" in html
        assert "to: " in html  # the bad number's reason
        assert "not-a-number" in html
        assert await message_rows(gateway) == []


async def test_csv_without_a_recipient_column_is_refused_beside_the_file(gateway: Gateway) -> None:
    async with signed_in(gateway) as person:
        response = await person.http.post(
            "/dashboard/compose/preview",
            data={"body": "x"},
            files={"file": ("people.csv", b"name\nAnn\n", "text/csv")},
            headers={"X-CSRF-Token": person.csrf},
        )
        assert "no recipient column" in (field_error(response.text, "file") or "")


async def test_csv_batch_is_all_or_nothing_then_sends(gateway: Gateway) -> None:
    async with signed_in(gateway) as person:
        await person.get("/dashboard/compose?mode=csv")
        files = {"file": ("people.csv", CSV.encode(), "text/csv")}
        refused = await person.http.post(
            "/dashboard/compose/batch",
            data={"csrf_token": person.csrf, "body": "Hi {{name}}", "spacing_seconds": "-1"},
            files=files,
        )
        assert refused.status_code == 422
        assert "between 0 and 86400" in (field_error(refused.text, "spacing_seconds") or "")
        refused = await person.http.post(
            "/dashboard/compose/batch",
            data={"csrf_token": person.csrf, "body": "Hi {{name}}"},
            files=files,
        )
        assert "2 of 4 rows cannot be sent (lines 4, 5)" in (
            field_error(refused.text, "file") or ""
        )
        assert "Hi Ann" in refused.text  # the preview is shown again
        assert await message_rows(gateway) == []

        good = "to,name\n+14155552671,Ann\n+14155552672,Bob\n"
        response = await person.http.post(
            "/dashboard/compose/batch",
            data={"csrf_token": person.csrf, "body": "Hi {{name}}", "send_at": "2099-01-01T00:00"},
            files={"file": ("people.csv", good.encode(), "text/csv")},
        )
        assert response.status_code == 303
        batch_page = response.headers["location"]
        rows = await message_rows(gateway)
        assert sorted(r["body"] for r in rows) == ["Hi Ann", "Hi Bob"]
        page = await person.get(batch_page)
        assert "0 %" in page.text
        assert 'data-count="scheduled">2<' in page.text
        canceled = await person.post(f"{batch_page}/cancel")
        assert canceled.status_code == 303
        page = await person.get(canceled.headers["location"])
        assert "Canceled 2 messages" in page.text
        assert "100 %" in page.text
        assert {r["status"] for r in await message_rows(gateway)} == {"canceled"}


async def test_csv_text_kept_by_the_preview_is_enough_to_send(gateway: Gateway) -> None:
    async with signed_in(gateway) as person:
        response = await person.post(
            "/dashboard/compose/batch",
            {"csv_text": "number\n+14155552671\n", "body": "Hello"},
        )
        assert response.status_code == 303
        assert [r["body"] for r in await message_rows(gateway)] == ["Hello"]


async def test_messages_page_filters_and_paginates(gateway: Gateway) -> None:
    for n in range(3):
        await gateway.client.post("/v1/messages", json={"to": f"+1415555267{n}", "body": f"m{n}"})
    await gateway.client.post("/v1/messages", json={"to": "+14155552670", "body": "again"})
    async with signed_in(gateway) as person:
        page = await person.get("/dashboard/messages", params={"number": "+1 415 555 2670"})
        assert page.text.count('<tr id="row-') == 2
        bad = await person.get("/dashboard/messages", params={"number": "12", "since": "x"})
        assert bad.status_code == 422
        assert field_error(bad.text, "number") is not None
        assert field_error(bad.text, "since") == "must be a date like 2026-11-29"
        queued = await person.get("/dashboard/messages", params={"status": "queued"})
        assert queued.text.count('<tr id="row-') == 4
        delivered = await person.get("/dashboard/messages", params={"status": "delivered"})
        assert "No messages match" in delivered.text


async def test_other_projects_are_invisible(gateway: Gateway) -> None:
    _, other = await gateway.new_project()
    sent = (await other.post("/v1/messages", json={"to": "+14155552671", "body": "x"})).json()
    async with signed_in(gateway) as person:
        assert (await person.get(f"/dashboard/messages/{sent['id']}")).status_code == 404
        listing = await person.get("/dashboard/messages")
        assert sent["id"] not in listing.text


async def test_numbers_settings_and_overview_pages(gateway: Gateway) -> None:
    async with signed_in(gateway) as person:
        numbers = await person.get("/dashboard/numbers")
        assert "+14155550100" in numbers.text
        assert "simulator" in numbers.text
        refused = await person.post(
            "/dashboard/settings", {"name": " ", "rate_limit_per_second": "0"}
        )
        assert refused.status_code == 422
        assert field_error(refused.text, "rate_limit_per_second") == (
            "must be a whole number from 1 to 1000000"
        )
        saved = await person.post(
            "/dashboard/settings", {"name": "Fleet", "rate_limit_per_second": "7"}
        )
        assert saved.status_code == 303
        project = (await gateway.client.get("/v1/project")).json()
        assert project["name"] == "Fleet"
        assert project["settings"]["rate_limit_per_second"] == 7


async def test_api_keys_created_once_and_revoked(gateway: Gateway) -> None:
    async with signed_in(gateway) as person:
        created = await person.post("/dashboard/api-keys", {"name": "billing agent"})
        assert created.status_code == 201
        key = re.search(r'id="new-key">([^<]+)<', created.text)
        assert key is not None
        listing = await person.get("/dashboard/api-keys")
        assert key.group(1) not in listing.text  # shown once only
        assert "billing agent" in listing.text
        key_id = re.search(r'id="key-(key_\w+)"', listing.text)
        assert key_id is not None
        assert key_id.group(1) != ""
        keys = tables.api_keys
        query = select(keys).where(
            keys.c.project_id == gateway.project_id, keys.c.name == "billing agent"
        )
        async with gateway.db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        [row] = rows
        revoked = await person.post(f"/dashboard/api-keys/{row['id']}/revoke")
        assert revoked.status_code == 200
        assert "Revoked billing agent" in revoked.text


async def test_revoking_the_sessions_key_ends_the_session(gateway: Gateway) -> None:
    created = await gateway.client.post("/v1/api-keys", json={"name": "second"})
    second = created.json()
    async with signed_in(gateway) as person, browser(gateway) as other:
        await other.sign_in(second["key"])
        await other.get("/dashboard")
        response = await person.post(f"/dashboard/api-keys/{second['id']}/revoke")
        assert response.status_code == 200
        assert (await other.get("/dashboard")).status_code == 303
        # The project's last active key cannot be revoked.
        listing = await person.get("/dashboard/api-keys")
        own = re.findall(r'action="/dashboard/api-keys/(key_\w+)/revoke"', listing.text)
        assert len(own) == 1
        refused = await person.post(f"/dashboard/api-keys/{own[0]}/revoke")
        assert refused.status_code == 409
        assert "last active API key" in refused.text


async def test_login_page_never_redirects_off_site(gateway: Gateway) -> None:
    async with browser(gateway) as visitor:
        page = await visitor.get("/dashboard/login", params={"next": "https://evil.example/"})
        assert 'name="next" value="/dashboard"' in page.text
        csrf = csrf_of(page.text)
        response = await visitor.http.post(
            "/dashboard/login",
            data={"csrf_token": csrf, "api_key": gateway.api_key, "next": "//evil.example"},
        )
        assert response.headers["location"] == "/dashboard"


async def test_static_files_are_served_from_the_package(gateway: Gateway) -> None:
    async with browser(gateway) as visitor:
        htmx = await visitor.get("/dashboard/static/htmx.min.js")
        assert htmx.status_code == 200
        assert "htmx" in htmx.text[:2000]
        sse = await visitor.get("/dashboard/static/htmx-ext-sse.min.js")
        assert 'defineExtension("sse"' in sse.text


async def test_csv_preview_shows_the_first_rows_and_every_bad_one(gateway: Gateway) -> None:
    lines = [f"+1415555{2600 + i},P{i}" for i in range(60)]
    lines[45] = "+1415,P45"
    csv = "to,name\n" + "\n".join(lines) + "\n"
    async with signed_in(gateway) as person:
        response = await person.http.post(
            "/dashboard/compose/preview",
            data={"body": "Hi {{name}}"},
            files={"file": ("people.csv", csv.encode(), "text/csv")},
            headers={"X-CSRF-Token": person.csrf},
        )
        html = response.text
        assert "60 recipients, <strong" in html
        assert "1 with problems" in html
        assert "21 shown" in html
        assert "Hi P19" in html
        assert "Hi P20" not in html
        assert "+1415</td>" in html  # line 47's bad number, beyond the first 20


async def test_overview_counts_delivery_rate_and_time_to_delivery(gateway: Gateway) -> None:
    for n in range(3):
        await gateway.client.post("/v1/messages", json={"to": f"+1415555267{n}", "body": "x"})
    await gateway.drain()
    later = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552679", "body": "y", "send_at": "2099-01-01T00:00:00Z"}
    )
    await gateway.client.post(f"/v1/messages/{later.json()['id']}/cancel")
    async with signed_in(gateway) as person:
        html = (await person.get("/dashboard")).text
    assert re.search(r'id="fig-total">4<', html)
    assert re.search(r'id="fig-rate">100.0 %<', html)  # canceled is not a failure
    assert "3 delivered, 0 not" in html
    assert re.search(r'id="fig-median">[\d.]+ (ms|s)<', html)
    assert 'class="f-delivered"' in html  # a bar segment of delivered messages


async def test_pages_forbid_framing_caching_and_foreign_scripts(gateway: Gateway) -> None:
    async with browser(gateway) as visitor:
        page = await visitor.get("/dashboard/login")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy


async def test_messages_page_paginates_with_a_cursor_keeping_filters(gateway: Gateway) -> None:
    recipients = [f"+1415555{2600 + i}" for i in range(51)]
    batch = (
        await gateway.client.post("/v1/batches", json={"recipients": recipients, "body": "x"})
    ).json()
    await gateway.client.post("/v1/messages", json={"to": "+14155552671", "body": "not in it"})
    async with signed_in(gateway) as person:
        first = await person.get("/dashboard/messages", params={"batch": batch["id"]})
        assert first.text.count('<tr id="row-') == 50
        next_url = re.search(r'<a href="([^"]+)" rel="next">', first.text)
        assert next_url is not None
        assert f"batch={batch['id']}" in next_url.group(1)
        second = await person.get(next_url.group(1).replace("&amp;", "&"))
        ids = re.findall(r'<tr id="row-(msg_\w+)"', first.text + second.text)
        assert sorted(ids, reverse=True) == ids
        assert sorted(ids) == sorted(batch["message_ids"])
        assert 'rel="next"' not in second.text
        assert ">Newest<" in second.text
