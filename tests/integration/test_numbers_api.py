"""``/v1/numbers`` (the sender pool) and ``/v1/project``."""

from __future__ import annotations

from decimal import Decimal

from agentsms.store import tables
from tests.conftest import Gateway
from tests.integration.helpers import assert_problem, count, problem_fields


async def _pool_size(gateway: Gateway, project_id: str | None = None) -> int:
    return await count(
        gateway, tables.numbers, tables.numbers.c.project_id == (project_id or gateway.project_id)
    )


async def test_add_list_get_delete_a_number(gateway: Gateway) -> None:
    response = await gateway.client.post("/v1/numbers", json={"number": "+44 7400 123456"})

    assert response.status_code == 201, response.text
    number = response.json()
    assert number["id"].startswith("num_")
    assert number["number"] == "+447400123456"
    assert number["provider"] == "simulator"
    assert number["country"] == "GB"
    assert number["capabilities"] == ["sms", "mms"]
    assert number["throughput_mps"] == 1.0  # a long code's default
    assert number["price_per_segment"] == "0.000000"
    assert Decimal(number["price_per_segment"]) == 0
    assert await _pool_size(gateway) == 2

    listed = (await gateway.client.get("/v1/numbers")).json()["data"]
    by_number = {n["number"]: n for n in listed}
    assert set(by_number) == {"+14155550100", "+447400123456"}
    simulator = by_number["+14155550100"]
    assert simulator["throughput_mps"] == 100.0
    assert simulator["capabilities"] == ["sms", "mms", "whatsapp", "imessage"]
    assert simulator["country"] == "US"
    fetched = await gateway.client.get(f"/v1/numbers/{number['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == number

    deleted = await gateway.client.delete(f"/v1/numbers/{number['id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert await _pool_size(gateway) == 1
    assert_problem(await gateway.client.get(f"/v1/numbers/{number['id']}"), 404, "not_found")
    assert_problem(await gateway.client.delete(f"/v1/numbers/{number['id']}"), 404, "not_found")


async def test_number_with_all_fields(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/numbers",
        json={
            "number": "+14155550104",
            "capabilities": ["sms", "whatsapp"],
            "throughput_mps": 30,
            "price_per_segment": "0.0079",
            "currency": "eur",
            "settings": {"delivery_delay_seconds": 0.1},
        },
    )
    assert response.status_code == 201, response.text
    number = response.json()
    assert number["capabilities"] == ["sms", "whatsapp"]
    assert number["throughput_mps"] == 30.0
    assert Decimal(number["price_per_segment"]) == Decimal("0.0079")
    assert number["currency"] == "EUR"
    assert number["settings"] == {"delivery_delay_seconds": 0.1}
    async with gateway.db.read() as conn:
        row = (
            (await conn.execute(tables.numbers.select().where(tables.numbers.c.id == number["id"])))
            .mappings()
            .one()
        )
    assert row["project_id"] == gateway.project_id
    assert row["capabilities"] == ["sms", "whatsapp"]
    assert row["settings"] == {"delivery_delay_seconds": 0.1}


async def test_invalid_numbers_are_refused(gateway: Gateway) -> None:
    cases = [
        ({"number": "+1415555"}, "number", "too short for US"),
        ({"number": "4155550105"}, "number", "must start with + and country code"),
        ({"number": "+14155550105", "provider": "acme"}, "provider", None),
        ({"number": "+14155550105", "capabilities": ["fax"]}, "capabilities[0]", None),
        ({"number": "+14155550105", "capabilities": []}, "capabilities", None),
        ({"number": "+14155550105", "throughput_mps": 0}, "throughput_mps", None),
        ({"number": "+14155550105", "price_per_segment": "-1"}, "price_per_segment", None),
        ({"number": "+14155550105", "colour": "red"}, "colour", "unknown field"),
        (
            {"number": "+14155550105", "settings": {"dedupe_references": "no"}},
            "settings.dedupe_references",
            "must be true or false",
        ),
        (
            {"number": "+14155550105", "settings": {"dedupe_references": 0}},
            "settings.dedupe_references",
            "must be true or false",
        ),
    ]
    for payload, field, message in cases:
        response = await gateway.client.post("/v1/numbers", json=payload)
        fields = problem_fields(assert_problem(response, 422, "validation_failed"))
        assert field in fields, (payload, fields)
        if message is not None:
            assert fields[field] == message
    assert await _pool_size(gateway) == 1


async def test_a_number_is_in_a_pool_once(gateway: Gateway) -> None:
    again = await gateway.client.post("/v1/numbers", json={"number": "+1 415 555 0100"})
    body = assert_problem(again, 409, "number_exists")
    assert "+14155550100" in body["detail"]
    assert await _pool_size(gateway) == 1


async def test_another_projects_number_is_404(gateway: Gateway) -> None:
    number = (await gateway.client.post("/v1/numbers", json={"number": "+14155550106"})).json()
    other_id, other = await gateway.new_project()
    async with other:
        assert_problem(await other.get(f"/v1/numbers/{number['id']}"), 404, "not_found")
        assert_problem(await other.delete(f"/v1/numbers/{number['id']}"), 404, "not_found")
        listed = (await other.get("/v1/numbers")).json()["data"]
    assert [n["number"] for n in listed] == ["+14155550199"]
    assert await _pool_size(gateway) == 2
    assert await _pool_size(gateway, other_id) == 1


async def test_project_is_the_calling_keys(gateway: Gateway) -> None:
    response = await gateway.client.get("/v1/project")
    assert response.status_code == 200
    project = response.json()
    assert project["id"] == gateway.project_id
    assert project["id"].startswith("proj_")
    assert project["name"] == "test"
    assert isinstance(project["settings"], dict)
    other_id, other = await gateway.new_project()
    async with other:
        theirs = (await other.get("/v1/project")).json()
    assert theirs["id"] == other_id != project["id"]


async def test_patch_project_settings(gateway: Gateway) -> None:
    response = await gateway.client.patch(
        "/v1/project", json={"settings": {"rate_limit_per_second": 500}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["settings"]["rate_limit_per_second"] == 500
    assert (await gateway.client.get("/v1/project")).json()["settings"][
        "rate_limit_per_second"
    ] == 500
    async with gateway.db.read() as conn:
        stored = (
            (
                await conn.execute(
                    tables.projects.select().where(tables.projects.c.id == gateway.project_id)
                )
            )
            .mappings()
            .one()
        )
    assert stored["settings"]["rate_limit_per_second"] == 500

    for bad in (0, -3, "fast", 1.5, True, None):
        refused = await gateway.client.patch(
            "/v1/project", json={"settings": {"rate_limit_per_second": bad}}
        )
        fields = problem_fields(assert_problem(refused, 422, "validation_failed"))
        assert "settings.rate_limit_per_second" in fields
    unknown = await gateway.client.patch("/v1/project", json={"colour": "red"})
    assert problem_fields(assert_problem(unknown, 422, "validation_failed")) == {
        "colour": "unknown field"
    }
    assert (await gateway.client.get("/v1/project")).json()["settings"][
        "rate_limit_per_second"
    ] == 500


async def test_patch_project_renames_and_refuses_unknown_settings(gateway: Gateway) -> None:
    renamed = await gateway.client.patch("/v1/project", json={"name": "  Reminders  "})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Reminders"
    assert (await gateway.client.get("/v1/project")).json()["name"] == "Reminders"

    unknown = await gateway.client.patch("/v1/project", json={"settings": {"colour": "red"}})
    body = assert_problem(unknown, 422, "validation_failed")
    assert list(problem_fields(body)) == ["settings.colour"]
    empty = await gateway.client.patch("/v1/project", json={"name": " "})
    assert_problem(empty, 422, "validation_failed")
    async with gateway.db.read() as conn:
        row = (
            (
                await conn.execute(
                    tables.projects.select().where(tables.projects.c.id == gateway.project_id)
                )
            )
            .mappings()
            .one()
        )
    assert row["name"] == "Reminders"
    assert "colour" not in row["settings"]
