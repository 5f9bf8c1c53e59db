"""The dashboard's opt-out page: the list, add, opt back in, CSV import (all or nothing)
and export; every form needs the session's CSRF token."""

from __future__ import annotations

from tests.conftest import Gateway
from tests.integration.conversation_helpers import text_in
from tests.integration.dashboard_helpers import field_error, signed_in


async def test_list_add_import_export_and_opt_back_in(gateway: Gateway) -> None:
    await text_in(gateway, "+14155556701", "STOP")
    async with signed_in(gateway) as browser:
        shown = await browser.get("/dashboard/opt-outs")
        assert shown.status_code == 200
        assert "+14155556701" in shown.text
        assert "keyword" in shown.text
        assert 'href="/dashboard/opt-outs/export.csv"' in shown.text

        bad = await browser.post("/dashboard/opt-outs", {"phone_number": "12"})
        assert bad.status_code == 422
        assert field_error(bad.text, "phone_number")
        added = await browser.post("/dashboard/opt-outs", {"phone_number": "+14155556702"})
        assert added.status_code == 303
        assert "Opted out +14155556702" in (await browser.get(added.headers["location"])).text

        refused = await browser.post(
            "/dashboard/opt-outs/import",
            files={"file": ("list.csv", b"phone_number\n+14155556703\nnonsense\n", "text/csv")},
        )
        assert refused.status_code == 422
        assert "Nothing was imported" in refused.text
        assert "rows[3].phone_number" in refused.text
        imported = await browser.post(
            "/dashboard/opt-outs/import",
            files={"file": ("list.csv", b"phone_number\n+14155556703\n+14155556702\n", "text/csv")},
        )
        assert imported.status_code == 303
        notice = (await browser.get(imported.headers["location"])).text
        assert "Imported 1 new, 1 already opted out." in notice

        filtered = await browser.get("/dashboard/opt-outs", params={"source": "import"})
        assert "+14155556703" in filtered.text
        assert "+14155556702" not in filtered.text
        exported = await browser.get("/dashboard/opt-outs/export.csv")
        assert exported.headers["content-type"].startswith("text/csv")
        assert {line.split(",")[0] for line in exported.text.splitlines()[1:]} == {
            "+14155556701",
            "+14155556702",
            "+14155556703",
        }

        forged = await browser.http.post(
            "/dashboard/opt-outs/remove", data={"phone_number": "+14155556701"}
        )
        assert forged.status_code == 403
        back = await browser.post("/dashboard/opt-outs/remove", {"phone_number": "+14155556701"})
        assert back.status_code == 303
    listed = (await gateway.client.get("/v1/opt-outs")).json()["data"]
    assert {(e["phone_number"], e["source"]) for e in listed} == {
        ("+14155556702", "dashboard"),
        ("+14155556703", "import"),
    }
