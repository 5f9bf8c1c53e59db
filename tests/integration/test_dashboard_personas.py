"""Personas and pathways in the dashboard: upload with errors naming the node, the graph,
versions, personas created and published."""

from __future__ import annotations

import json
import re

from agentsms.agents import load_demo_pathway
from tests.conftest import Gateway
from tests.integration.dashboard_helpers import browser, field_error, signed_in

BROKEN = """
start: hello
nodes:
  - {id: hello, type: say, text: "Hi", next: nowhere}
  - {id: bye, type: end, outcome: done}
"""


def _document_errors(html: str) -> list[str]:
    found = re.search(
        r'<ul class="field-error" id="document-error" role="alert">(.*?)</ul>', html, re.S
    )
    return re.findall(r"<li>(.*?)</li>", found.group(1)) if found else []


async def test_persona_pages_need_a_session(gateway: Gateway) -> None:
    async with browser(gateway) as anonymous:
        for path in ("/dashboard/personas", "/dashboard/pathways/pw_x"):
            response = await anonymous.get(path)
            assert response.status_code == 303


async def test_a_broken_pathway_is_refused_naming_the_node(gateway: Gateway) -> None:
    async with signed_in(gateway) as viewer:
        refused = await viewer.http.post(
            "/dashboard/pathways",
            data={"csrf_token": viewer.csrf, "name": ""},
            files={"file": ("flow.yaml", BROKEN.encode(), "application/yaml")},
        )
        assert refused.status_code == 422
        assert field_error(refused.text, "name") == "must not be empty"
        named = await viewer.http.post(
            "/dashboard/pathways",
            data={"csrf_token": viewer.csrf, "name": "Broken"},
            files={"file": ("flow.yaml", BROKEN.encode(), "application/yaml")},
        )
        assert named.status_code == 422
        errors = _document_errors(named.text)
        assert any(e.startswith("nodes.hello.next: unknown node") for e in errors), errors
        assert any("nowhere" in e for e in errors), errors
        empty = await viewer.post("/dashboard/pathways", {"name": "Nothing"})
        assert empty.status_code == 422
        assert _document_errors(empty.text) == ["choose a JSON or YAML file, or paste the pathway"]
        listed = await viewer.get("/dashboard/personas")
    assert "Broken" not in listed.text
    assert (await gateway.client.get("/v1/pathways")).json()["data"] == []


async def test_upload_draw_version_and_publish_a_persona(gateway: Gateway) -> None:
    demo = load_demo_pathway()
    async with signed_in(gateway) as viewer:
        made = await viewer.post(
            "/dashboard/pathways", {"name": "Reminders", "document": json.dumps(demo)}
        )
        assert made.status_code == 303, made.text
        pathway_id = made.headers["location"].split("/")[-1].split("?")[0]
        shown = await viewer.get(made.headers["location"])
        assert "saved as version 1" in shown.text
        assert '<svg xmlns="http://www.w3.org/2000/svg" class="pathway-graph"' in shown.text
        for node in demo["nodes"]:
            assert f'data-node="{node["id"]}"' in shown.text
        assert 'data-from="remind" data-to="confirmed"' in shown.text

        changed = dict(demo, variables={"name": "friend", "time": "soon"})
        second = await viewer.http.post(
            f"/dashboard/pathways/{pathway_id}/versions",
            data={"csrf_token": viewer.csrf},
            files={"file": ("v2.json", json.dumps(changed).encode(), "application/json")},
        )
        assert second.status_code == 303, second.text
        assert "version 2" in (await viewer.get(second.headers["location"])).text

        nameless = await viewer.post("/dashboard/personas", {"name": " ", "pathway_id": pathway_id})
        assert nameless.status_code == 422
        assert field_error(nameless.text, "name") == "must not be empty"
        created = await viewer.post(
            "/dashboard/personas", {"name": "Front desk", "pathway_id": pathway_id}
        )
        assert created.status_code == 303
        persona = (await gateway.client.get("/v1/personas")).json()["data"][0]
        assert persona["production_version"] is None
        published = await viewer.post(
            f"/dashboard/personas/{persona['id']}/publish", {"version": "1"}
        )
        assert published.status_code == 303
        page = await viewer.get(published.headers["location"])
        assert "version 1 is in production" in page.text
        viewer.csrf = "forged"
        forged = await viewer.post(f"/dashboard/personas/{persona['id']}/publish", {"version": "1"})
        assert forged.status_code == 403
    versions = (await gateway.client.get(f"/v1/pathways/{pathway_id}")).json()
    assert [v["version"] for v in versions["versions"]] == [1, 2]
    persona = (await gateway.client.get(f"/v1/personas/{persona['id']}")).json()
    assert persona["production_version"] == 1
