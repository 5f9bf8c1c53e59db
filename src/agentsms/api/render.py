"""Database rows to response models."""

from __future__ import annotations

from decimal import Decimal

from agentsms import agents, purposes
from agentsms.api import schemas
from agentsms.core import statuses
from agentsms.store.records import MessageRecord
from agentsms.store.repositories import Row

_MONEY_PLACES = Decimal("0.000001")  # the scale of every money column


def _money(value: Decimal | float | str) -> Decimal:
    """Money as stored, whether it came from the database or was just computed."""
    return Decimal(value).quantize(_MONEY_PLACES)


def message(row: MessageRecord) -> schemas.Message:
    return schemas.Message(
        id=row.id,
        batch_id=row.batch_id,
        conversation_id=row.conversation_id,
        direction=row.direction,
        to=row.to_number,
        from_=row.from_number,
        body=row.body,
        media_urls=list(row.media_urls or []),
        channel=row.channel,
        status=row.status,
        segments=row.segments,
        encoding=row.encoding,
        price_estimate=_money(row.price_estimate),
        price=None if row.price is None else _money(row.price),
        currency=row.currency,
        send_at=row.send_at,
        sent_at=row.sent_at,
        delivered_at=row.delivered_at,
        expires_at=row.expires_at,
        error_code=row.error_code,
        error_message=row.error_message,
        metadata=dict(row.metadata or {}),
        external_id=row.external_id,
        provider=row.provider,
        provider_message_id=row.provider_message_id,
        attempts=row.attempts,
        created_at=row.created_at,
        updated_at=row.updated_at,
        send_style=row.send_style,
        reply_to_message_id=row.reply_to_message_id,
        reply_parent_unresolved=row.reply_parent_unresolved,
        purpose=row.purpose or purposes.API,
    )


def batch(row: Row, counts: dict[str, int], message_ids: list[str] | None = None) -> schemas.Batch:
    return schemas.Batch(
        id=row["id"],
        total=row["total"],
        counts=counts,
        completed=sum(n for status, n in counts.items() if status in statuses.FINAL),
        metadata=dict(row["metadata"] or {}),
        created_at=row["created_at"],
        message_ids=message_ids,
    )


def number(row: Row) -> schemas.Number:
    return schemas.Number(
        id=row["id"],
        number=row["number"],
        provider=row["provider"],
        country=row["country"],
        capabilities=list(row["capabilities"]),
        throughput_mps=row["throughput_mps"],
        price_per_segment=_money(row["price_per_segment"]),
        currency=row["currency"],
        settings=agents.without_secrets(row["settings"] or {}),
        created_at=row["created_at"],
    )


def event(row: Row) -> schemas.MessageEvent:
    return schemas.MessageEvent(
        id=row["id"],
        seq=row["seq"],
        type=row["type"],
        message_id=row["message_id"],
        status=row["status"],
        data=dict(row["data"] or {}),
        created_at=row["created_at"],
    )


def api_key(row: Row) -> schemas.ApiKey:
    return schemas.ApiKey(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


def reaction(row: Row) -> schemas.Reaction:
    return schemas.Reaction(
        id=row["id"],
        message_id=row["message_id"],
        conversation_id=row["conversation_id"],
        direction=row["direction"],
        reaction=row["reaction"],
        channel=row["channel"],
        from_=row["from_number"],
        to=row["to_number"],
        created_at=row["created_at"],
    )


def opt_out(row: Row) -> schemas.OptOut:
    return schemas.OptOut(
        phone_number=row["recipient"],
        source=row["source"],
        keyword=row["keyword"],
        number=row["number"],
        created_at=row["created_at"],
    )
