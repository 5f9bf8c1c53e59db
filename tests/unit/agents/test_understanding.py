"""The built-in reply understanding: the issue's examples, negation, times in the person's
zone, and the thresholds on the evaluation set (benchmarks/data/understanding_eval.yaml)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from benchmarks.bench_understanding import CLASSES, MORE_SET, evaluate, load_cases, report

from agentsms.agents.understanding import extract_time, normalize, understand

LOS_ANGELES = ZoneInfo("America/Los_Angeles")
MONDAY_9AM = datetime(2026, 12, 7, 9, 0, tzinfo=LOS_ANGELES)


def intent_of(text: str) -> str:
    return understand(text, MONDAY_9AM, LOS_ANGELES).intent


def test_the_evaluation_set_meets_the_targets() -> None:
    cases = load_cases()
    assert len(cases) >= 400
    assert {case.expected for case in cases} == set(CLASSES)
    results = asyncio.run(evaluate(cases))
    table = report(results)
    right = sum(r.right for r in results)
    assert right / len(results) >= 0.97, table
    assert sum(r.wrong_closed for r in results) == 0, table
    for name in CLASSES:
        mine = [r for r in results if r.case.expected == name]
        assert sum(r.right for r in mine) / len(mine) >= 0.9, (name, table)


@pytest.mark.parametrize(
    "text",
    [
        "I'll be there",
        "absolutely",
        "that works",
        "yep",
        "sure thing",
        "👍",
        "👍🏽",
        "ok see you then",
        "Confirmed!",
        "yse",
        "yess",
        "ya",
        "don't worry I'll be there",
        "no problem, see you then",
        "cancel? no way, I'll be there",
        "No need to reschedule, I'll be there",
        "YES I WILL BE THERE",
        "oui",
        "si",
        "vale",
    ],
)
def test_affirmations(text: str) -> None:
    assert intent_of(text) == "confirm"


@pytest.mark.parametrize(
    "text",
    [
        "can't make it",
        "not going to work",
        "I don't think so",
        "I don't need it anymore",
        "please cancel",
        "cancel my appointment",
        "no",
        "Absolutely not",
        "No I need to cancel",
        "I can't come tomorrow, please cancel",
    ],
)
def test_negations_and_cancellations(text: str) -> None:
    assert intent_of(text) == "cancel"


@pytest.mark.parametrize(
    ("text", "iso", "readable"),
    [
        ("can we do 4pm instead?", "2026-12-07T16:00:00-08:00", "Monday, December 7 at 4:00 PM"),
        (
            "not tomorrow, how about Thursday at 2",
            "2026-12-10T14:00:00-08:00",
            "Thursday, December 10 at 2:00 PM",
        ),
        (
            "any chance of 9:30 instead",
            "2026-12-07T09:30:00-08:00",
            "Monday, December 7 at 9:30 AM",
        ),
        (
            "Can we make it 4 instead of 3?",
            "2026-12-07T16:00:00-08:00",
            "Monday, December 7 at 4:00 PM",
        ),
        ("Can't do 3, but 5 works", "2026-12-07T17:00:00-08:00", "Monday, December 7 at 5:00 PM"),
        ("Thursday", "2026-12-10", "Thursday, December 10"),
        ("Dec 10th at 3", "2026-12-10T15:00:00-08:00", "Thursday, December 10 at 3:00 PM"),
    ],
)
def test_a_time_in_the_reply_is_a_reschedule_proposal(text: str, iso: str, readable: str) -> None:
    understood = understand(text, MONDAY_9AM, LOS_ANGELES)
    assert (understood.intent, understood.when, understood.when_text) == (
        "reschedule",
        iso,
        readable,
    )
    assert extract_time(text, MONDAY_9AM, LOS_ANGELES) == (iso, readable)


@pytest.mark.parametrize(
    "text",
    [
        "need to reschedule",
        "not tomorrow",
        "Tomorrow doesn't work for me",
        "can we move it",
        "That doesn't work for me, can we change?",
        "I need to push my appointment",
    ],
)
def test_reschedule_without_a_time(text: str) -> None:
    understood = understand(text, MONDAY_9AM, LOS_ANGELES)
    assert (understood.intent, understood.when) == ("reschedule", None)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("What's the address?", "question"),
        ("Is it still at 3?", "question"),
        ("Is there a fee if I cancel?", "question"),
        ("Can I cancel if something comes up?", "question"),
        ("How do I reschedule if I need to?", "question"),
        ("maybe", "unclear"),
        ("I'll try to make it", "unclear"),
        ("I think so", "unclear"),
        ("thanks", "unclear"),
        ("yes and no", "unclear"),
        ("I'll stop by later to drop off the forms", "unclear"),
        ("", "unclear"),
    ],
)
def test_questions_and_anything_unsure_never_close(text: str, intent: str) -> None:
    assert intent_of(text) == intent


def test_relative_days_are_in_the_persons_zone() -> None:
    # 23:30 on Monday in Los Angeles is already Tuesday in UTC: "tomorrow" is Tuesday there.
    late = datetime(2026, 12, 7, 23, 30, tzinfo=LOS_ANGELES)
    understood = understand("tomorrow at 4pm?", late, LOS_ANGELES)
    assert understood.when == "2026-12-08T16:00:00-08:00"
    tokyo = understand("tomorrow at 4pm?", late, ZoneInfo("Asia/Tokyo"))
    assert tokyo.when == "2026-12-09T16:00:00+09:00"


def test_normalisation() -> None:
    assert normalize("\uff39\uff25\uff33\u200b!") == "yes!"  # full-width, zero-width
    assert normalize("👍🏾") == "yes"
    assert normalize("I\u2019LL  be\tthere 🙂") == "i'll be there"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("yes, I will bring 2 forms", "confirm"),
        ("see you at 3 in room 12", "confirm"),
        ("Yes, I'll be there. I get off work at 5", "confirm"),
        ("Running 10 minutes late", "unclear"),
        ("I owe $50?", "question"),
        ("I am in room 5", "unclear"),
    ],
)
def test_numbers_that_are_not_a_proposed_time(text: str, intent: str) -> None:
    understood = understand(text, MONDAY_9AM, LOS_ANGELES)
    assert (understood.intent, understood.when) == (intent, None)


@pytest.mark.parametrize(
    "text",
    [
        "my birthday is on Friday lol",
        "I had an appointment last Tuesday",
        "I'll call tomorrow",
        "My insurance changed on Monday, is that a problem?",
        "I got a bill from March, can someone explain it?",
    ],
)
def test_a_date_in_passing_is_no_proposal(text: str) -> None:
    understood = understand(text, MONDAY_9AM, LOS_ANGELES)
    assert understood.intent in ("unclear", "question")
    assert understood.when is None


def test_the_second_evaluation_set_meets_the_targets() -> None:
    """Replies written after the first set and not tuned on one by one."""
    cases = load_cases(MORE_SET)
    assert len(cases) >= 150
    results = asyncio.run(evaluate(cases))
    table = report(results)
    assert sum(r.right for r in results) / len(results) >= 0.95, table
    assert sum(r.wrong_closed for r in results) == 0, table


BOOKED = "2026-12-08T15:00:00-08:00"  # the reminder's "tomorrow at 3 PM"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("3 works", "confirm"),
        ("3pm tomorrow is fine", "confirm"),
        ("tomorrow at 3 is perfect", "confirm"),
        ("I have work at 3, can we change it?", "reschedule"),
        ("is it still at 3?", "question"),
    ],
)
def test_the_booked_time_is_no_new_time(text: str, intent: str) -> None:
    found = understand(text, MONDAY_9AM, LOS_ANGELES, booked=BOOKED)
    assert (found.intent, found.when, found.names_booked_time) == (intent, None, True)
    # Without knowing the booked time, the same text proposes it as a new one.
    assert understand(text, MONDAY_9AM, LOS_ANGELES).names_booked_time is False


@pytest.mark.parametrize(
    ("text", "when"),
    [
        ("can we do 4pm instead?", "2026-12-08T16:00:00-08:00"),  # the booked day
        ("I have a work thing at 3, could we do 5 instead?", "2026-12-08T17:00:00-08:00"),
        ("thursday at 3", "2026-12-10T15:00:00-08:00"),  # a day named: that day
        ("next tuesday at 3?", "2026-12-15T15:00:00-08:00"),  # not tomorrow: next week's
        ("can we do wensday at 10", "2026-12-09T10:00:00-08:00"),
        ("does 4 work instead?", "2026-12-08T16:00:00-08:00"),
    ],
)
def test_a_new_time_is_read_against_the_booked_one(text: str, when: str) -> None:
    found = understand(text, MONDAY_9AM, LOS_ANGELES, booked=BOOKED)
    assert (found.intent, found.when) == ("reschedule", when)


def test_a_stale_booked_date_does_not_move_a_bare_time() -> None:
    a_year_on = "2027-12-08T15:00:00-08:00"
    found = understand("can we do 4pm instead?", MONDAY_9AM, LOS_ANGELES, booked=a_year_on)
    assert found.when == "2026-12-07T16:00:00-08:00"


@pytest.mark.parametrize("text", ["I'll confirm later", "will confirm tonight", "keep it please"])
def test_later_is_not_now(text: str) -> None:
    expected = "confirm" if text.startswith("keep") else "unclear"
    assert intent_of(text) == expected


def test_a_booked_time_given_as_a_function_is_read_only_for_a_reply_proposing_a_time() -> None:
    """The flow agent passes the question's time as a function: reading it (a date parse of
    the agent's text) is skipped for the replies that name no time, and changes nothing."""
    booked_at = "2026-12-08T15:00:00-08:00"
    asked: list[str] = []

    def booked() -> str | None:
        asked.append(booked_at)
        return booked_at

    for text in ("yes see you then", "cant make it, cancel please", "ok"):
        lazy = understand(text, MONDAY_9AM, LOS_ANGELES, booked=booked)
        assert lazy == understand(text, MONDAY_9AM, LOS_ANGELES, booked=booked_at)
    assert asked == []
    for text in ("3pm works", "can we do thursday at 2 instead?", "not 3, how about 5"):
        lazy = understand(text, MONDAY_9AM, LOS_ANGELES, booked=booked)
        assert lazy == understand(text, MONDAY_9AM, LOS_ANGELES, booked=booked_at)
    assert asked == [booked_at] * 3
