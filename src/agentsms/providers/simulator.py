"""The built-in carrier simulator: a provider like the others.

It accepts sends, answers with a provider message id, and reports ``delivered`` (or
``undelivered``, at a configurable rate) after a configurable delay. A repeated reference
is counted in its send log and answered with the first result instead of texting the
person twice, unless the number's ``dedupe_references`` is false: then, like a carrier that
does not de-duplicate, the person is texted again (another delivery report, maybe another
scripted answer).

Like a real carrier it keeps its own records (the send log, the reports it owes, the
answers its scripted people owe) and reports back later; having no servers of its own, it
keeps them through a :class:`SimulatorLedger` that the gateway gives it
(``core.simulator``), which also delivers the reports through the same path as an HTTP
carrier's callbacks. This module decides what happens to each send; it reads and writes
nothing itself.

Per-number settings (``numbers.settings``):
``delivery_delay_seconds``, ``failure_rate`` (share of sends reported undelivered),
``failure_code``, ``throttle_rate`` (share refused with a retryable 429),
``reject_recipients`` (numbers refused permanently, code 21610), ``dedupe_references``
(default true).

Simulated people (``PUT /v1/simulator/people/{number}``) answer the texts they get from a
script: after ``delay_seconds`` the next of their ``replies`` comes back as an inbound text
(one answer per burst of texts), until the script runs out.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import phonenumbers

from agentsms.providers.base import (
    Channel,
    Lookup,
    Receipt,
    SendError,
    SendOutcome,
    SendRequest,
    SendResult,
)
from agentsms.providers.handoff import HandoffLapsed, ensure_handoff_open, lapsed

NAME = "simulator"
DEFAULT_FAILURE_CODE = "30003"
# The simulator's error codes (Twilio's numbers, its own words), as its reports give them.
ERRORS: dict[str, str] = {
    "429": "too many requests",
    "21610": "recipient has opted out",
    "30003": "unreachable destination handset",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "carrier violation (filtered)",
    "30008": "unknown error",
}
_LANDLINE_TYPES = {phonenumbers.PhoneNumberType.FIXED_LINE}


@dataclass(frozen=True, slots=True)
class LoggedSend:
    """One entry of the simulator's send log: a text it carried (or will report failed)."""

    reference: str
    provider_message_id: str
    from_number: str
    to_number: str
    channel: Channel
    body: str
    media_urls: Sequence[str]
    outcome: str  # "delivered" or "undelivered", as it will be reported
    error_code: str | None


@dataclass(slots=True)
class Carried:
    """What one ``send_many`` did, for the simulator's records."""

    outcomes: list[SendOutcome] = field(default_factory=list)
    logged: list[LoggedSend] = field(default_factory=list)  # first sends of a reference
    repeats: list[str] = field(default_factory=list)  # references sent again
    texted: list[str] = field(default_factory=list)  # references whose text reached a person
    reports: dict[float, list[Receipt]] = field(default_factory=dict)  # owed, by delay (s)


class SimulatorLedger(Protocol):
    """Where the simulator keeps what a real carrier keeps on its own servers."""

    async def carry(
        self, references: Sequence[str], plan: Callable[[Mapping[str, str]], Carried]
    ) -> Carried:
        """Run ``plan`` with the provider message ids already logged for ``references`` and
        keep what it carried (the log entries, the repeats, the reports owed and the answers
        the texted people owe), all or nothing: in the transaction that read the log, right
        after ``plan`` returns (``plan`` is where the handoff fence is checked). An exception
        from ``plan`` keeps nothing."""
        ...

    async def logged(self, reference: str) -> str | None:
        """The provider message id logged for ``reference``, if it was ever sent."""
        ...


class SimulatorProvider:
    """Carrier simulator whose records a :class:`SimulatorLedger` keeps."""

    name = NAME

    def __init__(self, ledger: SimulatorLedger, *, default_delay: float = 0.5) -> None:
        self.ledger = ledger
        self.default_delay = default_delay

    async def send_many(self, requests: Sequence[SendRequest]) -> list[SendOutcome]:
        references = [r.reference for r in requests]

        def fenced_plan(seen: Mapping[str, str]) -> Carried:
            # The ledger keeps what the plan carried right after it returns: the fence.
            ensure_handoff_open()
            return self.plan(requests, seen)

        try:
            carried = await self.ledger.carry(references, fenced_plan)
        except HandoffLapsed:
            return [lapsed()] * len(requests)
        return carried.outcomes

    def plan(self, requests: Sequence[SendRequest], seen: Mapping[str, str]) -> Carried:
        """What sending ``requests`` does, given the provider message ids already logged
        for some of their references (``seen``)."""
        carried = Carried()
        reports: dict[float, list[Receipt]] = defaultdict(list)
        for request in requests:
            earlier = seen.get(request.reference)
            if earlier is not None:
                carried.repeats.append(request.reference)
                if request.number_settings.get("dedupe_references", True):
                    carried.outcomes.append(SendResult(provider_message_id=earlier))
                    continue
            refusal = _refusal(request)
            if refusal is not None:
                carried.outcomes.append(refusal)
                continue
            provider_id = f"SIM{request.reference.removeprefix('msg_')}"
            failed = random.random() < float(request.number_settings.get("failure_rate", 0))
            code = (
                str(request.number_settings.get("failure_code", DEFAULT_FAILURE_CODE))
                if failed
                else None
            )
            carried.texted.append(request.reference)
            if earlier is None:
                carried.logged.append(
                    LoggedSend(
                        reference=request.reference,
                        provider_message_id=provider_id,
                        from_number=request.from_number,
                        to_number=request.to_number,
                        channel=request.channel,
                        body=request.body,
                        media_urls=list(request.media_urls),
                        outcome="undelivered" if failed else "delivered",
                        error_code=code,
                    )
                )
            delay = float(request.number_settings.get("delivery_delay_seconds", self.default_delay))
            reports[delay].append(
                Receipt(
                    provider_message_id=provider_id,
                    status="undelivered" if failed else "delivered",
                    reference=request.reference,
                    error_code=code,
                    error_message=None if code is None else ERRORS.get(code),
                )
            )
            carried.outcomes.append(SendResult(provider_message_id=provider_id))
        carried.reports = dict(reports)
        return carried

    async def lookup(self, request: SendRequest) -> Lookup | None:
        provider_id = await self.ledger.logged(request.reference)
        if provider_id is None:
            return Lookup(found=False)
        return Lookup(found=True, result=SendResult(provider_message_id=provider_id))


def _refusal(request: SendRequest) -> SendError | None:
    settings: Mapping[str, Any] = request.number_settings
    if request.to_number in settings.get("reject_recipients", ()):
        return SendError(code="21610", message=ERRORS["21610"], retryable=False)
    if request.media_urls and _is_landline(request.to_number):
        return SendError(
            code="30006", message="MMS to a landline is not deliverable", retryable=False
        )
    throttle = float(settings.get("throttle_rate", 0))
    if throttle and random.random() < throttle:
        return SendError(code="429", message=ERRORS["429"], retryable=True, retry_after=1.0)
    return None


def _is_landline(e164: str) -> bool:
    try:
        parsed = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(parsed) in _LANDLINE_TYPES
