"""Driving the dashboard like a browser would: cookies, CSRF tokens, forms."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from tests.conftest import Gateway

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def field_error(html: str, field: str) -> str | None:
    """The error text shown beside ``field`` (its ``<p id="<field>-error">``), if any."""
    found = re.search(
        rf'<p class="field-error" id="{re.escape(field)}-error"[^>]*>([^<]*)</p>', html
    )
    return found.group(1) if found else None


@dataclass
class Browser:
    """An httpx client with a cookie jar, signed in or not, and its current CSRF token."""

    http: httpx.AsyncClient
    csrf: str = ""

    async def get(self, path: str, **kwargs: object) -> httpx.Response:
        response = await self.http.get(path, **kwargs)  # type: ignore[arg-type]
        if 'name="csrf_token"' in response.text:
            self.csrf = csrf_of(response.text)
        return response

    async def post(
        self, path: str, data: dict[str, str] | None = None, **kwargs: object
    ) -> httpx.Response:
        form = {"csrf_token": self.csrf, **(data or {})}
        return await self.http.post(path, data=form, **kwargs)  # type: ignore[arg-type]

    async def sign_in(self, api_key: str) -> httpx.Response:
        await self.get("/dashboard/login")
        response = await self.post("/dashboard/login", {"api_key": api_key, "next": "/dashboard"})
        assert response.status_code == 303, response.text
        return response


@asynccontextmanager
async def browser(gateway: Gateway, base_url: str = "http://testserver") -> AsyncIterator[Browser]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app), base_url=base_url
    ) as http:
        yield Browser(http)


@asynccontextmanager
async def signed_in(gateway: Gateway) -> AsyncIterator[Browser]:
    async with browser(gateway) as opened:
        await opened.sign_in(gateway.api_key)
        await opened.get("/dashboard")
        yield opened
