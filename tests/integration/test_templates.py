"""``/v1/templates``: storing, listing, reading and deleting templates, and sending one
with ``template_id`` + ``variables``."""

from __future__ import annotations

from tests.conftest import Gateway
from tests.integration.helpers import assert_problem, message_rows, problem_fields

BODY = "Hi {{1}} {{2}}, your {{3}} renews soon. {{1}}, reply STOP to opt out."


async def test_templates_are_stored_listed_read_and_deleted(gateway: Gateway) -> None:
    created = await gateway.client.post(
        "/v1/templates", json={"name": "renewal", "body": BODY, "key": "HX0123456789"}
    )
    assert created.status_code == 201, created.text
    template = created.json()
    assert template["id"].startswith("tpl_")
    assert template["name"] == "renewal"
    assert template["key"] == "HX0123456789"
    assert template["body"] == BODY
    assert template["variables"] == ["1", "2", "3"]
    assert isinstance(template["created_at"], str)

    other = await gateway.client.post("/v1/templates", json={"name": "plain", "body": "Hello"})
    assert other.status_code == 201, other.text
    assert other.json()["key"] is None
    assert other.json()["variables"] == []

    by_id = await gateway.client.get(f"/v1/templates/{template['id']}")
    by_key = await gateway.client.get("/v1/templates/HX0123456789")
    assert by_id.json() == template
    assert by_key.json() == template

    page = await gateway.client.get("/v1/templates", params={"limit": 1})
    assert [t["id"] for t in page.json()["data"]] == [other.json()["id"]]
    rest = await gateway.client.get("/v1/templates", params={"cursor": page.json()["next_cursor"]})
    assert [t["id"] for t in rest.json()["data"]] == [template["id"]]
    assert rest.json()["next_cursor"] is None

    taken = await gateway.client.post(
        "/v1/templates", json={"name": "again", "body": "x", "key": "HX0123456789"}
    )
    assert_problem(taken, 409, "template_key_taken")
    empty = await gateway.client.post("/v1/templates", json={"name": "e", "body": "  "})
    assert problem_fields(assert_problem(empty, 422, "validation_failed")) == {
        "body": "must not be empty"
    }

    deleted = await gateway.client.delete(f"/v1/templates/{template['id']}")
    assert deleted.status_code == 204
    gone = await gateway.client.get(f"/v1/templates/{template['id']}")
    assert_problem(gone, 404, "not_found")
    assert_problem(await gateway.client.delete("/v1/templates/HX0123456789"), 404, "not_found")

    _, stranger = await gateway.new_project()
    async with stranger:
        hidden = await stranger.get(f"/v1/templates/{other.json()['id']}")
    assert_problem(hidden, 404, "not_found")


async def test_a_message_is_sent_from_a_template(gateway: Gateway) -> None:
    await gateway.client.post(
        "/v1/templates", json={"name": "renewal", "body": BODY, "key": "HXabc"}
    )
    sent = await gateway.client.post(
        "/v1/messages",
        json={
            "to": "+14155552601",
            "template_id": "HXabc",
            "variables": {"1": "John", "2": "Smith", "3": "Premium Plan"},
        },
    )
    assert sent.status_code == 202, sent.text
    expected = "Hi John Smith, your Premium Plan renews soon. John, reply STOP to opt out."
    assert sent.json()["body"] == expected
    (row,) = await message_rows(gateway)
    assert row["body"] == expected

    missing = await gateway.client.post(
        "/v1/messages",
        json={"to": "+14155552601", "template_id": "HXabc", "variables": {"1": "John"}},
    )
    assert problem_fields(assert_problem(missing, 422, "validation_failed")) == {
        "body": "missing variable '2'"
    }
    unknown = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552601", "template_id": "HXnone"}
    )
    assert problem_fields(assert_problem(unknown, 422, "validation_failed")) == {
        "template_id": "no template HXnone"
    }
    both = await gateway.client.post(
        "/v1/messages", json={"to": "+14155552601", "template_id": "HXabc", "body": "x"}
    )
    assert problem_fields(assert_problem(both, 422, "validation_failed")) == {
        "template_id": "give body or template_id, not both"
    }
    assert len(await message_rows(gateway)) == 1
