"""The SDK's I/O-free core: request bodies, retry decisions, and problem parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from agentsms.client import _core as calls
from agentsms.client._core import RetryPolicy
from agentsms.client._errors import ApiError, NotFoundError, ServerError

POLICY = RetryPolicy(max_retries=2, backoff_seconds=0.3, max_wait_seconds=10.0)


def answer(
    status: int, body: object = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def test_a_send_body_uses_the_api_names_and_leaves_out_what_was_not_given() -> None:
    call = calls.send_message(
        "+14155552671",
        None,
        {
            "from_": "+14155550100",
            "send_at": datetime(2030, 1, 1, tzinfo=UTC),
            "media_urls": ("https://example.com/a.png",),
            "external_id": None,
        },
    )
    assert call.json == {
        "to": "+14155552671",
        "from": "+14155550100",
        "send_at": "2030-01-01T00:00:00Z",
        "media_urls": ["https://example.com/a.png"],
    }
    assert call.idempotency_key is not None
    assert call.repeatable
    given = calls.send_message("+14155552671", "hi", {"idempotency_key": "mine"})
    assert given.idempotency_key == "mine"
    assert "idempotency_key" not in given.json
    number = calls.add_number("+14155550101", {"price_per_segment": Decimal("0.0075")})
    assert number.json == {"number": "+14155550101", "price_per_segment": "0.0075"}


def test_each_send_gets_a_key_of_its_own_and_a_page_call_moves_its_cursor() -> None:
    keys = {calls.send_message("+14155552671", "hi", {}).idempotency_key for _ in range(3)}
    assert len(keys) == 3
    page = calls.list_messages(None, {"status": "sent", "from_": "+14155550100", "limit": 2})
    later = page.after("msg_B")
    assert later.params == {**page.params, "cursor": "msg_B"}
    assert page.params["from"] == "+14155550100"
    assert page.params["cursor"] is None


def test_network_errors_are_retried_only_when_resending_is_safe() -> None:
    send = calls.send_message("+14155552671", "hi", {})
    human = calls.send_in_conversation("conv_A", "hello", ())
    read = calls.get_message("msg_A")
    assert [POLICY.after_error(send, n) for n in range(3)] == [0.3, pytest.approx(0.9), None]
    assert POLICY.after_error(read, 0) == 0.3
    assert POLICY.after_error(human, 0) is None


def test_429_waits_for_retry_after_and_503_only_for_safe_calls() -> None:
    human = calls.send_in_conversation("conv_A", "hello", ())
    read = calls.get_message("msg_A")
    limited = answer(429, {"code": "rate_limited"}, {"Retry-After": "2"})
    assert POLICY.after_response(human, limited, 0) == 2.0
    assert POLICY.after_response(human, limited, 2) is None  # bounded
    huge = answer(429, None, {"Retry-After": "3600"})
    assert POLICY.after_response(read, huge, 0) == 10.0
    assert POLICY.after_response(read, answer(503), 1) == pytest.approx(0.9)
    assert POLICY.after_response(human, answer(503), 0) is None
    assert POLICY.after_response(read, answer(404, {"code": "not_found"}), 0) is None
    assert POLICY.after_response(read, answer(200, {}), 0) is None


def test_a_key_still_in_flight_is_awaited_only_after_our_own_retry() -> None:
    send = calls.send_message("+14155552671", "hi", {})
    in_flight = answer(409, {"code": "idempotency_key_in_flight"})
    assert POLICY.after_response(send, in_flight, 0) is None  # someone else's request
    assert POLICY.after_response(send, in_flight, 1) == pytest.approx(0.9)


def test_problems_become_the_exception_of_their_status() -> None:
    body = {
        "type": "https://agentsms.dev/problems/not_found",
        "title": "Not found",
        "status": 404,
        "detail": "no message msg_A",
        "code": "not_found",
        "errors": [{"field": "id", "message": "unknown"}],
    }
    error = ApiError.from_response(answer(404, body))
    assert isinstance(error, NotFoundError)
    assert error.problem() == body
    assert str(error) == "404 not_found: no message msg_A"
    proxy = ApiError.from_response(httpx.Response(502, text="<html>Bad gateway</html>"))
    assert isinstance(proxy, ServerError)
    assert (proxy.status, proxy.code, proxy.detail) == (
        502,
        "http_error",
        "<html>Bad gateway</html>",
    )
