"""``SendRoute``: ``POST /v1/messages`` without FastAPI's general parameter machinery on
the common request.

A send is the request that comes most often, and FastAPI's per-request work for it
(resolving the dependency graph, parsing the content type, reading the header and query
parameters one by one) cost more than validating, storing and answering the message. For
a request FastAPI would take without complaint (``Content-Type: application/json``, a
JSON body the route's body model accepts, at most one ``Idempotency-Key``) this route
calls the endpoint itself with the same validated body, the same ``project_key``
dependency and the same header. Anything else (a body that does not validate, another
content type, overridden dependencies, OpenTelemetry configured for FastAPI) goes
through FastAPI's own handler, so every error answer is FastAPI's, unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from fastapi.telemetry import get_telemetry_data
from starlette.requests import Request
from starlette.responses import Response

from agentsms.api.deps import project_key

JSON = "application/json"
IDEMPOTENCY_KEY = "idempotency-key"


class SendRoute(APIRoute):
    """An ``APIRoute`` for an endpoint ``(body, project, request, idempotency_key)`` that
    returns a ``Response``: the common request goes straight to the endpoint."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()
        body_field = self.body_field
        endpoint = self.endpoint
        assert body_field is not None, "a SendRoute's endpoint takes a JSON body"

        async def handle(request: Request) -> Response:
            headers = request.headers
            if (
                headers.get("content-type") != JSON
                or len(headers.getlist(IDEMPOTENCY_KEY)) > 1
                or getattr(request.app, "dependency_overrides", None)
                or get_telemetry_data() is not None
            ):
                return await standard(request)
            try:
                document = json.loads(await request.body())
            except ValueError:
                return await standard(request)
            body, errors = body_field.validate(document, {}, loc=("body",))
            if errors:
                return await standard(request)
            project = await project_key(request)
            response: Response = await endpoint(
                body=body,
                project=project,
                request=request,
                idempotency_key=headers.get(IDEMPOTENCY_KEY),
            )
            return response

        return handle
