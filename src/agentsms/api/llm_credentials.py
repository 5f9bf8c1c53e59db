"""``/v1/llm-credentials``: the project's own LLM API key (write-only)."""

from __future__ import annotations

from fastapi import APIRouter

from agentsms.api import schemas
from agentsms.api.deps import CurrentProject, State
from agentsms.core import llm_credentials as service

router = APIRouter(prefix="/v1/llm-credentials", tags=["agents"])


def _out(status: service.KeyStatus) -> schemas.LlmCredentials:
    return schemas.LlmCredentials(
        api_key_set=status.api_key_set, api_key_hint=status.hint, updated_at=status.updated_at
    )


@router.get("", response_model=schemas.LlmCredentials, summary="Whether an LLM key is stored")
async def get_llm_credentials(project: CurrentProject, state: State) -> schemas.LlmCredentials:
    """Whether the project stored an LLM API key (and its last four characters); the key itself is
    never returned.
    """
    async with state.db.read() as conn:
        return _out(await service.key_status(conn, project.id))


@router.put("", response_model=schemas.LlmCredentials, summary="Store the project's LLM key")
async def put_llm_credentials(
    body: schemas.LlmCredentialsUpdate, project: CurrentProject, state: State
) -> schemas.LlmCredentials:
    """Encrypted at rest; sent only to the servers this project's LLM personas name. The
    operator's key goes only to the operator's own server, never to a persona's ``base_url``."""
    async with state.db.write() as conn:
        return _out(await service.set_key(conn, project.id, body.api_key, state.settings))


@router.delete("", response_model=schemas.LlmCredentials, summary="Forget the project's LLM key")
async def delete_llm_credentials(project: CurrentProject, state: State) -> schemas.LlmCredentials:
    """Forget the project's LLM key; its LLM personas fall back to the operator's key, if any."""
    async with state.db.write() as conn:
        return _out(await service.remove_key(conn, project.id))
