"""What carriers push to agentsms: the delivery receipts and inbound texts of one provider
account, from an HTTP callback (``api/callbacks``) or an SMPP session (through
:class:`StoredProviderEvents`, the :class:`agentsms.providers.base.ProviderEvents` sink).

Everything is scoped to the account: its project's messages and numbers only.

Receipts are matched to our messages by our reference (sent to the carrier in the status
URL or as its client reference; one that names another carrier message is ignored) or by
the carrier's id among the account's messages, and go through
``core.receipts.apply_receipts`` (forward-only, so repeats and late reports change
nothing). A receipt naming only a carrier id that no message has yet (the carrier answered
faster than the dispatcher recorded the id) is parked as a ``provider.unmatched_receipts``
job and matched again a few times, with backoff, before it is dropped.

Inbound texts are de-duplicated by the carrier's message id, concatenated parts are held
until the last one arrives and joined in order (or delivered as they are after
``PARTS_WAIT_SECONDS``), MMS media are fetched and stored, and the whole text goes through
``core.inbound.receive``. A text that can never be stored (to a number that is not in the
project's pool) is logged and dropped; any other exception propagates, so that the HTTP
carrier or the SMSC delivers again later (e.g. during a database outage).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.config import Settings
from agentsms.core import inbound as inbound_service
from agentsms.core import media as media_service
from agentsms.core.errors import ValidationFailed
from agentsms.core.receipts import apply_receipts
from agentsms.core.sending import Outbox
from agentsms.jobs import queue
from agentsms.jobs.queue import Job, NewJob
from agentsms.providers.base import InboundMessage, Receipt
from agentsms.providers.carrier import CallbackBatch, InboundPart
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


async def match_receipts(
    conn: AsyncConnection, account: Row, receipts: Sequence[Receipt]
) -> tuple[list[Receipt], list[Receipt]]:
    """The receipts that name one of the account's messages (``reference`` set to its id),
    and those that do not yet but carry a carrier id to match later."""
    references = [r.reference for r in receipts if r.reference]
    carrier_ids = [r.provider_message_id for r in receipts if r.provider_message_id]
    rows = await repo.messages_for_receipts(conn, account, references, carrier_ids)
    by_id = {row["id"]: row for row in rows}
    by_carrier_id = {row["provider_message_id"]: row for row in rows if row["provider_message_id"]}
    resolved: list[Receipt] = []
    unmatched: list[Receipt] = []
    for receipt in receipts:
        message = by_id.get(receipt.reference or "")
        if (
            message is not None
            and message["provider_message_id"]
            and receipt.provider_message_id
            and message["provider_message_id"] != receipt.provider_message_id
        ):
            message = None  # a reference that does not belong to this carrier message
        if message is None and receipt.provider_message_id:
            message = by_carrier_id.get(receipt.provider_message_id)
        if message is not None:
            resolved.append(dataclasses.replace(receipt, reference=message["id"]))
        elif receipt.provider_message_id:
            unmatched.append(receipt)
        else:
            log.info("provider_events.receipt_unmatched", account_id=account["id"])
    return resolved, unmatched


async def apply_account_receipts(
    conn: AsyncConnection,
    account: Row,
    receipts: Sequence[Receipt],
    *,
    retry_seconds: float = UNMATCHED_RETRY_SECONDS,
) -> int:
    """Apply an account's receipts; park those not matched yet. Returns how many changed."""
    if not receipts:
        return 0
    resolved, unmatched = await match_receipts(conn, account, receipts)
    if unmatched:
        await queue.enqueue(
            conn,
            NewJob(
                kind=UNMATCHED_RECEIPTS_JOB,
                ref=account["id"],
                payload={"account_id": account["id"], "receipts": [_dump(r) for r in unmatched]},
                run_at=time.time() + retry_seconds,
                max_attempts=UNMATCHED_ATTEMPTS,
            ),
        )
    return await apply_receipts(conn, resolved)


async def deliver_inbound(
    db: Database,
    settings: Settings,
    outbox: Outbox,
    account: Row,
    part: InboundPart,
    auth_for: media_service.AuthFor | None = None,
) -> MessageRecord | None:
    """Store one inbound text (or part); returns the stored message when one was made."""
    message = part.message
    carrier_id = message.provider_message_id
    if carrier_id:
        async with db.read() as conn:
            if await repo.seen(conn, account["id"], carrier_id):
                return None
    if part.total > 1 and part.concat_ref:
        return await _deliver_part(db, outbox, account, part)
    fetched: list[media_service.FetchedMedia] = []
    failures: list[str] = []
    for url in message.media_urls:
        try:
            fetched.append(await media_service.fetch(url, settings, auth_for))
        except media_service.MediaFetchError as error:
            log.warning(
                "provider_events.media_fetch_failed", account_id=account["id"], reason=str(error)
            )
            failures.append(url)
    urls = [media_service.media_url(settings, item.token) for item in fetched] + failures
    whole = dataclasses.replace(message, media_urls=tuple(urls))
    try:
        async with db.write() as conn:
            if carrier_id and not await repo.mark_seen(
                conn, account["id"], carrier_id, time.time()
            ):
                return None
            now = utcnow()
            await repo.insert_media(
                conn,
                [
                    {
                        "token": item.token,
                        "project_id": account["project_id"],
                        "content_type": item.content_type,
                        "size": len(item.data),
                        "data": item.data,
                        "source_url": item.source_url,
                        "created_at": now,
                    }
                    for item in fetched
                ],
            )
            return await _receive(conn, outbox, account, whole)
    except ValidationFailed as error:
        # Retrying cannot help (e.g. a number removed from the pool): log and acknowledge.
        log.warning(
            "provider_events.inbound_rejected", account_id=account["id"], reason=error.detail
        )
        return None


async def _deliver_part(
    db: Database, outbox: Outbox, account: Row, part: InboundPart
) -> MessageRecord | None:
    message = part.message
    group = f"{message.from_number}|{message.to_number}|{part.concat_ref}|{part.total}"
    try:
        async with db.write() as conn:
            carrier_id = message.provider_message_id
            if carrier_id and not await repo.mark_seen(
                conn, account["id"], carrier_id, time.time()
            ):
                return None
            await repo.insert_part(
                conn,
                {
                    "account_id": account["id"],
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
            held = await repo.parts(conn, account["id"], group[:200])
            if len(held) == 1:
                await queue.enqueue(
                    conn,
                    NewJob(
                        kind=PARTS_JOB,
                        ref=account["id"],
                        payload={"account_id": account["id"], "group_key": group[:200]},
                        run_at=time.time() + PARTS_WAIT_SECONDS,
                    ),
                )
            if len({row["part"] for row in held}) < part.total:
                return None
            await repo.delete_parts(conn, account["id"], group[:200])
            whole = dataclasses.replace(
                message,
                body="".join(row["body"] for row in held),
                provider_message_id=held[0]["provider_message_id"] or carrier_id,
            )
            return await _receive(conn, outbox, account, whole)
    except ValidationFailed as error:
        log.warning(
            "provider_events.inbound_rejected", account_id=account["id"], reason=error.detail
        )
        return None


async def _receive(
    conn: AsyncConnection, outbox: Outbox, account: Row, message: InboundMessage
) -> MessageRecord:
    return await inbound_service.receive(
        conn, account["project_id"], account["provider"], message, outbox
    )


async def handle(
    db: Database,
    settings: Settings,
    outbox: Outbox,
    account: Row,
    batch: CallbackBatch,
    auth_for: media_service.AuthFor | None = None,
) -> None:
    """Apply one verified HTTP callback."""
    if batch.receipts:
        async with db.write() as conn:
            await apply_account_receipts(conn, account, batch.receipts)
    for part in batch.inbound:
        await deliver_inbound(db, settings, outbox, account, part, auth_for)


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

    async def _account(self, account_id: str) -> Row | None:
        async with self.db.read() as conn:
            row = await repo.get_account(conn, account_id)
        if row is None:
            log.warning("provider_events.unknown_account", account_id=account_id)
        return row

    async def receipts(self, account_id: str, receipts: Sequence[Receipt]) -> None:
        """Apply receipts (forward-only, duplicates ignored); park those not matched yet."""
        account = await self._account(account_id)
        if account is not None:
            async with self.db.write() as conn:
                await apply_account_receipts(
                    conn, account, receipts, retry_seconds=self.unmatched_retry_seconds
                )

    async def inbound(self, account_id: str, message: InboundMessage) -> None:
        """Store a whole (already reassembled) inbound text for the account's project."""
        account = await self._account(account_id)
        if account is not None:
            await deliver_inbound(
                self.db, self.settings, self.outbox, account, InboundPart(message)
            )


class PartsTimeoutHandler:
    """Runs ``carrier.inbound_parts`` jobs: delivers what arrived of a concatenated text
    whose remaining parts never came (the parts in order, the gap left out)."""

    def __init__(self, db: Database, outbox: Outbox) -> None:
        self.db = db
        self.outbox = outbox

    async def handle(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            account_id = str(job.payload["account_id"])
            group = str(job.payload["group_key"])
            try:
                async with self.db.write() as conn:
                    await queue.finish(conn, [job])
                    account = await repo.get_account(conn, account_id)
                    held = await repo.parts(conn, account_id, group)
                    if account is None or not held:
                        continue
                    await repo.delete_parts(conn, account_id, group)
                    first = held[0]
                    log.warning(
                        "provider_events.parts_incomplete",
                        account_id=account_id,
                        parts=[row["part"] for row in held],
                        total=first["total"],
                    )
                    await _receive(
                        conn,
                        self.outbox,
                        account,
                        InboundMessage(
                            from_number=first["from_number"],
                            to_number=first["to_number"],
                            body="".join(row["body"] for row in held),
                            provider_message_id=first["provider_message_id"],
                            channel=first["channel"],
                        ),
                    )
            except ValidationFailed as error:
                log.warning(
                    "provider_events.inbound_rejected", account_id=account_id, reason=error.detail
                )
                async with self.db.write() as conn:
                    await repo.delete_parts(conn, account_id, group)
                    await queue.finish(conn, [job])


class UnmatchedReceiptHandler:
    """Runs ``provider.unmatched_receipts`` jobs: match parked receipts again, with
    backoff, and drop what is still unmatched after the last attempt."""

    def __init__(self, db: Database, *, retry_seconds: float = UNMATCHED_RETRY_SECONDS) -> None:
        self.db = db
        self.retry_seconds = retry_seconds

    async def handle(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            account_id = str(job.payload["account_id"])
            receipts = [_load(item) for item in job.payload.get("receipts", [])]
            async with self.db.write() as conn:
                account = await repo.get_account(conn, account_id)
                if account is None:
                    await queue.finish(conn, [job])
                    continue
                resolved, unmatched = await match_receipts(conn, account, receipts)
                await apply_receipts(conn, resolved)
                if not unmatched:
                    await queue.finish(conn, [job])
                elif job.attempts >= job.max_attempts:
                    log.info(
                        "provider_events.receipts_dropped",
                        account_id=account_id,
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
