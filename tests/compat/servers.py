"""A real HTTP server on loopback for the vendor samples (curl, Python, Node) to call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[int]:
    """Serve ``app`` (already started) on 127.0.0.1; yields the port."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off")
    config.log_level = "warning"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.02)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task
