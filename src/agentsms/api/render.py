"""Database rows to response models."""

from __future__ import annotations

from agentsms import agents
from agentsms.api import schemas
from agentsms.core import statuses
from agentsms.core.rendering import message as message
from agentsms.core.rendering import money as _money
from agentsms.store.repositories import Row


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


def contact(row: Row) -> schemas.Contact:
    return schemas.Contact(
        id=row["id"],
        phone_number=row["phone_number"],
        name=row["name"],
        email=row["email"],
        notes=row["notes"],
        timezone=row["timezone"],
        metadata=dict(row["metadata"] or {}),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def opt_out(row: Row) -> schemas.OptOut:
    return schemas.OptOut(
        phone_number=row["recipient"],
        source=row["source"],
        keyword=row["keyword"],
        number=row["number"],
        created_at=row["created_at"],
    )
