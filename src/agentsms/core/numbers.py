"""The sender pool: adding numbers and choosing the sender for a message."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core.conversations import defaults_problem
from agentsms.core.phone import (
    InvalidPhoneNumberError,
    PhoneNumber,
    calling_code,
    parse_phone,
    parse_phone_field,
)
from agentsms.errors import Conflict, NotFound, ValidationFailed, invalid
from agentsms.ids import new_id
from agentsms.numeric import MAX_PRICE_PER_SEGMENT, MAX_THROUGHPUT_MPS
from agentsms.providers.catalog import CARRIERS
from agentsms.store.repositories import Row
from agentsms.store.repositories import messages as messages_repo
from agentsms.store.repositories import numbers as repo
from agentsms.store.repositories import provider_accounts as accounts_repo
from agentsms.store.types import utcnow

CHANNELS = ("sms", "mms", "whatsapp", "imessage")
KNOWN_PROVIDERS = ("simulator", *CARRIERS)
LONG_CODE_MPS = 1.0
SIMULATOR_MPS = 100.0


@dataclass(frozen=True, slots=True)
class NumberInput:
    """A number to add to the pool."""

    number: str
    provider: str | None = None  # default: the account's provider, else the simulator
    capabilities: Sequence[str] | None = None  # default: sms and mms, or all the carrier has
    throughput_mps: float = LONG_CODE_MPS
    price_per_segment: str = "0"
    currency: str = "USD"
    settings: Mapping[str, Any] = field(default_factory=dict)
    provider_account_id: str | None = None


async def _provider(conn: AsyncConnection, project_id: str, spec: NumberInput) -> str:
    """The number's provider, checked against its provider account."""
    if spec.provider is not None and spec.provider not in KNOWN_PROVIDERS:
        raise invalid("provider", f"unknown provider; one of {', '.join(KNOWN_PROVIDERS)}")
    if spec.provider_account_id is None:
        provider = spec.provider or "simulator"
        if provider != "simulator":
            raise invalid(
                "provider_account_id",
                f"is required for a {provider} number; add the account with "
                "POST /v1/provider-accounts first",
            )
        return provider
    account = await accounts_repo.get_account(conn, spec.provider_account_id)
    if account is None or account["project_id"] != project_id:
        raise invalid("provider_account_id", "is not a provider account of this project")
    if spec.provider is not None and spec.provider != account["provider"]:
        raise invalid(
            "provider",
            f"must be {account['provider']}, the provider of account {account['id']}",
        )
    return str(account["provider"])


async def add_number(conn: AsyncConnection, project_id: str, spec: NumberInput) -> Row:
    """Validate and store a sender number."""
    phone = parse_phone_field(spec.number, "number")
    provider = await _provider(conn, project_id, spec)
    carrier = CARRIERS.get(provider)
    limited = carrier.channels if carrier is not None else None
    capabilities = list(spec.capabilities or ())
    if spec.capabilities is None:
        capabilities = list(limited or ("sms", "mms"))
    unknown = [c for c in capabilities if c not in CHANNELS]
    if unknown or not capabilities:
        raise invalid("capabilities", f"each must be one of {', '.join(CHANNELS)}")
    if limited is not None and not set(capabilities) <= set(limited):
        raise invalid("capabilities", f"{provider} numbers carry {', '.join(limited)} only")
    if "conversation" in spec.settings:
        problem = defaults_problem(spec.settings["conversation"])
        if problem is not None:
            raise invalid("settings.conversation", problem)
    if not isinstance(spec.settings.get("dedupe_references", True), bool):
        raise invalid("settings.dedupe_references", "must be true or false")
    if not 0 < spec.throughput_mps <= MAX_THROUGHPUT_MPS:
        raise invalid(
            "throughput_mps", f"must be greater than 0 and at most {MAX_THROUGHPUT_MPS:g}"
        )
    try:
        price = Decimal(spec.price_per_segment)
    except InvalidOperation:
        raise invalid("price_per_segment", "must be a decimal number") from None
    if not price.is_finite() or not 0 <= price <= MAX_PRICE_PER_SEGMENT:
        raise invalid("price_per_segment", f"must be from 0 to {MAX_PRICE_PER_SEGMENT}")
    if await repo.find_by_e164(conn, project_id, phone.e164) is not None:
        raise Conflict(f"{phone.e164} is already in this project's pool", code="number_exists")
    row = {
        "id": new_id("num"),
        "project_id": project_id,
        "number": phone.e164,
        "provider": provider,
        "provider_account_id": spec.provider_account_id,
        "country": phone.country,
        "capabilities": list(dict.fromkeys(capabilities)),
        "throughput_mps": float(spec.throughput_mps),
        "price_per_segment": price,
        "currency": spec.currency.upper(),
        "settings": dict(spec.settings),
        "created_at": utcnow(),
    }
    await repo.insert_number(conn, row)
    return row


async def add_simulator_number(conn: AsyncConnection, project_id: str, number: str) -> Row:
    """The simulator number that ``init`` and the bootstrap key get: every channel, 100/s."""
    return await add_number(
        conn,
        project_id,
        NumberInput(
            number=number,
            provider="simulator",
            capabilities=CHANNELS,
            throughput_mps=SIMULATOR_MPS,
        ),
    )


async def list_numbers(conn: AsyncConnection, project_id: str) -> Sequence[Row]:
    return await repo.list_numbers(conn, project_id)


async def get_number(conn: AsyncConnection, project_id: str, number_id: str) -> Row:
    row = await repo.get_number(conn, project_id, number_id)
    if row is None:
        raise NotFound(f"number {number_id} not found")
    return row


async def delete_number(conn: AsyncConnection, project_id: str, number_id: str) -> None:
    if not await repo.delete_number(conn, project_id, number_id):
        raise NotFound(f"number {number_id} not found")


async def update_number(
    conn: AsyncConnection, project_id: str, number_id: str, settings: Mapping[str, Any]
) -> Row:
    """Merge ``settings`` into the number's (a ``None`` value removes the key)."""
    row = await get_number(conn, project_id, number_id)
    if "conversation" in settings and settings["conversation"] is not None:
        problem = defaults_problem(settings["conversation"])
        if problem is not None:
            raise invalid("settings.conversation", problem)
    merged = dict(row["settings"] or {}) | dict(settings)
    values = {"settings": {k: v for k, v in merged.items() if v is not None}}
    await repo.update_number(conn, project_id, number_id, values)
    return await get_number(conn, project_id, number_id)


# -- numbers the simulator hands out ----------------------------------------------------------
# Each country's range set aside for fiction, so a simulated line never is someone's phone:
# NANP 555-0100..0199 under an area code, Ofcom's London drama range, ACMA's Sydney one.
SIMULATOR_RANGES: dict[str, tuple[str, int]] = {
    "US": ("+1{area}55501", 100),
    "CA": ("+1{area}55501", 100),
    "GB": ("+442079460", 1000),
    "AU": ("+6125550", 10000),
}
DEFAULT_AREA_CODES = {"US": "415", "CA": "416"}


def _candidates(country: str, area_code: str | None) -> list[str]:
    if country not in SIMULATOR_RANGES:
        raise invalid("country", f"the simulator has numbers in {', '.join(SIMULATOR_RANGES)} only")
    pattern, size = SIMULATOR_RANGES[country]
    if area_code is not None and "{area}" not in pattern:
        raise invalid("area_code", f"is for US and CA numbers only, not {country}")
    area = area_code or DEFAULT_AREA_CODES.get(country, "")
    if "{area}" in pattern and not (len(area) == 3 and area.isdigit()):
        raise invalid("area_code", "must be three digits")
    width = len(str(size - 1))
    prefix = pattern.format(area=area)
    found = []
    for i in range(size):
        try:
            phone = parse_phone(f"{prefix}{i:0{width}d}")
        except InvalidPhoneNumberError:
            continue
        if phone.country == country:
            found.append(phone.e164)
    return found


async def available_numbers(
    conn: AsyncConnection,
    project_id: str,
    *,
    country: str = "US",
    area_code: str | None = None,
    limit: int = 10,
) -> list[str]:
    """Simulator numbers of ``country`` (and ``area_code``) not yet in the project's pool."""
    candidates = _candidates(country.upper(), area_code)
    taken = await repo.numbers_in(conn, project_id, candidates)
    return [n for n in candidates if n not in taken][:limit]


async def provision_simulator_number(
    conn: AsyncConnection,
    project_id: str,
    *,
    country: str = "US",
    area_code: str | None = None,
    capabilities: Sequence[str] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Row:
    """Add the first free simulator number of ``country`` to the pool (like buying one)."""
    free = await available_numbers(conn, project_id, country=country, area_code=area_code, limit=1)
    if not free:
        where = f"area code {area_code}" if area_code else country.upper()
        raise Conflict(f"no simulator number is free in {where}", code="no_numbers_available")
    return await add_number(
        conn,
        project_id,
        NumberInput(
            number=free[0],
            provider="simulator",
            capabilities=capabilities,
            throughput_mps=SIMULATOR_MPS,
            settings=dict(settings or {}),
        ),
    )


def default_channel(capabilities: Sequence[str], has_media: bool) -> str:
    """The channel for a message that names none: SMS, or MMS when it carries media."""
    preferred = ("mms", "imessage", "whatsapp") if has_media else ("sms", "imessage", "whatsapp")
    for channel in preferred:
        if channel in capabilities:
            return channel
    return str(capabilities[0])


def is_simulated(number: Row) -> bool:
    """Whether the simulator (the test carrier) sends for ``number``."""
    return bool(number["provider"] == "simulator")


def unreachable(to: PhoneNumber, carrier: str) -> str:
    """Why a number reserved for fiction and tests cannot be sent to by ``carrier``."""
    return (
        f"{to.e164} is in a range reserved for fiction and tests; only the simulator "
        f"delivers to it, not {carrier}: send from a simulator number"
    )


def can_carry(number: Row, channel: str | None, has_media: bool) -> bool:
    caps = number["capabilities"]
    if channel is not None:
        return channel in caps and (not has_media or channel != "sms")
    return not has_media or any(c in caps for c in ("mms", "imessage", "whatsapp"))


class SenderPool:
    """Chooses a sender for each recipient from a project's numbers.

    Order of preference: a number that can carry the channel; among those, the number the
    recipient last talked to; else one in the recipient's country; else one with the same
    country calling code; else any. Within a tier,
    numbers are drawn in proportion to their throughput, so a large batch spreads over the pool.
    """

    def __init__(self, numbers: Sequence[Row], sticky: Mapping[str, str] | None = None) -> None:
        self.numbers = list(numbers)
        self.by_id = {row["id"]: row for row in self.numbers}
        self.by_e164 = {row["number"]: row for row in self.numbers}
        self.sticky = dict(sticky or {})
        self._rng = random.Random()
        # A batch asks the same questions for every recipient: answer each once.
        self._eligible: dict[tuple[str | None, bool, bool], list[Row]] = {}
        self._tiers: dict[tuple[str | None, bool, bool, str], list[Row]] = {}

    @property
    def needs_sticky_lookup(self) -> bool:
        return len(self.numbers) > 1

    def explicit(self, from_number: str, field_name: str) -> Row:
        phone = parse_phone_field(from_number, field_name)
        row = self.by_e164.get(phone.e164)
        if row is None:
            raise invalid(field_name, "is not a number in this project's sender pool")
        return row

    def choose(
        self, to: PhoneNumber, channel: str | None, has_media: bool, *, simulated_only: bool = False
    ) -> Row | None:
        """The sender for ``to``; ``simulated_only`` keeps to simulator numbers (for a
        number reserved for fiction, see ``core.fictional``)."""
        eligible = self._eligible_for(channel, has_media, simulated_only)
        if len(eligible) <= 1:
            if not eligible:
                return None
            self.sticky[to.e164] = eligible[0]["id"]
            return eligible[0]
        sticky_id = self.sticky.get(to.e164)
        if sticky_id is not None:
            for row in eligible:
                if row["id"] == sticky_id:
                    return row
        tier = self._tier(eligible, channel, has_media, simulated_only, to)
        if len(tier) == 1:
            chosen = tier[0]
        else:
            weights = [row["throughput_mps"] for row in tier]
            chosen = self._rng.choices(tier, weights=weights)[0]
        self.sticky[to.e164] = chosen["id"]
        return chosen

    def _eligible_for(
        self, channel: str | None, has_media: bool, simulated_only: bool
    ) -> list[Row]:
        key = (channel, has_media, simulated_only)
        eligible = self._eligible.get(key)
        if eligible is None:
            eligible = [
                row
                for row in self.numbers
                if can_carry(row, channel, has_media) and (not simulated_only or is_simulated(row))
            ]
            self._eligible[key] = eligible
        return eligible

    def _tier(
        self,
        eligible: list[Row],
        channel: str | None,
        has_media: bool,
        simulated_only: bool,
        to: PhoneNumber,
    ) -> list[Row]:
        # A region has one calling code; only non-geographic numbers need theirs looked up.
        region = to.country or f"+{calling_code(to.e164)}"
        key = (channel, has_media, simulated_only, region)
        tier = self._tiers.get(key)
        if tier is None:
            local = [row for row in eligible if row["country"] == to.country]
            if not local:
                # Same numbering plan: a GB number for Guernsey (+44 7911), a US one for Canada.
                code = calling_code(to.e164)
                local = [row for row in eligible if calling_code(row["number"]) == code]
            tier = self._tiers[key] = local or eligible
        return tier

    def can_carry_any(self, channel: str | None, has_media: bool) -> bool:
        """Whether some number of the pool, of any carrier, can carry such a message."""
        return bool(self._eligible_for(channel, has_media, False))

    def no_sender_reason(self, channel: str | None, has_media: bool) -> ValidationFailed:
        if not self.numbers:
            return invalid("from", "this project has no sender numbers; add one first")
        what = f"the {channel} channel" if channel else "media" if has_media else "this message"
        return invalid("from", f"no number in this project's pool can carry {what}")


@dataclass(frozen=True, slots=True)
class NumberHealth:
    """A sender number with what it did lately."""

    number: Row
    sent_last_hour: int
    recent_errors: list[Row]


async def number_health(
    conn: AsyncConnection, project_id: str, now: datetime, *, errors_per_number: int = 3
) -> list[NumberHealth]:
    """Each number of the pool, its sends in the last hour and its newest errors."""
    rows = await repo.list_numbers(conn, project_id)
    sent = await messages_repo.sent_counts_by_number(conn, project_id, now - timedelta(hours=1))
    errors = await messages_repo.recent_errors_by_number(conn, project_id, errors_per_number)
    return [NumberHealth(row, sent.get(row["id"], 0), errors.get(row["id"], [])) for row in rows]
