"""FastAPI dependencies: the app state and the calling project."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from agentsms.api.state import AppState
from agentsms.core import projects
from agentsms.core.projects import Project
from agentsms.errors import Unauthorized


def app_state(request: Request) -> AppState:
    """What the app holds for every request (settings, database, providers, caches)."""
    state: AppState = request.app.state.agentsms
    return state


async def get_state(request: Request) -> AppState:
    return app_state(request)


State = Annotated[AppState, Depends(get_state)]


def client_address(request: Request) -> str:
    """The caller's address (the proxy's forwarded one when uvicorn trusts the proxy)."""
    return request.client.host if request.client else "unknown"


async def project_for_key(state: AppState, api_key: str, client: str) -> Project:
    """The project owning ``api_key`` (cached for a few seconds; a revoked key stops then).

    A key that is not cached is checked under the failed-credentials limit of ``client``
    (its address): ``RateLimited`` once it failed too often this minute.
    """
    digest = projects.hash_key(api_key)
    cached = state.key_cache.get(digest)
    now = time.monotonic()
    if cached is not None and cached[1] > now:
        return cached[0]
    # The requests that arrive while the key is being looked up (under load, every request
    # in flight when its cache entry expires) take that lookup's project; if it fails,
    # each checks the key itself, so each failure still counts.
    pending = state.key_lookups.get(digest)
    if pending is not None:
        found = await asyncio.shield(pending)
        if found is not None:
            return found
        return await _look_up(state, api_key, digest, client, now)
    lookup: asyncio.Future[Project | None] = asyncio.get_running_loop().create_future()
    state.key_lookups[digest] = lookup
    project: Project | None = None
    try:
        project = await _look_up(state, api_key, digest, client, now)
    finally:
        del state.key_lookups[digest]
        lookup.set_result(project)
    return project


async def _look_up(state: AppState, api_key: str, digest: str, client: str, now: float) -> Project:
    per_minute = state.settings.auth_failures_per_minute
    async with state.limiter.guard_credentials(client, per_minute), state.db.read() as conn:
        project = await projects.authenticate(conn, api_key)
    state.remember_key(digest, project, now)
    return project


class ProjectKey(HTTPBearer):
    """The calling project, from its API key in ``Authorization: Bearer <key>``.

    A bearer security scheme itself (so OpenAPI documents it) that resolves to the project
    in one dependency step: on the send path every extra step costs measurable time.
    """

    async def __call__(self, request: Request) -> Project:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None or not credentials.credentials:
            raise Unauthorized("missing API key: send Authorization: Bearer <key>")
        state = app_state(request)
        project = await project_for_key(state, credentials.credentials, client_address(request))
        await state.limiter.check(project, state.settings.default_rate_limit_per_second)
        return project


project_key = ProjectKey(
    scheme_name="HTTPBearer", auto_error=False, description="A project API key"
)
"""The calling project's dependency (``CurrentProject``), callable with the request."""

CurrentProject = Annotated[Project, Depends(project_key)]
