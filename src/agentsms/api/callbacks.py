"""``/callbacks/{provider}/{account_id}``: carrier webhooks in (inbound texts and delivery
receipts), and ``/media/{token}``: inbound media served back.

The signature is checked with the carrier's own scheme against the URL the carrier called
(``AGENTSMS_PUBLIC_URL`` + path + query, which is what it signed behind a proxy); a
missing or bad signature answers 403 and changes nothing.
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request, Response

from agentsms.api.deps import State
from agentsms.core import media_types, provider_events
from agentsms.core import provider_accounts as accounts
from agentsms.errors import AgentsmsError, NotFound
from agentsms.providers.carrier import CallbackRequest, HttpCarrier, SignatureInvalid
from agentsms.store.repositories import provider_accounts as repo

router = APIRouter(tags=["callbacks"], include_in_schema=False)
log = structlog.get_logger("agentsms.callbacks")
MEDIA_POLICY = "sandbox; default-src 'none'"


class Forbidden(AgentsmsError):
    status = 403
    code = "signature_invalid"
    title = "Forbidden"


@router.post("/callbacks/{provider}/{account_id}")
async def carrier_callback(
    provider: str, account_id: str, request: Request, state: State
) -> Response:
    async with state.db.read() as conn:
        account = await repo.get_account(conn, account_id)
    if account is None or account["provider"] != provider:
        raise NotFound(f"no {provider} account {account_id}")
    if accounts.webhook_url(state.settings, provider, account_id) is None:
        raise NotFound(f"{provider} does not take HTTP callbacks")
    adapter = await state.providers.for_account(account_id)
    assert isinstance(adapter, HttpCarrier)
    url = f"{accounts.public_url(state.settings)}{request.url.path}"
    if request.url.query:
        url += f"?{request.url.query}"
    incoming = CallbackRequest(
        url=url,
        method=request.method,
        headers={k.lower(): v for k, v in request.headers.items()},
        body=await request.body(),
    )
    try:
        batch = adapter.parse_callback(incoming)
    except SignatureInvalid as error:
        log.warning("callbacks.signature_invalid", account_id=account_id, reason=str(error))
        raise Forbidden(f"signature check failed: {error}") from None
    except (ValueError, KeyError, TypeError) as error:
        raise AgentsmsError(f"unreadable {provider} callback: {error!r}") from None
    origin = provider_events.Origin.of_account(account)
    await provider_events.handle(
        state.db, state.settings, state.outbox, origin, batch, adapter.media_auth
    )
    return Response(adapter.callback_body, media_type=adapter.callback_content_type)


@router.get("/media/{token}")
async def media(token: str, state: State) -> Response:
    """Stored media: raster images inline, anything else as a download, never as a page
    (``nosniff`` and a sandbox without any source, even for media stored long ago)."""
    async with state.db.read() as conn:
        row = await repo.get_media(conn, token)
    if row is None:
        raise NotFound("no such media")
    data = bytes(row["data"])
    content_type, disposition = media_types.disposition(row["content_type"], data)
    return Response(
        data,
        media_type=content_type,
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": MEDIA_POLICY,
            "Content-Disposition": disposition,
            "Cache-Control": "private, max-age=86400",
        },
    )
