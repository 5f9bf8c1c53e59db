"""The built-in carrier simulator: a provider like the others, with a durable send log.

It accepts sends, answers with a provider message id, and reports ``delivered`` (or
``undelivered``, at a configurable rate) after a configurable delay through the same
receipt path a real carrier's callback takes. A repeated reference is counted in the log
and answered with the first result instead of texting the person twice, unless the
number's ``dedupe_references`` is false: then, like a carrier that does not de-duplicate,
the person is texted again (another delivery report, maybe another scripted answer).

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
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import phonenumbers

from agentsms.jobs.queue import NewJob, enqueue_many
from agentsms.providers.base import Lookup, SendError, SendOutcome, SendRequest, SendResult
from agentsms.store.db import Database
from agentsms.store.repositories import simulator as log_repo

REPORT_JOB = "simulator.report"
# A simulated person's scripted answer (see ``core.simulated_people``).
PERSON_REPLY_JOB = "simulator.person_reply"
_LANDLINE_TYPES = {phonenumbers.PhoneNumberType.FIXED_LINE}


class SimulatorProvider:
    """Carrier simulator backed by the agentsms database."""

    name = "simulator"

    def __init__(self, db: Database, *, default_delay: float = 0.5) -> None:
        self.db = db
        self.default_delay = default_delay

    async def send_many(self, requests: Sequence[SendRequest]) -> list[SendOutcome]:
        now = time.time()
        async with self.db.write() as conn:
            seen = await log_repo.existing_by_reference(conn, [r.reference for r in requests])
            outcomes: list[SendOutcome] = []
            new_rows: list[dict[str, Any]] = []
            repeats: list[str] = []
            texted: list[str] = []
            reports: dict[float, list[dict[str, Any]]] = defaultdict(list)
            for request in requests:
                earlier = seen.get(request.reference)
                if earlier is not None:
                    repeats.append(request.reference)
                    if request.number_settings.get("dedupe_references", True):
                        outcomes.append(
                            SendResult(provider_message_id=earlier["provider_message_id"])
                        )
                        continue
                refusal = _refusal(request)
                if refusal is not None:
                    outcomes.append(refusal)
                    continue
                provider_id = f"SIM{request.reference.removeprefix('msg_')}"
                failed = random.random() < float(request.number_settings.get("failure_rate", 0))
                code = str(request.number_settings.get("failure_code", "30003")) if failed else None
                texted.append(request.reference)
                if earlier is None:
                    new_rows.append(
                        {
                            "reference": request.reference,
                            "provider_message_id": provider_id,
                            "from_number": request.from_number,
                            "to_number": request.to_number,
                            "channel": request.channel,
                            "body": request.body,
                            "media_urls": list(request.media_urls),
                            "outcome": "undelivered" if failed else "delivered",
                            "error_code": code,
                            "repeat_count": 0,
                            "created_at": now,
                        }
                    )
                delay = float(
                    request.number_settings.get("delivery_delay_seconds", self.default_delay)
                )
                reports[delay].append(
                    {
                        "reference": request.reference,
                        "provider_message_id": provider_id,
                        "status": "undelivered" if failed else "delivered",
                        "error_code": code,
                    }
                )
                outcomes.append(SendResult(provider_message_id=provider_id))
            await log_repo.insert_sends(conn, new_rows)
            await log_repo.count_repeats(conn, repeats)
            people = []
            for found in await log_repo.scripted_recipients(conn, texted):
                project_id, person, _, _ = found
                # One answer per burst, also when sends to the person run side by side.
                if await log_repo.claim_reply(conn, project_id, person):
                    people.append(found)
            await enqueue_many(
                conn,
                [
                    NewJob(
                        kind=PERSON_REPLY_JOB,
                        payload={"project_id": project_id, "number": person, "to": ours},
                        run_at=now + wait,
                    )
                    for project_id, person, ours, wait in people
                ],
            )
            await enqueue_many(
                conn,
                [
                    NewJob(kind=REPORT_JOB, payload={"receipts": items}, run_at=now + delay)
                    for delay, items in reports.items()
                ],
            )
        return outcomes

    async def lookup(self, request: SendRequest) -> Lookup | None:
        async with self.db.read() as conn:
            found = await log_repo.existing_by_reference(conn, [request.reference])
        row = found.get(request.reference)
        if row is None:
            return Lookup(found=False)
        return Lookup(found=True, result=SendResult(provider_message_id=row["provider_message_id"]))


def _refusal(request: SendRequest) -> SendError | None:
    settings: Mapping[str, Any] = request.number_settings
    if request.to_number in settings.get("reject_recipients", ()):
        return SendError(code="21610", message="recipient has opted out", retryable=False)
    if request.media_urls and _is_landline(request.to_number):
        return SendError(
            code="30006", message="MMS to a landline is not deliverable", retryable=False
        )
    throttle = float(settings.get("throttle_rate", 0))
    if throttle and random.random() < throttle:
        return SendError(code="429", message="too many requests", retryable=True, retry_after=1.0)
    return None


def _is_landline(e164: str) -> bool:
    try:
        parsed = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(parsed) in _LANDLINE_TYPES
