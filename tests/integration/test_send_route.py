"""``POST /v1/messages`` takes its common request straight to the endpoint (``SendRoute``),
and answers everything else exactly as FastAPI's own handler does: each request below is
sent twice, once as it is and once with FastAPI's handler forced (a dependency override
turns the direct path off), and both answers must be the same."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.utils import solve_dependencies as solve

from agentsms.api.deps import get_state
from tests.conftest import Gateway

TO = "+14155550123"
VALID = json.dumps({"to": TO, "body": "hello", "metadata": {"k": "v"}})

# (content type, body, extra headers): each answered by FastAPI's handler either way.
REFUSED: list[tuple[str | None, str, list[tuple[str, str]]]] = [
    ("application/json", '{"to": "+1415555', []),  # not JSON
    ("application/json", "", []),  # no body
    ("application/json", "[1, 2]", []),  # not an object
    ("application/json", json.dumps({"body": "no recipient"}), []),
    ("application/json", json.dumps({"to": TO, "body": "x", "channel": "fax"}), []),
    ("application/json", json.dumps({"to": TO, "body": "x", "unknown": 1}), []),
    ("application/json", json.dumps({"to": "not a number", "body": "x"}), []),
    ("text/plain", VALID, []),
    (None, VALID, []),
    ("application/json", VALID, [("Idempotency-Key", "")]),
    ("application/json", VALID, [("Idempotency-Key", "x" * 300)]),
    ("application/json", VALID, [("Authorization", "Bearer ask_wrong")]),
    ("application/json", "{", [("Authorization", "Bearer ask_wrong")]),
]


@pytest.fixture
def handler_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The requests FastAPI's own handler solved the dependencies of."""
    calls: list[str] = []

    async def counted(*, request: fastapi.Request, **kwargs: object) -> object:
        calls.append(request.url.path)
        return await solve(request=request, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    return calls


@pytest.fixture
async def forced(gateway: Gateway) -> AsyncIterator[FastAPI]:
    """The app; within ``force(app)`` FastAPI's handler takes every send."""
    yield gateway.app
    gateway.app.dependency_overrides.pop(get_state, None)


def _force(app: FastAPI, on: bool) -> None:
    if on:
        app.dependency_overrides[get_state] = get_state  # the same dependency, overridden
    else:
        app.dependency_overrides.pop(get_state, None)


async def _send(
    client: httpx.AsyncClient,
    content_type: str | None,
    body: str,
    extra: list[tuple[str, str]],
) -> httpx.Response:
    headers = httpx.Headers({"Authorization": client.headers["Authorization"]})
    if content_type is not None:
        headers["Content-Type"] = content_type
    for name, value in extra:
        headers[name] = value
    return await client.post("/v1/messages", content=body.encode(), headers=headers)


async def test_a_valid_send_skips_fastapis_handler(
    gateway: Gateway, handler_calls: list[str]
) -> None:
    answer = await _send(gateway.client, "application/json", VALID, [("Idempotency-Key", "k1")])
    assert answer.status_code == 202, answer.text
    assert handler_calls == []
    replay = await _send(gateway.client, "application/json", VALID, [("Idempotency-Key", "k1")])
    assert replay.status_code == 202
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == answer.content
    assert handler_calls == []


@pytest.mark.parametrize(("content_type", "body", "extra"), REFUSED)
async def test_refused_sends_get_fastapis_own_answer(
    gateway: Gateway,
    forced: FastAPI,
    content_type: str | None,
    body: str,
    extra: list[tuple[str, str]],
) -> None:
    answers = []
    for on in (False, True):
        _force(forced, on)
        answers.append(await _send(gateway.client, content_type, body, extra))
    direct, standard = answers
    assert direct.status_code >= 400
    assert (direct.status_code, direct.content) == (standard.status_code, standard.content)
    assert direct.headers.get("content-type") == standard.headers.get("content-type")


async def test_accepted_sends_answer_the_same_either_way(
    gateway: Gateway, forced: FastAPI, handler_calls: list[str]
) -> None:
    shapes = []
    for on in (False, True):
        _force(forced, on)
        answer = await _send(gateway.client, "application/json", VALID, [])
        assert answer.status_code == 202, answer.text
        document = answer.json()
        shapes.append(
            (
                dict(answer.headers) | {"content-length": "", "date": ""},
                {k: v for k, v in document.items() if k not in {"id", "created_at", "updated_at"}},
            )
        )
    assert shapes[0] == shapes[1]
    assert handler_calls == ["/v1/messages"]  # the forced one only
