"""The web dashboard at ``/dashboard``: server-rendered Jinja2 pages, htmx from static files.

``mount(app)`` adds its routes and static files to the API's application.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from agentsms.dashboard import compose, inbox, live, optouts, pages, personas, webhooks
from agentsms.dashboard.web import HERE, PREFIX


def mount(app: FastAPI) -> None:
    """Serve the dashboard from ``app`` under ``/dashboard``."""
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")
    for module in (pages, compose, inbox, webhooks, personas, optouts, live):
        app.include_router(module.router)
