"""``/v1/api-keys``: create (secret shown once), list, revoke."""

from __future__ import annotations

import httpx

from tests.conftest import Gateway


async def test_create_list_and_revoke(gateway: Gateway) -> None:
    created = await gateway.client.post("/v1/api-keys", json={"name": "billing agent"})
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith("ask_")
    assert body["prefix"] == body["key"][:8]
    assert body["revoked_at"] is None

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {body['key']}"},
    ) as new_client:
        project = (await new_client.get("/v1/project")).json()
        assert project["id"] == gateway.project_id

        listing = (await gateway.client.get("/v1/api-keys")).json()["data"]
        assert [k["name"] for k in listing] == ["billing agent", "default"]
        assert all("key" not in k for k in listing)

        revoked = await gateway.client.delete(f"/v1/api-keys/{body['id']}")
        assert revoked.status_code == 204
        assert (await new_client.get("/v1/project")).status_code == 401
        again = await gateway.client.delete(f"/v1/api-keys/{body['id']}")
        assert again.status_code == 204
    listing = (await gateway.client.get("/v1/api-keys")).json()["data"]
    assert listing[-1]["id"] == body["id"]
    assert listing[-1]["revoked_at"] is not None


async def test_bad_input_names_the_field(gateway: Gateway) -> None:
    response = await gateway.client.post("/v1/api-keys", json={"name": "  "})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "name", "message": "must not be empty"}]
    unknown = await gateway.client.post("/v1/api-keys", json={"name": "x", "scope": "all"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "scope"


async def test_last_key_cannot_be_revoked_and_others_are_not_found(gateway: Gateway) -> None:
    [own] = (await gateway.client.get("/v1/api-keys")).json()["data"]
    response = await gateway.client.delete(f"/v1/api-keys/{own['id']}")
    assert response.status_code == 409
    assert response.json()["code"] == "last_api_key"
    assert (await gateway.client.get("/v1/project")).status_code == 200

    _, other = await gateway.new_project()
    [theirs] = (await other.get("/v1/api-keys")).json()["data"]
    missing = await gateway.client.delete(f"/v1/api-keys/{theirs['id']}")
    assert missing.status_code == 404
    await other.aclose()
