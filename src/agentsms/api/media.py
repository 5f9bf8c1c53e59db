"""``/v1/media``: upload outbound media; its URL goes in a message's ``media_urls``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from agentsms.api.deps import CurrentProject, State
from agentsms.core import media as service
from agentsms.errors import FieldError

router = APIRouter(prefix="/v1/media", tags=["media"])


class StoredMedia(BaseModel):
    """Uploaded media: ``url`` is unguessable and public, for the carrier to fetch."""

    url: str
    content_type: str
    size: int


@router.post(
    "",
    status_code=201,
    response_model=StoredMedia,
    summary="Upload media for an MMS",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload_media(request: Request, project: CurrentProject, state: State) -> StoredMedia:
    """Store the request body (its ``Content-Type`` is the media's) and return its URL."""
    data = await request.body()
    content_type = request.headers.get("content-type")
    upload, errors = service.check_upload(
        "body", content_type, data, state.settings.media_max_bytes
    )
    names = {"body.content_type": "Content-Type", "body.data": "body"}
    errors = [FieldError(names.get(e.field, e.field), e.message) for e in errors]
    (upload,) = service.require_uploads([(upload, errors)])
    async with state.db.write() as conn:
        (url,) = await service.store_uploads(conn, state.settings, project.id, [upload])
    return StoredMedia(url=url, content_type=upload.content_type, size=len(upload.data))
