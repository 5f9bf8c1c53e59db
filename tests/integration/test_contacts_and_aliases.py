"""Native additions made for the vendors: contact usernames as recipients (project setting
``contacts``), a persona's chosen numeric alias, per-recipient conversation settings."""

from __future__ import annotations

from tests.conftest import Gateway
from tests.integration.helpers import assert_problem, message_rows, problem_fields


async def test_a_contact_username_stands_for_its_number(gateway: Gateway) -> None:
    patched = await gateway.client.patch(
        "/v1/project", json={"settings": {"contacts": {"ana_b": "+14155553001"}}}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["settings"]["contacts"] == {"ana_b": "+14155553001"}
    gateway.app.state.agentsms.key_cache.clear()
    sent = await gateway.client.post("/v1/messages", json={"to": "@Ana_B", "body": "hi"})
    assert sent.status_code == 202, sent.text
    assert sent.json()["to"] == "+14155553001"
    batch = await gateway.client.post(
        "/v1/batches", json={"recipients": ["ana_b", "+14155553002"], "body": "all"}
    )
    assert batch.status_code == 202, batch.text
    unknown = await gateway.client.post("/v1/messages", json={"to": "zed", "body": "hi"})
    fields = problem_fields(assert_problem(unknown, 422, "validation_failed"))
    assert fields == {"to": "is neither a phone number nor a username of this project's contacts"}
    garbage = await gateway.client.post("/v1/messages", json={"to": "12", "body": "hi"})
    assert problem_fields(garbage.json())["to"] == "must start with + and country code"
    rows = await message_rows(gateway)
    assert [r["to_number"] for r in rows] == ["+14155553001", "+14155553001", "+14155553002"]


async def test_contacts_setting_is_validated(gateway: Gateway) -> None:
    for bad, mention in (
        ([], "must be an object"),
        ({"ana": "0415"}, "ana: must start with +"),
        ({"a b": "+14155553001"}, "not a username"),
        ({"12345": "+14155553001"}, "not a username"),
    ):
        response = await gateway.client.patch("/v1/project", json={"settings": {"contacts": bad}})
        fields = problem_fields(assert_problem(response, 422, "validation_failed"))
        assert mention in fields["settings.contacts"], fields


async def test_a_persona_may_choose_its_numeric_alias(gateway: Gateway) -> None:
    agent = {"kind": "webhook", "url": "https://agent.example.com/turn", "secret": "s" * 24}
    chosen = await gateway.client.post(
        "/v1/personas", json={"name": "A", "alias": 1234, "agent": agent}
    )
    assert chosen.status_code == 201, chosen.text
    assert chosen.json()["alias"] == 1234
    following = await gateway.client.post("/v1/personas", json={"name": "B", "agent": agent})
    assert following.json()["alias"] == 1235
    taken = await gateway.client.post(
        "/v1/personas", json={"name": "C", "alias": 1234, "agent": agent}
    )
    assert_problem(taken, 409, "alias_taken")
    by_alias = await gateway.client.get("/v1/personas/1234")
    assert by_alias.json()["id"] == chosen.json()["id"]
