"""What carriers push to agentsms: the delivery receipts and inbound texts of one
:class:`Origin` (a provider account, or the built-in simulator), from an HTTP callback
(``api/callbacks``), an SMPP session (through :class:`StoredProviderEvents`, the
:class:`agentsms.providers.base.ProviderEvents` sink) or the simulator's reports
(``core.simulator``, ``core.simulated_people``).

Everything is scoped to the origin: an account's project's messages and numbers only; the
simulator, which carries every project's texts, reports on messages sent through it.

Receipts are matched to our messages by our reference (sent to the carrier in the status
URL or as its client reference; one that names another carrier message is ignored) or,
failing that, by the carrier's id among the origin's messages, and go through
``core.receipts.apply_receipts`` (forward-only, so repeats and late reports change
nothing). A receipt naming only a carrier id that no message has yet (the carrier answered
faster than the dispatcher recorded the id) is parked as a ``provider.unmatched_receipts``
job and matched again a few times, with backoff, before it is dropped.

Inbound texts are de-duplicated by the carrier's message id, concatenated parts are held
until the last one arrives and joined in order (or delivered as they are after
``PARTS_WAIT_SECONDS``), MMS media are fetched and stored, and the whole text goes through
:func:`receive_inbound` (``core.inbound.receive``). A text that can never be stored (to a
number that is not in the project's pool) is logged and dropped; any other exception
propagates, so that the HTTP carrier or the SMSC delivers again later (e.g. during a
database outage).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.config import Settings
from agentsms.core import inbound as inbound_service
from agentsms.core import media as media_service
from agentsms.core.receipts import apply_receipts
from agentsms.core.sending import Outbox
from agentsms.errors import ValidationFailed
from agentsms.jobs import queue
from agentsms.jobs.queue import Job, NewJob
from agentsms.providers.base import InboundMessage, Receipt
from agentsms.providers.carrier import CallbackBatch, InboundPart
from agentsms.providers.simulator import NAME as SIMULATOR_NAME
from agentsms.store.db import Database
from agentsms.store.records import MessageRecord
from agentsms.store.repositories import Row
from agentsms.store.repositories import provider_accounts as repo
from agentsms.store.types import utcnow

log = structlog.get_logger("agentsms.provider_events")
PARTS_JOB = "carrier.inbound_parts"
UNMATCHED_RECEIPTS_JOB = "provider.unmatched_receipts"
UNMATCHED_ATTEMPTS = 6
UNMATCHED_RETRY_SECONDS = 2.0
# A concatenated text whose last part never comes is delivered with the parts that did.
PARTS_WAIT_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Origin:
    """Whose traffic a carrier pushes: one provider account's, or the simulator's.

    ``project_id`` is the account's project; for the simulator it is the project a text
    comes to, and None for its receipts (it carries every project's texts). ``key`` names
    the origin in the records of what it pushed (inbound de-duplication, held parts,
    parked receipts).
    """

    provider: str
    account_id: str | None = None
    project_id: str | None = None

    @classmethod
    def of_account(cls, account: Row) -> Origin:
        """The origin of a provider account (a ``provider_accounts`` row)."""
        return cls(str(account["provider"]), str(account["id"]), str(account["project_id"]))

    @classmethod
    def simulator(cls, project_id: str | None = None) -> Origin:
        """The built-in simulator; with ``project_id``, as it delivers texts to a project."""
        return cls(SIMULATOR_NAME, None, project_id)

    @property
    def key(self) -> str:
        return self.account_id or self.provider

    def describe(self) -> dict[str, Any]:
        """The origin as stored in a job's payload (see :func:`origin_from`)."""
        return {"account_id": self.account_id, "provider": self.provider}


SIMULATOR = Origin.simulator()


async def origin_from(conn: AsyncConnection, payload: Mapping[str, Any]) -> Origin | None:
    """The origin a job's payload names (:meth:`Origin.describe`); None for an account that
    no longer exists."""
    account_id = payload.get("account_id")
    if account_id is None:
        return Origin.simulator() if payload.get("provider") == SIMULATOR_NAME else None
    account = await repo.get_account(conn, str(account_id))
    return None if account is None else Origin.of_account(account)


async def match_receipts(
    conn: AsyncConnection, origin: Origin, receipts: Sequence[Receipt]
) -> tuple[list[Receipt], list[Receipt]]:
    """The receipts that name one of the origin's messages (``reference`` set to its id),
    and those that do not yet but carry a carrier id to match later.

    Our reference is read first; the carrier's ids are looked up only for the receipts it
    does not settle.
    """
    known = await repo.carrier_ids_by_reference(
        conn,
        provider=origin.provider,
        project_id=origin.project_id,
        references=[r.reference for r in receipts if r.reference],
    )
    found: list[str | None] = []
    for receipt in receipts:
        reference = receipt.reference
        if reference is None or reference not in known:
            reference = None
        elif (
            (carrier_id := known[reference])
            and receipt.provider_message_id
            and receipt.provider_message_id != carrier_id
        ):
            reference = None  # a reference that does not belong to this carrier message
        found.append(reference)
    unsettled = [
        r.provider_message_id
        for r, reference in zip(receipts, found, strict=True)
        if reference is None and r.provider_message_id
    ]
    by_carrier_id: dict[str, str] = {}
    if unsettled:
        by_carrier_id = {
            carrier_id: message_id for message_id, carrier_id in known.items() if carrier_id
        }
        by_carrier_id |= await repo.references_by_carrier_id(
            conn,
            provider=origin.provider,
            project_id=origin.project_id,
            account_id=origin.account_id,
            provider_ids=unsettled,
        )
    resolved: list[Receipt] = []
    unmatched: list[Receipt] = []
    for receipt, reference in zip(receipts, found, strict=True):
        if reference is None and receipt.provider_message_id:
            reference = by_carrier_id.get(receipt.provider_message_id)
        if reference is not None:
            if receipt.reference != reference:
                receipt = dataclasses.replace(receipt, reference=reference)
            resolved.append(receipt)
        elif receipt.provider_message_id:
            unmatched.append(receipt)
        else:
            log.info("provider_events.receipt_unmatched", account_id=origin.key)
    return resolved, unmatched


async def apply_carrier_receipts(
    conn: AsyncConnection,
    origin: Origin,
    receipts: Sequence[Receipt],
    *,
    retry_seconds: float = UNMATCHED_RETRY_SECONDS,
) -> int:
    """Apply receipts a carrier pushed (the caller's transaction); park those not matched
    yet. Returns how many messages changed. Every carrier's receipts come this way."""
    if not receipts:
        return 0
    resolved, unmatched = await match_receipts(conn, origin, receipts)
    if unmatched:
        await queue.enqueue(
            conn,
            NewJob(
                kind=UNMATCHED_RECEIPTS_JOB,
                ref=origin.key,
                payload={**origin.describe(), "receipts": [_dump(r) for r in unmatched]},
                run_at=time.time() + retry_seconds,
                max_attempts=UNMATCHED_ATTEMPTS,
            ),
        )
    return await apply_receipts(conn, resolved)


async def receive_inbound(
    conn: AsyncConnection, outbox: Outbox, origin: Origin, message: InboundMessage
) -> MessageRecord:
    """Store one whole inbound text of ``origin`` and act on it (the caller's transaction).
    Every carrier's texts come this way, once de-duplicated and with their media stored."""
    if origin.project_id is None:
        raise ValueError("an inbound text comes to one project: the origin names none")
    return await inbound_service.receive(conn, origin.project_id, origin.provider, message, outbox)


async def deliver_inbound(
    db: Database,
    settings: Settings,
    outbox: Outbox,
    origin: Origin,
    part: InboundPart,
    auth_for: media_service.AuthFor | None = None,
) -> MessageRecord | None:
    """Store one inbound text (or part); returns the stored message when one was made."""
    message = part.message
    carrier_id = message.provider_message_id
    if carrier_id:
        async with db.read() as conn:
            if await repo.seen(conn, origin.key, carrier_id):
                return None
    if part.total > 1 and part.concat_ref:
        return await _deliver_part(db, outbox, origin, part)
    fetched: list[media_service.FetchedMedia] = []
    failures: list[str] = []
    for url in message.media_urls:
        try:
            fetched.append(await media_service.fetch(url, settings, auth_for))
        except media_service.MediaFetchError as error:
            log.warning(
                "provider_events.media_fetch_failed", account_id=origin.key, reason=str(error)
            )
            failures.append(url)
    urls = [media_service.media_url(settings, item.token) for item in fetched] + failures
    whole = dataclasses.replace(message, media_urls=tuple(urls))
    try:
        async with db.write() as conn:
            if carrier_id and not await repo.mark_seen(conn, origin.key, carrier_id, time.time()):
                return None
            now = utcnow()
            await repo.insert_media(
                conn,
                [
                    {
                        "token": item.token,
                        "project_id": origin.project_id,
                        "content_type": item.content_type,
                        "size": len(item.data),
                        "data": item.data,
                        "source_url": item.source_url,
                        "created_at": now,
                    }
                    for item in fetched
                ],
            )
            return await receive_inbound(conn, outbox, origin, whole)
    except ValidationFailed as error:
        # Retrying cannot help (e.g. a number removed from the pool): log and acknowledge.
        log.warning("provider_events.inbound_rejected", account_id=origin.key, reason=error.detail)
        return None


async def _deliver_part(
    db: Database, outbox: Outbox, origin: Origin, part: InboundPart
) -> MessageRecord | None:
    message = part.message
    group = f"{message.from_number}|{message.to_number}|{part.concat_ref}|{part.total}"
    try:
        async with db.write() as conn:
            carrier_id = message.provider_message_id
            if carrier_id and not await repo.mark_seen(conn, origin.key, carrier_id, time.time()):
                return None
            await repo.insert_part(
                conn,
                {
                    "account_id": origin.key,
                    "group_key": group[:200],
                    "part": part.part,
                    "total": part.total,
                    "body": message.body,
                    "provider_message_id": carrier_id,
                    "from_number": message.from_number,
                    "to_number": message.to_number,
                    "channel": message.channel,
                    "created_at": time.time(),
                },
            )
            held = await repo.parts(conn, origin.key, group[:200])
            if len(held) == 1:
                await queue.enqueue(
                    conn,
                    NewJob(
                        kind=PARTS_JOB,
                        ref=origin.key,
                        payload={**origin.describe(), "group_key": group[:200]},
                        run_at=time.time() + PARTS_WAIT_SECONDS,
                    ),
                )
            if len({row["part"] for row in held}) < part.total:
                return None
            await repo.delete_parts(conn, origin.key, group[:200])
            whole = dataclasses.replace(
                message,
                body="".join(row["body"] for row in held),
                provider_message_id=held[0]["provider_message_id"] or carrier_id,
            )
            return await receive_inbound(conn, outbox, origin, whole)
    except ValidationFailed as error:
        log.warning("provider_events.inbound_rejected", account_id=origin.key, reason=error.detail)
        return None


async def handle(
    db: Database,
    settings: Settings,
    outbox: Outbox,
    origin: Origin,
    batch: CallbackBatch,
    auth_for: media_service.AuthFor | None = None,
) -> None:
    """Apply what one carrier call pushed (a verified HTTP callback): its receipts, then its
    texts."""
    if batch.receipts:
        async with db.write() as conn:
            await apply_carrier_receipts(conn, origin, batch.receipts)
    for part in batch.inbound:
        await deliver_inbound(db, settings, outbox, origin, part, auth_for)


class StoredProviderEvents:
    """The :class:`agentsms.providers.base.ProviderEvents` of connection-oriented adapters
    (SMPP): the same paths as the HTTP callbacks. Traffic for an account that no longer
    exists is logged and dropped."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        outbox: Outbox,
        *,
        unmatched_retry_seconds: float = UNMATCHED_RETRY_SECONDS,
    ) -> None:
        self.db = db
        self.settings = settings
        self.outbox = outbox
        self.unmatched_retry_seconds = unmatched_retry_seconds

    async def _origin(self, account_id: str) -> Origin | None:
        async with self.db.read() as conn:
            row = await repo.get_account(conn, account_id)
        if row is None:
            log.warning("provider_events.unknown_account", account_id=account_id)
            return None
        return Origin.of_account(row)

    async def receipts(self, account_id: str, receipts: Sequence[Receipt]) -> None:
        """Apply receipts (forward-only, duplicates ignored); park those not matched yet."""
        origin = await self._origin(account_id)
        if origin is not None:
            async with self.db.write() as conn:
                await apply_carrier_receipts(
                    conn, origin, receipts, retry_seconds=self.unmatched_retry_seconds
                )

    async def inbound(self, account_id: str, message: InboundMessage) -> None:
        """Store a whole (already reassembled) inbound text for the account's project."""
        origin = await self._origin(account_id)
        if origin is not None:
            await deliver_inbound(self.db, self.settings, self.outbox, origin, InboundPart(message))


class PartsTimeoutHandler:
    """Runs ``carrier.inbound_parts`` jobs: delivers what arrived of a concatenated text
    whose remaining parts never came (the parts in order, the gap left out)."""

    def __init__(self, db: Database, outbox: Outbox) -> None:
        self.db = db
        self.outbox = outbox

    async def handle(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            key = str(job.payload.get("account_id") or job.payload.get("provider"))
            group = str(job.payload["group_key"])
            try:
                async with self.db.write() as conn:
                    await queue.finish(conn, [job])
                    origin = await origin_from(conn, job.payload)
                    held = await repo.parts(conn, key, group)
                    if origin is None or not held:
                        continue
                    await repo.delete_parts(conn, key, group)
                    first = held[0]
                    log.warning(
                        "provider_events.parts_incomplete",
                        account_id=key,
                        parts=[row["part"] for row in held],
                        total=first["total"],
                    )
                    await receive_inbound(
                        conn,
                        self.outbox,
                        origin,
                        InboundMessage(
                            from_number=first["from_number"],
                            to_number=first["to_number"],
                            body="".join(row["body"] for row in held),
                            provider_message_id=first["provider_message_id"],
                            channel=first["channel"],
                        ),
                    )
            except ValidationFailed as error:
                log.warning("provider_events.inbound_rejected", account_id=key, reason=error.detail)
                async with self.db.write() as conn:
                    await repo.delete_parts(conn, key, group)
                    await queue.finish(conn, [job])


class UnmatchedReceiptHandler:
    """Runs ``provider.unmatched_receipts`` jobs: match parked receipts again, with
    backoff, and drop what is still unmatched after the last attempt."""

    def __init__(self, db: Database, *, retry_seconds: float = UNMATCHED_RETRY_SECONDS) -> None:
        self.db = db
        self.retry_seconds = retry_seconds

    async def handle(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            receipts = [_load(item) for item in job.payload.get("receipts", [])]
            async with self.db.write() as conn:
                origin = await origin_from(conn, job.payload)
                if origin is None:
                    await queue.finish(conn, [job])
                    continue
                resolved, unmatched = await match_receipts(conn, origin, receipts)
                await apply_receipts(conn, resolved)
                if not unmatched:
                    await queue.finish(conn, [job])
                elif job.attempts >= job.max_attempts:
                    log.info(
                        "provider_events.receipts_dropped",
                        account_id=origin.key,
                        provider_message_ids=[r.provider_message_id for r in unmatched],
                    )
                    await queue.finish(conn, [job])
                else:
                    # Receipts matched this time are applied again next time: harmless,
                    # receipts only move a message forward.
                    await queue.retry(
                        conn,
                        job,
                        run_at=time.time() + self.retry_seconds * 2 ** (job.attempts - 1),
                        error=f"{len(unmatched)} receipts not matched yet",
                    )


def _dump(receipt: Receipt) -> dict[str, Any]:
    return {
        "provider_message_id": receipt.provider_message_id,
        "status": receipt.status,
        "reference": receipt.reference,
        "error_code": receipt.error_code,
        "error_message": receipt.error_message,
        "price": None if receipt.price is None else str(receipt.price),
        "currency": receipt.currency,
    }


def _load(item: dict[str, Any]) -> Receipt:
    return Receipt(
        provider_message_id=item["provider_message_id"],
        status=item["status"],
        reference=item.get("reference"),
        error_code=item.get("error_code"),
        error_message=item.get("error_message"),
        price=None if item.get("price") is None else Decimal(item["price"]),
        currency=item.get("currency"),
    )
