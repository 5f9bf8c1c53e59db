"""The handoff fence: the last moment a send may leave for its carrier.

The dispatcher hands a send to an adapter only while its claim holds the job, but an
adapter still awaits before the bytes leave (a connection from the pool, a slot in the
SMPP window, a database transaction in the simulator). A worker paused in one of those
waits (SIGSTOP, a swapped-out VM, a long GC) may wake up after its lease ran out and the
job was given to another worker. So the dispatcher sets a deadline around the call
(:func:`handoff_deadline`: the moment its claims stop surely holding their jobs), and each
adapter checks it right before the carrier receives anything, with no await in between:

- the HTTP adapters through :func:`arm_http_fence`, an httpx request hook whose httpcore
  trace refuses to write the request's headers after the deadline;
- the SMPP adapter before it writes a message's first ``submit_sm``;
- the simulator right before its send log takes the sends.

A send refused there gets :func:`lapsed` (retryable, ``handoff_lapsed``); the carrier
received nothing of it. The dispatcher then renews the claim and sends again only if the
job is still its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpx

from agentsms.providers.base import SendError, SendOutcome

HANDOFF_LAPSED = "handoff_lapsed"

_deadline: ContextVar[float] = ContextVar("agentsms_handoff_deadline", default=math.inf)
# httpcore's trace events right before a request's first bytes are written.
_WRITE_EVENTS = frozenset(
    {"http11.send_request_headers.started", "http2.send_request_headers.started"}
)

Trace = Callable[[str, dict[str, Any]], Awaitable[None]]


class HandoffLapsed(Exception):
    """The handoff deadline passed before the carrier received anything."""


@contextmanager
def handoff_deadline(until: float) -> Iterator[None]:
    """Sends made in this context (and the tasks it starts) leave only before ``until``
    (``time.time()`` seconds)."""
    token = _deadline.set(until)
    try:
        yield
    finally:
        _deadline.reset(token)


def handoff_open() -> bool:
    """Whether a send may still leave now."""
    return time.time() < _deadline.get()


def ensure_handoff_open() -> None:
    """Raise :class:`HandoffLapsed` when a send may no longer leave."""
    if not handoff_open():
        raise HandoffLapsed("the claim's lease may have run out before the send left")


def lapsed() -> SendError:
    """The outcome of a send the fence kept from its carrier."""
    return SendError(
        code=HANDOFF_LAPSED,
        message="not sent: the worker's claim may have lapsed before the send left",
        retryable=True,
    )


def is_lapsed(outcome: SendOutcome) -> bool:
    """Whether ``outcome`` is the fence's refusal (the carrier received nothing)."""
    return isinstance(outcome, SendError) and outcome.code == HANDOFF_LAPSED


async def arm_http_fence(request: httpx.Request) -> None:
    """An httpx ``request`` event hook: the request's headers are written only while the
    handoff is open (checked by an httpcore trace callback right before the write)."""
    if _deadline.get() == math.inf:
        return
    outer: Trace | None = request.extensions.get("trace")

    async def trace(event: str, info: dict[str, Any]) -> None:
        if event in _WRITE_EVENTS:
            ensure_handoff_open()
        if outer is not None:
            await outer(event, info)

    request.extensions["trace"] = trace


def fence_client(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """``client`` with :func:`arm_http_fence` among its request hooks (added once)."""
    hooks = client.event_hooks
    if arm_http_fence not in hooks["request"]:
        client.event_hooks = {**hooks, "request": [*hooks["request"], arm_http_fence]}
    return client
