"""Vendor-compatible APIs: each vendor's paths, shapes and error bodies under
``/compat/<vendor>``, translated onto agentsms's core (see ``_common`` for the plumbing).

To add a vendor: write ``api/compat/<vendor>.py`` with an
``APIRouter(prefix="/compat/<vendor>")``, a ``render_error(Failure) -> Response`` and
``VENDOR = Vendor(name, router, render_error)``, and append it to ``VENDORS``.
"""

from __future__ import annotations

from fastapi import FastAPI

from agentsms.api.compat import (
    _common,
    agentphone,
    agentphone_account,
    agentphone_usage,
    bland,
    polyai,
    security,
    telegent,
    vida,
)
from agentsms.api.compat._common import COMPAT_ROOT, Vendor
from agentsms.config import Settings

__all__ = ["COMPAT_ROOT", "VENDORS", "install"]

VENDORS: list[Vendor] = [
    telegent.VENDOR,
    bland.VENDOR,
    agentphone.VENDOR,
    agentphone_account.VENDOR,
    agentphone_usage.VENDOR,
    polyai.VENDOR,
    vida.VENDOR,
]


def install(app: FastAPI, settings: Settings) -> None:
    """Mount every vendor surface; call after ``problems.install``."""
    _common.install(app, settings, VENDORS)
    security.install(app, [vendor.name for vendor in VENDORS])
