"""Message statuses and the rule that a status only moves forward."""

from __future__ import annotations

from typing import Final

SCHEDULED: Final = "scheduled"
QUEUED: Final = "queued"
SENDING: Final = "sending"
SENT: Final = "sent"
DELIVERED: Final = "delivered"
UNDELIVERED: Final = "undelivered"
FAILED: Final = "failed"
CANCELED: Final = "canceled"
EXPIRED: Final = "expired"
RECEIVED: Final = "received"

FINAL: Final = frozenset({DELIVERED, UNDELIVERED, FAILED, CANCELED, EXPIRED, RECEIVED})
PENDING: Final = (SCHEDULED, QUEUED)
CANCELABLE: Final = (SCHEDULED, QUEUED)
ALL: Final = (
    SCHEDULED,
    QUEUED,
    SENDING,
    SENT,
    DELIVERED,
    UNDELIVERED,
    FAILED,
    CANCELED,
    EXPIRED,
    RECEIVED,
)

_RANK: Final = {SCHEDULED: 0, QUEUED: 1, SENDING: 2, SENT: 3}


def rank(status: str) -> int:
    """A status's place in the forward order: scheduled < queued < sending < sent < final."""
    return _RANK.get(status, len(_RANK))


def before(status: str) -> tuple[str, ...]:
    """The statuses a message may move to ``status`` from (strictly earlier, not final)."""
    place = rank(status)
    return tuple(s for s, r in _RANK.items() if r < place)
