"""``/v1/numbers``: the project's sender pool."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Response

from agentsms.api import render, schemas
from agentsms.api.deps import CurrentProject, State
from agentsms.api.state import AppState
from agentsms.core import numbers as service
from agentsms.core.numbers import NumberInput
from agentsms.core.provider_accounts import webhook_url

router = APIRouter(prefix="/v1/numbers", tags=["numbers"])


def _number(row: Mapping[str, Any], state: AppState) -> schemas.Number:
    """A number, with the webhook URL of its provider account when it has one."""
    rendered = render.number(row)
    account_id = row.get("provider_account_id")
    if account_id:
        rendered.provider_account_id = account_id
        rendered.callback_url = webhook_url(state.settings, row["provider"], account_id)
    return rendered


@router.post("", status_code=201, response_model=schemas.Number, summary="Add a sender number")
async def add_number(
    body: schemas.NumberCreate, project: CurrentProject, state: State
) -> schemas.Number:
    """Add a number to the project's sender pool: its provider (or carrier account), capabilities,
    throughput and price per segment. Returns it with the webhook URL to give the carrier. ``409``
    ``number_exists`` when it is already in the pool.
    """
    spec = NumberInput(
        number=body.number,
        provider=body.provider,
        capabilities=body.capabilities,
        throughput_mps=body.throughput_mps,
        price_per_segment=str(body.price_per_segment),
        currency=body.currency,
        settings=body.settings,
        provider_account_id=body.provider_account_id,
    )
    async with state.db.write() as conn:
        row = await service.add_number(conn, project.id, spec)
    return _number(row, state)


@router.get("", response_model=schemas.NumberList, summary="List sender numbers")
async def list_numbers(project: CurrentProject, state: State) -> schemas.NumberList:
    """Every number in the project's sender pool, with its provider, capabilities, throughput and
    price.
    """
    async with state.db.read() as conn:
        rows = await service.list_numbers(conn, project.id)
    return schemas.NumberList(data=[_number(row, state) for row in rows])


@router.get("/{number_id}", response_model=schemas.Number, summary="Get a sender number")
async def get_number(number_id: str, project: CurrentProject, state: State) -> schemas.Number:
    """One sender number. ``404`` when it is not in this project."""
    async with state.db.read() as conn:
        return _number(await service.get_number(conn, project.id, number_id), state)


@router.delete("/{number_id}", status_code=204, summary="Remove a sender number")
async def delete_number(number_id: str, project: CurrentProject, state: State) -> Response:
    """Take the number out of the sender pool; later sends no longer use it. ``204`` on success,
    ``404`` when it is not in this project.
    """
    async with state.db.write() as conn:
        await service.delete_number(conn, project.id, number_id)
    return Response(status_code=204)
