"""A worker process's own pacing slots of a number, and the sends it made with them.

Slots come from the number's shared schedule (``store.repositories.pacing``): each one is
handed to exactly one process, ``interval`` (``(1 + slack) / rate``) or more after the
one before. A send normally goes within ``slack`` of its own slot, which keeps every
one-second window of the number at ``rate`` sends or fewer whatever the processes.

A process that wakes up late (a busy event loop, a slow CPU) may still send, by a rule
that composes across processes in the same way: its sends in any window ``[a, a + 1)``
number no more than its own slots in ``[a - slack, a + 1)``. Summed over the processes
(their slots are disjoint), a window holds at most the slots of one ``1 + slack`` span,
that is ``rate``. The rule is checked before each send against every window holding the
moment of the send (:meth:`Ledger.room`); a window only gains sends when a send is made,
so checking each send keeps the rule for all windows. A process running behind thus
sends its late messages at once, borrowing the room of its own slots still to come
within the second. What it borrowed comes back a second later, once those sends stop
counting (:meth:`Ledger.opening`): the sends of the slots it borrowed wait for that
moment rather than lose their place, and only what no window will hold soon needs a
fresh slot at the end of the shared schedule.

Sends that went within ``slack`` of their own slot need no check as long as no other
send of the last second did not (:meth:`Ledger.regular`): each has a slot of its own in
its windows' span.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

# Float epoch times are coarse (a few tenths of a microsecond): window edges are taken
# this much on the safe side.
_EDGE = 1e-6
# A send is recorded when it is let through; the carrier takes it a little later (the
# provider call's first steps, or longer when the OS runs another process meanwhile): it
# is counted this much longer, as long as an on-time send may be late (the slack), so
# that the carrier's windows keep to the rate too.
_JITTER = 0.02
# Slots and sends older than this (seconds before now) no longer count in any window.
_KEEP = 2.5


class Ledger:
    """One number's slots held by this process and the sends it made, for the window rule."""

    __slots__ = ("_irregular_until", "_offslot", "_sends", "_slots", "slack")

    def __init__(self, slack: float) -> None:
        self.slack = slack
        self._slots: list[float] = []
        self._sends: list[float] = []
        # Until then a send that went off its own slot still lies in a window from now.
        self._irregular_until = 0.0
        # When sends went off their own slots (one entry per :meth:`sent`).
        self._offslot: list[float] = []

    def hold(self, slots: Iterable[float]) -> None:
        """Add slots this process was handed by the shared schedule."""
        for slot in slots:
            bisect.insort(self._slots, slot)

    def regular(self, now: float) -> bool:
        """Whether every send of the last second went within ``slack`` of its own slot."""
        return now >= self._irregular_until

    def sent(self, at: float, count: int, *, irregular: bool) -> None:
        """Record ``count`` sends at ``at``; ``irregular``: one of them did not go within
        ``slack`` of its own slot (it went by :meth:`room`)."""
        if count <= 0:
            return
        for _ in range(count):
            bisect.insort(self._sends, at)
        if irregular:
            self._irregular_until = max(self._irregular_until, at + 1.0 + _JITTER + _EDGE)
            bisect.insort(self._offslot, at)

    def opening(self, now: float) -> float | None:
        """The next moment after ``now`` a send that went off its own slot stops counting
        in every window (the windows borrowed from may hold one more again then), or
        ``None``: no such send counts any more, or no slot of this process is still to
        come to make room in a window from then on."""
        self._prune(now)
        if not self._slots or self._slots[-1] < now:
            return None
        # A send at ``x`` counts in a window holding ``t`` up to ``t = x + 1 + _JITTER``.
        first = bisect.bisect_right(self._offslot, now - 1.0 - _JITTER)
        if first == len(self._offslot):
            return None
        return self._offslot[first] + 1.0 + _JITTER + 2 * _EDGE

    def room(self, now: float) -> int:
        """How many more sends may go at ``now``: the fewest free places in any window
        ``[a, a + 1)`` the carrier may count them in, that is from ``now`` to ``_JITTER``
        after it (its own slots in ``[a - slack, a + 1)`` less its sends in it, counting
        those up to ``_JITTER`` before it)."""
        self._prune(now)
        slots, sends, slack = self._slots, self._sends, self.slack
        # Windows starting within _EDGE of ``now - 1`` hold ``now`` only by rounding.
        low = now - 1.0 + _EDGE
        # The last window start: the carrier may take these sends _JITTER after now, and
        # a window starting then must hold them too (with its span's slots, not now's).
        high = now + _JITTER
        left, right = bisect.bisect_left, bisect.bisect_right
        # The free places change only at a send leaving the window (just after it), a slot
        # entering its span (just after ``slot - 1``) or leaving it (just after ``slot +
        # slack``): the fewest are at those starts, and at ``now`` and ``high``. Slots one
        # span apart (``rate`` slots of a schedule) are taken as exactly so.
        fewest = min(self._free(now, now), self._free(high, now))
        for send in sends[right(sends, low - _JITTER) :]:
            if low < send + _JITTER <= high:
                fewest = min(fewest, self._free(send + _JITTER, now))
        for slot in slots[right(slots, low - slack) :]:
            if slot - 1.0 > high:
                break
            if slot - 1.0 > low:
                # [slot - 1, slot + 1): the slot itself not yet in it.
                held = left(slots, slot - _EDGE) - left(slots, slot - 1.0 - slack - _EDGE)
                made = len(sends) - left(sends, slot - 1.0 - _JITTER - _EDGE)
                fewest = min(fewest, held - made)
            if low < slot + slack < high:
                # Just after slot + slack: the slot no longer in it.
                held = right(slots, slot + 1.0 + slack + _EDGE) - right(slots, slot + _EDGE)
                made = len(sends) - right(sends, slot + slack - _JITTER)
                fewest = min(fewest, held - made)
        return max(0, fewest)

    def _free(self, start: float, now: float) -> int:
        """Own slots in ``[start - slack, start + 1)`` less sends in ``[start - _JITTER,
        now]``."""
        slots, sends = self._slots, self._sends
        held = bisect.bisect_left(slots, start + 1.0) - bisect.bisect_left(
            slots, start - self.slack
        )
        return held - (len(sends) - bisect.bisect_left(sends, start - _JITTER - _EDGE))

    def idle(self, now: float) -> bool:
        """Nothing of it counts any more (no slot to come, no recent send)."""
        self._prune(now)
        return not self._slots and not self._sends

    def _prune(self, now: float) -> None:
        horizon = now - _KEEP
        if self._slots and self._slots[0] < horizon:
            del self._slots[: bisect.bisect_left(self._slots, horizon)]
        if self._sends and self._sends[0] < horizon:
            del self._sends[: bisect.bisect_left(self._sends, horizon)]
        if self._offslot and self._offslot[0] < horizon:
            del self._offslot[: bisect.bisect_left(self._offslot, horizon)]
