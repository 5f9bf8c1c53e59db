"""``/v1/provider-accounts``: the project's accounts at carriers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Response

from agentsms.api import schemas
from agentsms.api.deps import CurrentProject, State
from agentsms.config import Settings
from agentsms.core import provider_accounts as service
from agentsms.core.provider_accounts import AccountInput

router = APIRouter(prefix="/v1/provider-accounts", tags=["provider accounts"])


def render(row: Mapping[str, Any], settings: Settings) -> schemas.ProviderAccount:
    return schemas.ProviderAccount(
        id=row["id"],
        provider=row["provider"],
        name=row["name"],
        api_base_url=row["api_base_url"],
        credentials_set=list(row["credential_keys"]),
        callback_url=service.webhook_url(settings, row["provider"], row["id"]),
        created_at=row["created_at"],
    )


@router.post(
    "",
    status_code=201,
    response_model=schemas.ProviderAccount,
    summary="Add a carrier account (credentials are checked with the carrier first)",
)
async def create_account(
    body: schemas.ProviderAccountCreate, project: CurrentProject, state: State
) -> schemas.ProviderAccount:
    """Store credentials at a carrier (Twilio, Telnyx, Vonage, Plivo or an SMPP SMSC). They are
    checked with the carrier first and stored encrypted; the answer shows the callback URL to
    configure at the carrier, never the secrets. ``422`` ``credentials_rejected`` when the carrier
    refuses them, ``502`` ``carrier_unavailable`` when it cannot be asked.
    """
    spec = AccountInput(
        provider=body.provider,
        name=body.name,
        credentials=body.credentials,
        api_base_url=body.api_base_url,
    )
    account = service.validate(project.id, spec, state.settings)
    await service.verify(account, state.settings)
    async with state.db.write() as conn:
        row = await service.store(conn, project.id, account, state.settings)
    return render(row, state.settings)


@router.get("", response_model=schemas.ProviderAccountList, summary="List carrier accounts")
async def list_accounts(project: CurrentProject, state: State) -> schemas.ProviderAccountList:
    """The project's carrier accounts, each with its callback URL; credentials are never shown."""
    async with state.db.read() as conn:
        rows = await service.list_accounts(conn, project.id)
    return schemas.ProviderAccountList(data=[render(row, state.settings) for row in rows])


@router.get("/{account_id}", response_model=schemas.ProviderAccount, summary="Get an account")
async def get_account(
    account_id: str, project: CurrentProject, state: State
) -> schemas.ProviderAccount:
    """One carrier account with its callback URL. ``404`` when it is not in this project."""
    async with state.db.read() as conn:
        row = await service.get_account(conn, project.id, account_id)
    return render(row, state.settings)


@router.delete("/{account_id}", status_code=204, summary="Remove an account no number uses")
async def delete_account(account_id: str, project: CurrentProject, state: State) -> Response:
    """Remove a carrier account and its credentials. ``409`` ``account_in_use`` while a number
    still sends through it.
    """
    async with state.db.write() as conn:
        await service.delete_account(conn, project.id, account_id)
    await state.providers.forget(account_id)
    return Response(status_code=204)
