"""The package version: read by the SDK's and the webhooks' User-Agent, the app and the
dashboard. Below every layer, so none of them imports the package root (which loads the
SDK)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
