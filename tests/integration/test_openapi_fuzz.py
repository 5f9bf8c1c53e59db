"""Property-based: every operation of ``/openapi.json`` (native and vendor surfaces), fed
schemathesis-generated requests, valid and invalid, never answers a server error, on
every backend.

The requests are generated once (hypothesis, a bounded number per operation and mode,
derandomized so a run is repeatable) and then sent through the ASGI app on the test's own
event loop (the database engines are bound to it), with a valid API key of a project that
has a number; each answer goes through schemathesis's ``not_a_server_error`` check.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.conftest import open_gateway

# Never generated: operations that stream or block by design.
EXCLUDED = {
    # Server-sent events: answers 200 and then streams until the client goes away.
    ("GET", "/v1/events/stream"),
}
# Per operation and generation mode; AGENTSMS_FUZZ_EXAMPLES raises it for a longer hunt.
EXAMPLES = int(os.environ.get("AGENTSMS_FUZZ_EXAMPLES", "8"))


def _cases(operation: Any, mode: GenerationMode) -> list[Any]:
    collected: list[Any] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy(mode))
    def collect(case: Any) -> None:
        collected.append(case)

    try:
        collect()
    except Unsatisfiable:  # nothing to make invalid: an operation without inputs
        return []
    return collected


def _request(case: Any) -> dict[str, Any]:
    """httpx keyword arguments for a case (schemathesis serializes for ``requests``)."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    headers = {k: v for k, v in kwargs["headers"].items() if k.lower() != "authorization"}
    if kwargs.get("cookies"):
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())
    request: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": headers,
        "params": kwargs.get("params"),
    }
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    data = kwargs.get("data")
    if isinstance(data, bytes | str):
        request["content"] = data
    elif data is not None:
        request["data"] = data
    if "files" in kwargs:
        request["files"] = kwargs["files"]
    return request


@functools.cache
def _generated(schema_text: str) -> list[tuple[Any, dict[str, Any]]]:
    """Every (case, request) to send, generated once for all backends."""
    schema = schemathesis.openapi.from_dict(json.loads(schema_text))
    generated = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in EXCLUDED:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            generated.extend((case, _request(case)) for case in _cases(operation, mode))
    return generated


def _shown(request: dict[str, Any]) -> str:
    body = request.get("json", request.get("content", request.get("data")))
    return f"{request['method']} {request['url']} {request.get('params')} {str(body)[:300]}"


@pytest.mark.timeout(600)
async def test_no_operation_answers_a_server_error(app_under_test: FastAPI) -> None:
    generated = _generated(json.dumps(app_under_test.openapi(), sort_keys=True))
    assert len(generated) > 100
    failures: list[str] = []
    async with (
        open_gateway(app_under_test, "fuzz") as gateway,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app_under_test),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {gateway.api_key}"},
        ) as client,
    ):
        for case, request in generated:
            try:
                response = await client.request(**request)
            except Exception as error:  # the app raised past every handler
                failures.append(f"{_shown(request)} raised {error!r}")
                continue
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except Exception as error:
                failures.append(f"{_shown(request)} -> {response.status_code}: {error}")
    assert not failures, "\n".join(failures)
