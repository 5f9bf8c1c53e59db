"""The project's LLM API key in the dashboard: stored, replaced and removed from the
personas page, and never shown again (nor a webhook agent's secret)."""

from __future__ import annotations

from tests.conftest import Gateway
from tests.integration.conversation_helpers import SECRET, webhook_agent
from tests.integration.dashboard_helpers import field_error, signed_in

RAW_KEY = "sk-dashboard-0f1e2d3c4b5a69788796"


async def test_the_llm_key_is_set_from_the_dashboard_and_never_shown(gateway: Gateway) -> None:
    persona = await gateway.client.post(
        "/v1/personas", json={"name": "Hook", "agent": webhook_agent("https://agent.example/t")}
    )
    assert persona.status_code == 201, persona.text
    async with signed_in(gateway) as viewer:
        empty = await viewer.post("/dashboard/personas/llm-key", {"api_key": "  "})
        assert empty.status_code == 422
        assert field_error(empty.text, "api_key") == "must not be empty"

        saved = await viewer.post("/dashboard/personas/llm-key", {"api_key": RAW_KEY})
        assert saved.status_code == 303
        page = await viewer.get("/dashboard/personas")
        assert f"A key ending in …{RAW_KEY[-4:]} is stored." in page.text
        assert RAW_KEY not in page.text
        assert SECRET not in page.text
        assert SECRET.removeprefix("whsec_") not in page.text
        assert (await gateway.client.get("/v1/llm-credentials")).json()["api_key_set"] is True

        removed = await viewer.post("/dashboard/personas/llm-key", {"remove": "1"})
        assert removed.status_code == 303
        assert "No key stored." in (await viewer.get("/dashboard/personas")).text
    assert (await gateway.client.get("/v1/llm-credentials")).json()["api_key_set"] is False
