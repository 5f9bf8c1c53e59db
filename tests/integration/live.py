"""Serve a running app over real HTTP on loopback, inside the test's own event loop.

The app's database connections belong to the loop that started its lifespan, so uvicorn
runs there as a task (``lifespan="off"``: the app is already started). Blocking clients
must then run in a thread (``anyio.to_thread.run_sync``) so the loop can answer them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from tests.acceptance.processes import free_port


@asynccontextmanager
async def serve(app: FastAPI, *, within: float = 10.0) -> AsyncIterator[str]:
    """The base URL of ``app`` served by uvicorn on 127.0.0.1 until the block ends."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(within):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
