"""``/openapi.json`` declares each vendor's auth on every compat operation (Vida's
``?token=``, PolyAI's two headers, Telegent's bearer from the token exchange, Bland's
``authorization``, AgentPhone's bearer), and a request built from the declared scheme alone,
as Swagger's "Try it out" builds it, is let in, where one without it gets 401."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Gateway

EXPECTED = {
    "vida": [{"VidaToken": []}],
    "polyai": [{"PolyAiAuthToken": [], "PolyAiTokenId": []}],
    "telegent": [{"TelegentBearer": []}],
    "bland": [{"BlandAuthorization": []}],
    "agentphone": [{"AgentPhoneBearer": []}],
}
METHODS = {"get", "post", "put", "patch", "delete"}


async def openapi(gateway: Gateway) -> dict[str, Any]:
    response = await gateway.client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_every_compat_operation_declares_its_vendors_auth(gateway: Gateway) -> None:
    document = await openapi(gateway)
    seen = dict.fromkeys(EXPECTED, 0)
    for path, operations in document["paths"].items():
        if not path.startswith("/compat/"):
            assert all("security" not in op or op["security"] != [] for op in operations.values())
            continue
        vendor = path.split("/")[2]
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            seen[vendor] += 1
            if path == "/compat/telegent/v1.0/oauth2/tokens":
                assert operation["security"] == [], "the exchange itself takes no token"
            else:
                assert operation["security"] == EXPECTED[vendor], (path, method)
    assert all(count > 0 for count in seen.values()), seen
    assert seen["agentphone"] >= 30  # the SDK's messaging resources are all documented
    schemes = document["components"]["securitySchemes"]
    assert schemes["VidaToken"] | {"description": ""} == {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "",
    }
    assert (schemes["PolyAiAuthToken"]["in"], schemes["PolyAiAuthToken"]["name"]) == (
        "header",
        "X-PolyAi-Auth-Token",
    )
    assert (schemes["PolyAiTokenId"]["in"], schemes["PolyAiTokenId"]["name"]) == (
        "header",
        "X-TOKEN-ID",
    )
    assert (schemes["TelegentBearer"]["type"], schemes["TelegentBearer"]["scheme"]) == (
        "http",
        "bearer",
    )
    assert "oauth2/tokens" in schemes["TelegentBearer"]["description"]
    assert (schemes["BlandAuthorization"]["in"], schemes["BlandAuthorization"]["name"]) == (
        "header",
        "authorization",
    )
    assert schemes["AgentPhoneBearer"]["scheme"] == "bearer"
    assert "HTTPBearer" in schemes  # the native API's own scheme is untouched


def credentials(scheme: dict[str, Any], value: str) -> tuple[dict[str, str], dict[str, str]]:
    """The query parameters and headers Swagger UI sends for ``scheme`` filled with
    ``value``."""
    if scheme["type"] == "http":
        return {}, {"Authorization": f"Bearer {value}"}
    if scheme["in"] == "query":
        return {scheme["name"]: value}, {}
    return {}, {scheme["name"]: value}


async def test_a_request_built_from_the_declared_schemes_is_let_in(gateway: Gateway) -> None:
    schemes = (await openapi(gateway))["components"]["securitySchemes"]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app), base_url="http://testserver/compat"
    ) as client:
        exchanged = await client.post(
            "/telegent/v1.0/oauth2/tokens",
            json={
                "AccountKey": gateway.project_id,
                "AccountSecret": gateway.api_key,
                "ApiEndpoint": "https://api.telegent.com",
            },
        )
        assert exchanged.status_code == 200, exchanged.text
        values = {
            "VidaToken": gateway.api_key,
            "PolyAiAuthToken": gateway.api_key,
            "PolyAiTokenId": gateway.project_id,
            "TelegentBearer": exchanged.json()["token"],
            "BlandAuthorization": gateway.api_key,
            "AgentPhoneBearer": gateway.api_key,
        }
        calls = [
            ("vida", "GET", "/vida/api/v2/tasks", None, 200),
            (
                "polyai",
                "POST",
                "/polyai/v1/outbound-sms",
                {"message": "Hi", "user_number": "+14155552671"},
                202,
            ),
            ("telegent", "GET", "/telegent/v1.0/message/details", None, 404),
            ("bland", "GET", "/bland/v1/sms/conversations", None, 200),
            ("agentphone", "GET", "/agentphone/v1/numbers", None, 200),
        ]
        for vendor, method, path, body, status in calls:
            query = {"MessageId": "TMID-X"} if vendor == "telegent" else {}
            params = dict(query)
            headers: dict[str, str] = {}
            for name in EXPECTED[vendor][0]:
                more_params, more_headers = credentials(schemes[name], values[name])
                params |= more_params
                headers |= more_headers
            answer = await client.request(method, path, params=params, headers=headers, json=body)
            assert answer.status_code == status, (vendor, answer.text)
            bare = await client.request(method, path, json=body, params=query)
            assert bare.status_code == 401, (vendor, bare.text)
