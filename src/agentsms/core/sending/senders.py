"""Sender choice: the project's numbers as a pool, with each contact's last sender when
the pool keeps senders sticky."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core.numbers import SenderPool
from agentsms.core.phone import InvalidPhoneNumberError, parse_phone
from agentsms.core.sending.specs import OutboundSpec
from agentsms.store.repositories import numbers as numbers_repo


async def sender_pool(
    conn: AsyncConnection, project_id: str, specs: Sequence[OutboundSpec]
) -> SenderPool:
    """The senders ``specs`` may be sent from, sticky senders looked up."""
    numbers = await numbers_repo.list_numbers(conn, project_id)
    pool = SenderPool(numbers)
    if pool.needs_sticky_lookup:
        contacts: list[str] = []
        for spec in specs:
            if spec.from_ is None:
                try:
                    contacts.append(parse_phone(spec.to).e164)
                except InvalidPhoneNumberError:
                    continue
        pool.sticky = await numbers_repo.last_numbers_for_contacts(conn, project_id, contacts)
    return pool
