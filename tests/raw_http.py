"""Reading HTTP/1.1 requests off a raw ``asyncio`` stream, for the tests' hand-made
servers (a keep-alive receiver, a site that answers each path its own way)."""

from __future__ import annotations

import asyncio


async def read_request(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    """The next request's path and body (its ``Content-Length`` bytes); raises
    ``asyncio.IncompleteReadError`` when the client closed the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    path = lines[0].split(b" ")[1].decode()
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return path, await reader.readexactly(length)
