"""Every vendor surface, mounted on the app by ``install``."""

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
