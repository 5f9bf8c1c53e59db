"""The window rule a worker process sends its late messages by (``core.pacing``)."""

from __future__ import annotations

import bisect
import random

import pytest

from agentsms.core import pacing
from agentsms.core.pacing import Ledger

SLACK = 0.02
# Window edges are taken a little on the safe side (``pacing._EDGE``).
_EDGES = 1e-5


def most_in_a_second(times: list[float]) -> int:
    ordered = sorted(times)
    return max(bisect.bisect_left(ordered, t + 1.0) - i for i, t in enumerate(ordered))


def schedule(rate: int, start: float, count: int) -> list[float]:
    interval = (1 + SLACK) / rate
    return [start + i * interval for i in range(count)]


def test_a_late_process_sends_its_overdue_messages_at_once_then_keeps_to_its_slots() -> None:
    rate = 10
    slots = schedule(rate, 1000.0, 30)  # three seconds of one process's own slots
    ledger = Ledger(SLACK)
    ledger.hold(slots)
    # The process woke up half a second after its first slot: five sends are overdue.
    now = slots[0] + 0.5
    overdue = sum(1 for s in slots if s < now)
    assert overdue == 5
    # They may all go now (the window ending at now holds their five slots), no more: a
    # window from just before now would hold ten otherwise, with five slots in its span.
    assert ledger.room(now) == overdue
    ledger.sent(now, overdue, irregular=True)
    sends = [now] * overdue
    assert not ledger.regular(now + 0.5)
    # The later messages go at their slots while the second from the late ones has room:
    # as many as went late find none and need fresh slots, no more.
    displaced = []
    for slot in slots[overdue:]:
        if ledger.room(slot) >= 1:
            ledger.sent(slot, 1, irregular=False)
            sends.append(slot)
        else:
            displaced.append(slot)
    assert len(displaced) == overdue
    assert all(s < now + 1 for s in displaced)  # all within the second from the late ones
    assert ledger.regular(slots[-1])
    # A process whose windows would hold more than the rate (one more late send) is refused.
    assert ledger.room(slots[-1] + 0.5) == 0
    assert most_in_a_second(sends) <= rate


def test_a_lone_late_send_at_the_end_of_its_slots_is_refused() -> None:
    ledger = Ledger(SLACK)
    (slot,) = schedule(1, 1000.0, 1)
    ledger.hold([slot])
    # At its slot it could go; 0.1 s late, the window from now holds none of its slots,
    # and whoever holds the next slot (1.02 s after it) may send in that window. So may
    # they in the window from a little after now, where the carrier may take a late send.
    assert ledger.room(slot) == 1
    assert ledger.room(slot + 0.01) == 0
    assert ledger.room(slot + 0.1) == 0
    # A fresh slot within the second makes room for it at once.
    ledger.hold([slot + 1.02])
    assert ledger.room(slot + 0.1) == 1


def fewest_in_a_second(times: list[float]) -> int:
    """The fewest sends in a window ``[t, t + 1)`` starting at a send, of those ending by
    the last send."""
    ordered = sorted(times)
    return min(
        bisect.bisect_left(ordered, t + 1.0) - i
        for i, t in enumerate(ordered)
        if t + 1.0 <= ordered[-1]
    )


def test_sends_displaced_by_late_ones_wait_a_second_from_them_and_keep_their_slots() -> None:
    """A process that sent two overdue messages at once borrowed the room of two later
    slots: the two sends refused for it a second later wait until the late ones stop
    counting (``Ledger.opening``, as late after their slots as those were) and go then,
    and so on each second. No second falls short; only at the end of the process's slots
    do two sends find no room to come and need fresh slots (re-slotting each refused send
    at once loses a slot in the second after the late ones instead)."""
    rate = 10
    slots = schedule(rate, 1000.0, 40)
    ledger = Ledger(SLACK)
    ledger.hold(slots)
    lateness = 0.15
    now = slots[0] + lateness
    assert [slot for slot in slots if slot < now] == slots[:2]
    assert ledger.room(now) >= 2
    ledger.sent(now, 2, irregular=True)
    sends = [now, now]
    pending = [(slot, slot) for slot in slots[2:]]  # (not before, slot)
    waited: list[float] = []
    fresh: list[float] = []
    while pending:
        pending.sort()
        clock, slot = pending.pop(0)
        if ledger.room(clock) >= 1:
            ledger.sent(clock, 1, irregular=not slot <= clock <= slot + SLACK)
            sends.append(clock)
            continue
        opening = ledger.opening(clock)
        if opening is None or opening - slot > 0.25:  # the dispatcher's bound
            fresh.append(slot)
            continue
        assert clock < opening <= slot + lateness + _EDGES
        waited.append(slot)
        pending.append((opening, slot))
    assert len(waited) >= 6  # two a second, three seconds
    assert fresh == slots[-2:]
    assert most_in_a_second(sends) <= rate
    # Up to the last second (its last two slots unused), no window is short of a slot.
    assert fewest_in_a_second([t for t in sends if t < slots[-2] - 1]) >= rate - 1


def test_there_is_no_opening_to_wait_for_without_a_late_send_or_a_slot_to_come() -> None:
    ledger = Ledger(SLACK)
    slots = schedule(10, 1000.0, 3)
    ledger.hold(slots)
    # Sends on their slots: nothing borrowed, nothing to give back.
    for slot in slots[:2]:
        ledger.sent(slot, 1, irregular=False)
    assert ledger.opening(slots[2] + 0.1) is None
    # A late send with no slot of its process to come: only a fresh slot makes room.
    ledger.sent(slots[2] + 0.1, 1, irregular=True)
    assert ledger.room(slots[2] + 0.2) == 0
    assert ledger.opening(slots[2] + 0.2) is None
    # With slots to come, room comes back once the late send stops counting.
    ledger.hold(schedule(10, slots[2] + 0.3, 20))
    opening = ledger.opening(slots[2] + 0.2)
    assert opening is not None
    assert opening == pytest.approx(slots[2] + 0.1 + 1 + pacing._JITTER, abs=1e-5)


def simulate(
    rng: random.Random, rate: int, late_delay: float, *, wait: float = 0.0
) -> tuple[list[float], int, int]:
    """Three processes take runs of a shared schedule in turn; each wakes up at random
    delays (some far past its slots) and sends what its ledger lets it. A send refused
    past its slot waits for its windows to open again (``Ledger.opening``) when that is at
    most ``wait`` after its slot, as the dispatcher does; otherwise (and always with
    ``wait=0``) it takes a fresh slot at the end of the schedule. A send that goes off its
    slot reaches the carrier up to ``late_delay`` after the check. The carrier's send
    times, how many went late, and how many fresh slots were taken."""
    interval = (1 + SLACK) / rate
    next_slot = 1000.0
    ledgers = [Ledger(SLACK) for _ in range(3)]
    # (not before, slot, process), each a message to send.
    pending: list[tuple[float, float, int]] = []
    for run in range(40):
        owner = run % 3
        count = rng.randint(1, max(1, rate // 2))
        run_slots = [next_slot + i * interval for i in range(count)]
        next_slot += count * interval
        ledgers[owner].hold(run_slots)
        pending += [(slot, slot, owner) for slot in run_slots]
    sends: list[float] = []
    late_sent = 0
    fresh_slots = 0
    clock = 1000.0
    while pending:
        pending.sort()
        start, _, owner = pending[0]
        # Each process wakes up when it may send or (often) later, never earlier.
        clock = max(clock, start) + rng.choice((0.0, 0.0, 0.005, 0.1, 0.6))
        ledger = ledgers[owner]
        due = [p for p in pending if p[2] == owner and p[0] <= clock]
        on_time = all(s <= clock <= s + SLACK for _, s, _ in due)
        count = len(due) if on_time and ledger.regular(clock) else ledger.room(clock)
        count = min(count, len(due))
        irregular = not all(s <= clock <= s + SLACK for _, s, _ in due[:count])
        ledger.sent(clock, count, irregular=irregular)
        sends += [clock + (rng.uniform(0, late_delay) if irregular else 0.0)] * count
        late_sent += sum(1 for _, s, _ in due[:count] if clock > s + SLACK)
        for item in due[:count]:
            pending.remove(item)
        opening = ledger.opening(clock)
        for item in due[count:]:
            pending.remove(item)
            slot = item[1]
            if opening is not None and opening - slot <= wait:
                pending.append((opening, slot, owner))  # its place kept
                continue
            # No room soon: a fresh slot at the end of the shared schedule.
            fresh = max(next_slot, clock)
            next_slot = fresh + interval
            ledger.hold([fresh])
            pending.append((fresh, fresh, owner))
            fresh_slots += 1
    return sends, late_sent, fresh_slots


def test_processes_sending_late_by_the_rule_never_put_more_than_the_rate_in_a_second() -> None:
    """Every sliding second of the sends holds at most ``rate``."""
    rng = random.Random(18)
    late_sent = {}
    for rate in (1, 10, 50, 500):
        for wait in (0.0, 0.25):
            sends, late_sent[rate, wait], _ = simulate(rng, rate, late_delay=0.0, wait=wait)
            assert most_in_a_second(sends) <= rate, (rate, wait)
    # The late path was taken, not only on-time sends.
    assert all(late_sent.values()), late_sent


def test_late_sends_the_carrier_takes_a_little_after_the_check_stay_within_the_rate() -> None:
    """A send let through off its slot may reach the carrier up to ``_JITTER`` later (the
    call's first steps, the OS running another process): then too every sliding second at
    the carrier holds at most ``rate`` (a window starting after the check counts it)."""
    for seed in range(10):
        rng = random.Random(seed)
        for rate in (10, 50, 500):
            for wait in (0.0, 0.25):
                sends, late, _ = simulate(rng, rate, late_delay=pacing._JITTER, wait=wait)
                assert late
                assert most_in_a_second(sends) <= rate, (seed, rate, wait)
