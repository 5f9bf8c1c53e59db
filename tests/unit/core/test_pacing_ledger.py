"""The window rule a worker process sends its late messages by (``core.pacing``)."""

from __future__ import annotations

import bisect
import random

from agentsms.core import pacing
from agentsms.core.pacing import Ledger

SLACK = 0.02


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


def simulate(rng: random.Random, rate: int, late_delay: float) -> tuple[list[float], int]:
    """Three processes take runs of a shared schedule in turn; each wakes up at random
    delays (some far past its slots) and sends what its ledger lets it, re-slotting the
    rest at the end of the schedule. A send that goes off its slot reaches the carrier up
    to ``late_delay`` after the check. The carrier's send times, and how many went late."""
    interval = (1 + SLACK) / rate
    next_slot = 1000.0
    ledgers = [Ledger(SLACK) for _ in range(3)]
    pending: list[tuple[float, int]] = []  # (slot, process), each a message to send
    for run in range(40):
        owner = run % 3
        count = rng.randint(1, max(1, rate // 2))
        run_slots = [next_slot + i * interval for i in range(count)]
        next_slot += count * interval
        ledgers[owner].hold(run_slots)
        pending += [(slot, owner) for slot in run_slots]
    sends: list[float] = []
    late_sent = 0
    clock = 1000.0
    while pending:
        pending.sort()
        slot, owner = pending[0]
        # Each process wakes up at its slot or (often) later, never earlier.
        clock = max(clock, slot) + rng.choice((0.0, 0.0, 0.005, 0.1, 0.6))
        ledger = ledgers[owner]
        due = [p for p in pending if p[1] == owner and p[0] <= clock]
        on_time = all(s <= clock <= s + SLACK for s, _ in due)
        count = len(due) if on_time and ledger.regular(clock) else ledger.room(clock)
        count = min(count, len(due))
        irregular = not all(s <= clock <= s + SLACK for s, _ in due[:count])
        ledger.sent(clock, count, irregular=irregular)
        sends += [clock + (rng.uniform(0, late_delay) if irregular else 0.0)] * count
        late_sent += sum(1 for s, _ in due[:count] if clock > s + SLACK)
        for item in due[:count]:
            pending.remove(item)
        for item in due[count:]:
            # No room: a fresh slot at the end of the shared schedule.
            pending.remove(item)
            fresh = max(next_slot, clock)
            next_slot = fresh + interval
            ledger.hold([fresh])
            pending.append((fresh, owner))
    return sends, late_sent


def test_processes_sending_late_by_the_rule_never_put_more_than_the_rate_in_a_second() -> None:
    """Every sliding second of the sends holds at most ``rate``."""
    rng = random.Random(18)
    late_sent = {}
    for rate in (1, 10, 50, 500):
        sends, late_sent[rate] = simulate(rng, rate, late_delay=0.0)
        assert most_in_a_second(sends) <= rate, rate
    # The late path was taken, not only on-time sends.
    assert all(late_sent.values()), late_sent


def test_late_sends_the_carrier_takes_a_little_after_the_check_stay_within_the_rate() -> None:
    """A send let through off its slot may reach the carrier up to ``_JITTER`` later (the
    call's first steps, the OS running another process): then too every sliding second at
    the carrier holds at most ``rate`` (a window starting after the check counts it)."""
    for seed in range(10):
        rng = random.Random(seed)
        for rate in (10, 50, 500):
            sends, late = simulate(rng, rate, late_delay=pacing._JITTER)
            assert late
            assert most_in_a_second(sends) <= rate, (seed, rate)
