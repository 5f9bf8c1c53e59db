"""A local OpenAI-compatible chat-completions server for tests (real socket, real HTTP).

It speaks the wire format of ``POST /v1/chat/completions``: bearer auth, ``chat.completion``
objects with ``tool_calls``, and OpenAI's error bodies (``{"error": {"message", "type",
"param", "code"}}``) for 401/429/500. Tests script the answers in order and read the
requests it received (``server.requests``), so they can assert on the exact prompt.

:class:`ServerThread` runs any ASGI app under uvicorn in a background thread on
``127.0.0.1:0``; other local test servers use it too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp


class ServerThread:
    """Serve an ASGI app with uvicorn on 127.0.0.1 (a free port) in a daemon thread."""

    def __init__(self, app: ASGIApp) -> None:
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


@dataclass
class Scripted:
    """One answer of the fake: an HTTP status and JSON body, optionally after a delay."""

    status: int
    body: dict[str, Any]
    delay: float = 0.0


@dataclass
class RecordedRequest:
    """A request the fake received."""

    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.body["messages"]
        return messages

    @property
    def system_prompt(self) -> str:
        first = self.messages[0]
        assert first["role"] == "system"
        content: str = first["content"]
        return content

    @property
    def tools(self) -> list[dict[str, Any]]:
        tools: list[dict[str, Any]] = self.body.get("tools", [])
        return tools


def _error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


@dataclass
class FakeChatCompletions:
    """Scripted OpenAI-compatible server. Use :meth:`reply`, :meth:`end`, :meth:`fail`."""

    api_key: str = "sk-test-key"
    requests: list[RecordedRequest] = field(default_factory=list)
    _script: deque[Scripted] = field(default_factory=deque)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _thread: ServerThread | None = None

    # -- scripting -------------------------------------------------------------------

    def reply(self, text: str, *, delay: float = 0.0) -> None:
        """The next completion answers with this text."""
        self._script.append(Scripted(200, self._completion(text, None), delay))

    def end(
        self,
        outcome: str,
        extracted: dict[str, Any] | None = None,
        *,
        text: str | None = None,
        message: str | None = None,
        tool_name: str = "end_conversation",
        raw_arguments: str | None = None,
    ) -> None:
        """The next completion calls the end tool (optionally with text beside it)."""
        arguments: dict[str, Any] = {"outcome": outcome, "extracted": extracted or {}}
        if message is not None:
            arguments["message"] = message
        call = {
            "id": f"call_{next(self._ids)}",
            "type": "function",
            "function": {
                "name": tool_name,
                "arguments": raw_arguments if raw_arguments is not None else json.dumps(arguments),
            },
        }
        self._script.append(Scripted(200, self._completion(text, [call])))

    def fail(self, status: int, message: str | None = None) -> None:
        """The next request gets an OpenAI error body with this status."""
        kinds = {
            400: ("invalid_request_error", None),
            401: ("invalid_request_error", "invalid_api_key"),
            404: ("invalid_request_error", "model_not_found"),
            429: ("requests", "rate_limit_exceeded"),
            500: ("server_error", None),
            503: ("server_error", None),
        }
        type_, code = kinds.get(status, ("server_error", None))
        text = message or f"fake error {status}"
        self._script.append(Scripted(status, _error(text, type_, code)))

    def reset(self) -> None:
        self._script.clear()
        self.requests.clear()

    @property
    def pending(self) -> int:
        """Scripted answers not used yet."""
        return len(self._script)

    # -- wire format -----------------------------------------------------------------

    def _completion(
        self, text: str | None, tool_calls: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": 1_764_000_000,
            "model": "",  # filled with the requested model
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if tool_calls else "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            "system_fingerprint": "fp_fake",
        }

    async def _completions(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse(_error("body is not JSON", "invalid_request_error", None), 400)
        self.requests.append(RecordedRequest(dict(request.headers), body))
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse(
                _error("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
                401,
            )
        if not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
            return JSONResponse(
                _error("model and messages are required", "invalid_request_error", None), 400
            )
        if not self._script:
            return JSONResponse(_error("no scripted answer left", "server_error", None), 500)
        scripted = self._script.popleft()
        if scripted.delay:
            await asyncio.sleep(scripted.delay)
        answer = dict(scripted.body)
        if "model" in answer:
            answer["model"] = body["model"]
        return JSONResponse(answer, scripted.status)

    # -- lifecycle -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give an OpenAI client (ends with ``/v1``)."""
        assert self._thread is not None, "server not started"
        return f"{self._thread.url}/v1"

    def start(self) -> FakeChatCompletions:
        app = Starlette(routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])])
        self._thread = ServerThread(app)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
