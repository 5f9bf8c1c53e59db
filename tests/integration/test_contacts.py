"""``/v1/contacts``: the address book through the native API, the contact's time zone read
before the one the number implies (replies of the appointment pathway, quiet hours), and
AgentPhone's shape of the same contacts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import Gateway
from tests.integration.conversation_helpers import (
    REMINDED,
    demo_persona,
    forget_deliveries,
    script_replies,
    wait_for,
)
from tests.integration.helpers import assert_problem, problem_fields

LOS_ANGELES = ZoneInfo("America/Los_Angeles")
NEW_YORK = ZoneInfo("America/New_York")


async def _add(gateway: Gateway, **body: Any) -> dict[str, Any]:
    response = await gateway.client.post("/v1/contacts", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_contacts_are_created_read_changed_listed_and_deleted(gateway: Gateway) -> None:
    client = gateway.client
    ana = await _add(
        gateway,
        phone_number="+1 (212) 555-0141",
        name=" Ana Ruiz ",
        timezone="America/Los_Angeles",
        metadata={"customer_id": "c-1"},
    )
    assert ana["object"] == "contact"
    assert ana["id"].startswith("ct_")
    assert ana["phone_number"] == "+12125550141"
    assert ana["name"] == "Ana Ruiz"
    assert ana["timezone"] == "America/Los_Angeles"
    assert ana["metadata"] == {"customer_id": "c-1"}
    assert (ana["email"], ana["notes"]) == (None, None)

    fetched = await client.get(f"/v1/contacts/{ana['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == ana

    moved = await client.patch(f"/v1/contacts/{ana['id']}", json={"timezone": "Europe/Paris"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["timezone"] == "Europe/Paris"
    assert moved.json()["name"] == "Ana Ruiz"  # not given: unchanged
    assert moved.json()["metadata"] == {"customer_id": "c-1"}
    cleared = await client.patch(
        f"/v1/contacts/{ana['id']}", json={"timezone": None, "metadata": None}
    )
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["timezone"], cleared.json()["metadata"]) == (None, {})
    refused = await client.patch(f"/v1/contacts/{ana['id']}", json={"name": None})
    assert problem_fields(assert_problem(refused, 422, "validation_failed")) == {
        "name": "cannot be null"
    }

    others = [await _add(gateway, phone_number=f"+1212555015{i}", name=f"P{i}") for i in range(3)]
    first = await client.get("/v1/contacts", params={"limit": 2})
    assert first.status_code == 200
    page = first.json()
    assert [c["id"] for c in page["data"]] == [others[2]["id"], others[1]["id"]]
    rest = (await client.get("/v1/contacts", params={"cursor": page["next_cursor"]})).json()
    assert [c["id"] for c in rest["data"]] == [others[0]["id"], ana["id"]]
    assert rest["next_cursor"] is None
    one = (await client.get("/v1/contacts", params={"phone_number": "+1 212 555 0151"})).json()
    assert [c["id"] for c in one["data"]] == [others[1]["id"]]

    deleted = await client.delete(f"/v1/contacts/{ana['id']}")
    assert deleted.status_code == 204
    assert_problem(await client.get(f"/v1/contacts/{ana['id']}"), 404, "not_found")
    assert_problem(await client.delete(f"/v1/contacts/{ana['id']}"), 404, "not_found")


async def test_bad_contacts_are_refused_naming_the_field(gateway: Gateway) -> None:
    client = gateway.client
    bad_zone = await client.post(
        "/v1/contacts",
        json={"phone_number": "+12125550160", "name": "A", "timezone": "Mars/Olympus"},
    )
    fields = problem_fields(assert_problem(bad_zone, 422, "validation_failed"))
    assert list(fields) == ["timezone"]
    assert "Mars/Olympus" in fields["timezone"]
    for zone in ("", " America/New_York", "EST5EDT/../../etc"):
        answer = await client.post(
            "/v1/contacts", json={"phone_number": "+12125550160", "name": "A", "timezone": zone}
        )
        assert "timezone" in problem_fields(assert_problem(answer, 422, "validation_failed"))
    bad_phone = await client.post("/v1/contacts", json={"phone_number": "12", "name": "A"})
    assert "phone_number" in problem_fields(assert_problem(bad_phone, 422, "validation_failed"))
    no_name = await client.post("/v1/contacts", json={"phone_number": "+12125550160"})
    assert "name" in problem_fields(assert_problem(no_name, 422, "validation_failed"))
    listing = (await client.get("/v1/contacts")).json()
    assert listing["data"] == []  # nothing was stored

    kept = await _add(gateway, phone_number="+12125550160", name="A", timezone="Asia/Tokyo")
    again = await client.post("/v1/contacts", json={"phone_number": "+12125550160", "name": "B"})
    assert_problem(again, 409, "contact_exists")
    changed = await client.patch(f"/v1/contacts/{kept['id']}", json={"timezone": "Nowhere/Land"})
    assert "timezone" in problem_fields(assert_problem(changed, 422, "validation_failed"))
    after = (await client.get(f"/v1/contacts/{kept['id']}")).json()
    assert after["timezone"] == "Asia/Tokyo"


async def test_another_project_never_sees_the_contacts(gateway: Gateway) -> None:
    mine = await _add(gateway, phone_number="+12125550170", name="Mine", timezone="Asia/Tokyo")
    _, other = await gateway.new_project()
    async with other:
        assert (await other.get("/v1/contacts")).json()["data"] == []
        for method in ("GET", "DELETE"):
            answer = await other.request(method, f"/v1/contacts/{mine['id']}")
            assert_problem(answer, 404, "not_found")
        answer = await other.patch(f"/v1/contacts/{mine['id']}", json={"name": "Theirs"})
        assert_problem(answer, 404, "not_found")
        # The same person may be a contact of both projects.
        theirs = await other.post(
            "/v1/contacts", json={"phone_number": mine["phone_number"], "name": "Theirs"}
        )
        assert theirs.status_code == 201, theirs.text
    assert (await gateway.client.get(f"/v1/contacts/{mine['id']}")).json() == mine


async def test_agentphone_contacts_are_the_same_address_book(gateway: Gateway) -> None:
    made = await gateway.client.post(
        "/compat/agentphone/v1/contacts",
        json={"phoneNumber": "+12125550180", "name": "Via AgentPhone"},
    )
    assert made.status_code == 201, made.text
    assert set(made.json()) == {
        "id",
        "phoneNumber",
        "name",
        "email",
        "notes",
        "createdAt",
        "updatedAt",
    }
    native = (await gateway.client.get(f"/v1/contacts/{made.json()['id']}")).json()
    assert (native["phone_number"], native["timezone"], native["metadata"]) == (
        "+12125550180",
        None,
        {},
    )
    zoned = await gateway.client.patch(
        f"/v1/contacts/{native['id']}", json={"timezone": "America/Chicago"}
    )
    assert zoned.status_code == 200, zoned.text
    seen = await gateway.client.get(f"/compat/agentphone/v1/contacts/{native['id']}")
    assert seen.json()["name"] == "Via AgentPhone"


async def test_a_new_time_is_read_in_the_contacts_zone_not_the_numbers(gateway: Gateway) -> None:
    """A New York number whose contact lives in Los Angeles: "4pm" is 4 PM Pacific, stored
    with its offset, and the reply says 4:00 PM."""
    person = "+12125554190"
    await _add(gateway, phone_number=person, name="Ana", timezone="America/Los_Angeles")
    persona = await demo_persona(gateway, name="Reminders contact tz")
    await script_replies(gateway, person, "can we do 4pm instead?")
    response = await gateway.client.post(
        "/v1/messages",
        json={"to": person, "conversation": {"persona_id": persona["id"], "metadata": REMINDED}},
    )
    assert response.status_code == 202, response.text
    shown = await wait_for(gateway, response.json()["conversation_id"], lambda c: c["outcome"])
    assert shown["outcome"] == "rescheduled"
    stored = shown["extracted"]["new_time"]
    new_time = datetime.fromisoformat(stored)
    assert (new_time.hour, new_time.minute) == (16, 0)
    pacific = new_time.astimezone(LOS_ANGELES)
    assert new_time.utcoffset() == pacific.utcoffset()
    assert new_time.utcoffset() != new_time.astimezone(NEW_YORK).utcoffset()
    assert stored.endswith(("-08:00", "-07:00"))
    assert "T16:00:00" in stored
    text = shown["extracted"]["new_time_text"]
    assert text.endswith("at 4:00 PM")
    assert text in shown["messages"][-1]["body"]
    await forget_deliveries(gateway)


async def test_the_conversations_zone_comes_after_the_contacts(gateway: Gateway) -> None:
    """Metadata names Chicago, the contact Los Angeles: the contact wins; without a contact
    the metadata's zone is used."""
    persona = await demo_persona(gateway, name="Reminders zone order")
    results = {}
    for person, contact in (("+12125554191", True), ("+12125554192", False)):
        if contact:
            await _add(gateway, phone_number=person, name="Ana", timezone="America/Los_Angeles")
        await script_replies(gateway, person, "can we do 4pm instead?")
        metadata = {**REMINDED, "timezone": "America/Chicago"}
        conversation = {"persona_id": persona["id"], "metadata": metadata}
        response = await gateway.client.post(
            "/v1/messages", json={"to": person, "conversation": conversation}
        )
        assert response.status_code == 202, response.text
        shown = await wait_for(gateway, response.json()["conversation_id"], lambda c: c["outcome"])
        assert shown["outcome"] == "rescheduled"
        results[contact] = datetime.fromisoformat(shown["extracted"]["new_time"])
    for contact, zone in ((True, LOS_ANGELES), (False, ZoneInfo("America/Chicago"))):
        moment = results[contact]
        assert moment.hour == 16
        assert moment.utcoffset() == moment.astimezone(zone).utcoffset()
    await forget_deliveries(gateway)


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M")


async def test_quiet_hours_are_kept_in_the_contacts_zone(gateway: Gateway) -> None:
    """Quiet hours without a zone of their own: it is night for the Tokyo contact (a New York
    number), so the send waits; the same number without a contact is sent at once."""
    now = datetime.now(UTC)
    tokyo = now.astimezone(ZoneInfo("Asia/Tokyo"))
    start, end = tokyo - timedelta(hours=1), tokyo + timedelta(hours=2)
    new_york_now = now.astimezone(NEW_YORK).replace(tzinfo=None)
    assert abs(new_york_now - tokyo.replace(tzinfo=None)) >= timedelta(hours=12)
    patched = await gateway.client.patch(
        "/v1/project",
        json={"settings": {"quiet_hours": {"start": _clock(start), "end": _clock(end)}}},
    )
    assert patched.status_code == 200, patched.text
    person, stranger = "+12125554193", "+12125554194"
    await _add(gateway, phone_number=person, name="Kenji", timezone="Asia/Tokyo")

    held = await gateway.client.post("/v1/messages", json={"to": person, "body": "night"})
    assert held.status_code == 202, held.text
    assert held.json()["status"] == "scheduled"
    send_at = datetime.fromisoformat(held.json()["send_at"].replace("Z", "+00:00"))
    assert _clock(send_at.astimezone(ZoneInfo("Asia/Tokyo"))) == _clock(end)
    assert now < send_at <= now + timedelta(hours=2, minutes=1)

    sent = await gateway.client.post("/v1/messages", json={"to": stranger, "body": "day"})
    assert sent.json()["status"] == "queued"

    # Cleared, the number's zone (New York, where it is day) applies again.
    (contact,) = (await gateway.client.get("/v1/contacts")).json()["data"]
    await gateway.client.patch(f"/v1/contacts/{contact['id']}", json={"timezone": None})
    again = await gateway.client.post("/v1/messages", json={"to": person, "body": "day now"})
    assert again.json()["status"] == "queued"
    await gateway.client.patch("/v1/project", json={"settings": {"quiet_hours": False}})
    await forget_deliveries(gateway)
