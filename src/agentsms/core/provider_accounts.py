"""Provider accounts: a project's credentials at a carrier, checked, encrypted, and turned
into the adapter its numbers send through."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.config import Settings
from agentsms.core.credentials import credential_box
from agentsms.errors import AgentsmsError, Conflict, NotFound, ValidationFailed, invalid
from agentsms.ids import new_id
from agentsms.providers.base import (
    CarrierUnreachable,
    CredentialsRejected,
    Provider,
    ProviderAccount,
    ProviderEvents,
)
from agentsms.providers.carrier import REQUEST_TIMEOUT_SECONDS, HttpCarrier
from agentsms.providers.catalog import CARRIERS, CarrierSpec
from agentsms.providers.smpp import SmppProvider
from agentsms.store.db import Database
from agentsms.store.repositories import Row
from agentsms.store.repositories import provider_accounts as repo
from agentsms.store.types import utcnow
from agentsms.webhooks.ssrf import guarded_transport, tcp_address_vetter, url_problem

log = structlog.get_logger("agentsms.provider_accounts")
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


class AccountAdapter(Provider, Protocol):
    """What every account adapter has beyond :class:`Provider`."""

    async def check_credentials(self) -> None:
        """Raise ``CredentialsRejected`` or ``CarrierUnreachable``."""
        ...

    async def aclose(self) -> None:
        """Close connections (an SMPP session unbinds)."""
        ...


class CarrierUnavailable(AgentsmsError):
    """The carrier could not be asked (network error, 5xx): nothing was stored."""

    status = 502
    code = "carrier_unavailable"
    title = "Carrier unavailable"


@dataclass(frozen=True, slots=True)
class AccountInput:
    """An account to add."""

    provider: str
    name: str
    credentials: Mapping[str, str] = field(default_factory=dict)
    api_base_url: str | None = None


def public_url(settings: Settings) -> str:
    """The base URL carriers reach agentsms at (``AGENTSMS_PUBLIC_URL``)."""
    return (settings.public_url or DEFAULT_PUBLIC_URL).rstrip("/")


def callback_url(settings: Settings, provider: str, account_id: str) -> str:
    """The one webhook URL of an account: inbound texts and delivery receipts."""
    return f"{public_url(settings)}/callbacks/{provider}/{account_id}"


def webhook_url(settings: Settings, provider: str, account_id: str) -> str | None:
    """The URL to paste into the carrier's console; None for carriers that push over their
    own session (SMPP)."""
    carrier = CARRIERS.get(provider)
    if carrier is None or not carrier.webhooks:
        return None
    return callback_url(settings, provider, account_id)


def validate(project_id: str, spec: AccountInput, settings: Settings) -> ProviderAccount:
    """Check the input and give the account as an adapter is built from it (not stored)."""
    carrier = CARRIERS.get(spec.provider)
    if carrier is None:
        raise invalid("provider", f"unknown provider; one of {', '.join(sorted(CARRIERS))}")
    if not spec.name.strip():
        raise invalid("name", "must not be empty")
    allowed = set(carrier.required) | set(carrier.optional)
    for key, value in spec.credentials.items():
        if key not in allowed:
            raise invalid(
                f"credentials.{key}",
                f"is not a {carrier.name} credential; expected {', '.join(sorted(allowed))}",
            )
        if not isinstance(value, str) or not value.strip():
            raise invalid(f"credentials.{key}", "must be a non-empty string")
    for key in carrier.required:
        if key not in spec.credentials:
            raise invalid(f"credentials.{key}", f"is required for a {carrier.name} account")
    base = _base_url(carrier, spec.api_base_url, settings)
    account_id = new_id("acct")
    return ProviderAccount(
        id=account_id,
        provider=carrier.name,
        name=spec.name.strip(),
        credentials={k: v.strip() for k, v in spec.credentials.items()},
        api_base_url=base,
        callback_base_url=callback_url(settings, carrier.name, account_id),
    )


def _base_url(carrier: CarrierSpec, given: str | None, settings: Settings) -> str:
    if not given:
        if carrier.default_api_base_url is None:
            raise invalid("api_base_url", f"is required for {carrier.name}, e.g. smpp://host:2775")
        return carrier.default_api_base_url
    parts = urlsplit(given.strip())
    if parts.scheme not in carrier.schemes or not parts.hostname:
        raise invalid("api_base_url", f"must be a {' or '.join(carrier.schemes)} URL with a host")
    # agentsms connects here with the account's credentials: the SSRF guard's rules (an
    # SMSC's host as an https URL's would be).
    http = parts.scheme in ("http", "https")
    problem = url_problem(given.strip() if http else f"https://{parts.netloc}/", settings)
    if problem is not None:
        raise invalid("api_base_url", problem, code="unsafe_url")
    return given.strip().rstrip("/")


async def verify(account: ProviderAccount, settings: Settings) -> None:
    """Ask the carrier whether the credentials work (422 naming the credential if not,
    502 if the carrier cannot be reached). For SMPP this binds once and unbinds."""
    adapter = build_adapter(account, None, settings)
    try:
        await adapter.check_credentials()
    except CredentialsRejected as error:
        field_name = f"credentials.{error.key}" if error.key else "credentials"
        raise invalid(field_name, str(error), code="credentials_rejected") from None
    except CarrierUnreachable as error:
        raise CarrierUnavailable(
            f"{account.provider} could not check the credentials: {error}"
        ) from None
    finally:
        await adapter.aclose()


async def store(
    conn: AsyncConnection, project_id: str, account: ProviderAccount, settings: Settings
) -> Row:
    """Save a checked account, its credentials encrypted."""
    row = {
        "id": account.id,
        "project_id": project_id,
        "provider": account.provider,
        "name": account.name,
        "api_base_url": account.api_base_url,
        "credentials": credential_box(settings).seal(account.credentials),
        "credential_keys": sorted(account.credentials),
        "created_at": utcnow(),
    }
    await repo.insert_account(conn, row)
    return row


async def list_accounts(conn: AsyncConnection, project_id: str) -> Sequence[Row]:
    return await repo.list_accounts(conn, project_id)


async def get_account(conn: AsyncConnection, project_id: str, account_id: str) -> Row:
    row = await repo.get_account(conn, account_id)
    if row is None or row["project_id"] != project_id:
        raise NotFound(f"provider account {account_id} not found")
    return row


async def delete_account(conn: AsyncConnection, project_id: str, account_id: str) -> None:
    """Remove an account no number uses any more."""
    await get_account(conn, project_id, account_id)
    used = await repo.numbers_using(conn, account_id)
    if used:
        raise Conflict(
            f"provider account {account_id} still has {used} number(s); remove them first",
            code="account_in_use",
        )
    await repo.delete_account(conn, project_id, account_id)


def open_account(row: Row, settings: Settings) -> ProviderAccount:
    """A stored account with its credentials decrypted (never log the result)."""
    return ProviderAccount(
        id=row["id"],
        provider=row["provider"],
        name=row["name"],
        credentials=credential_box(settings).open(row["credentials"]),
        api_base_url=row["api_base_url"],
        callback_base_url=callback_url(settings, row["provider"], row["id"]),
    )


def build_adapter(
    account: ProviderAccount, events: ProviderEvents | None, settings: Settings
) -> AccountAdapter:
    """The adapter of an account (``LookupError`` for a provider this build does not
    know; ``ValidationFailed`` naming the field when the adapter cannot use the account).
    A carrier's API or SMSC is reached through the SSRF guard: its address is the tenant's."""
    carrier = CARRIERS.get(account.provider)
    if carrier is None:
        raise LookupError(f"this agentsms has no adapter for {account.provider!r}")
    cls: Any = carrier.adapter_class()
    guarded: dict[str, Any] = {}
    if issubclass(cls, HttpCarrier):
        guarded["transport"] = guarded_transport(settings, total_seconds=REQUEST_TIMEOUT_SECONDS)
    elif issubclass(cls, SmppProvider):
        guarded["vet"] = tcp_address_vetter(settings)
    try:
        adapter: AccountAdapter = cls(account, events=events, **guarded)
    except ValueError as error:
        # Adapters name the field first: "credentials.password: SMPP allows at most 8 ..."
        field_name, _, reason = str(error).partition(": ")
        raise invalid(field_name, reason) from None
    if hasattr(adapter, "tolerance_seconds"):
        adapter.tolerance_seconds = settings.callback_tolerance_seconds
    return adapter


async def load_adapter(
    db: Database, settings: Settings, account_id: str, events: ProviderEvents | None
) -> Provider:
    """Read, decrypt and build an account's adapter (``LookupError`` if it is gone)."""
    async with db.read() as conn:
        row = await repo.get_account(conn, account_id)
    if row is None:
        raise LookupError(f"provider account {account_id} does not exist")
    try:
        return build_adapter(open_account(row, settings), events, settings)
    except ValidationFailed as error:
        raise LookupError(f"provider account {account_id} is unusable: {error.detail}") from None


async def load_accounts(db: Database, settings: Settings, provider: str) -> list[ProviderAccount]:
    """Every project's accounts at one carrier, decrypted (never log the result); one whose
    credentials this process cannot decrypt is logged and left out."""
    async with db.read() as conn:
        rows = await repo.accounts_of_provider(conn, provider)
    opened: list[ProviderAccount] = []
    for row in rows:
        try:
            opened.append(open_account(row, settings))
        except ValueError as error:
            log.error("provider_accounts.undecryptable", account_id=row["id"], reason=str(error))
    return opened
