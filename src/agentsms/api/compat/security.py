"""Each vendor's auth in ``/openapi.json``: its security schemes, and a requirement on every
operation under its prefix, so Swagger's "Try it out" sends the credential the way the
vendor's clients do (a compat module reads the credential itself, not through a FastAPI
security dependency, so nothing declares it otherwise)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from agentsms.api.compat._common import COMPAT_ROOT

_API_KEY = "an agentsms project API key"


@dataclass(frozen=True, slots=True)
class VendorAuth:
    """``schemes`` (OpenAPI security schemes) all required together on the vendor's
    operations, except on the ``open_paths`` (relative to the vendor's prefix)."""

    schemes: Mapping[str, Mapping[str, Any]]
    open_paths: frozenset[str] = field(default_factory=frozenset)


AUTH: Mapping[str, VendorAuth] = {
    "vida": VendorAuth(
        {
            "VidaToken": {
                "type": "apiKey",
                "in": "query",
                "name": "token",
                "description": f"Vida's `?token=`: {_API_KEY}",
            }
        }
    ),
    "polyai": VendorAuth(
        {
            "PolyAiAuthToken": {
                "type": "apiKey",
                "in": "header",
                "name": "X-PolyAi-Auth-Token",
                "description": f"PolyAI's auth token: {_API_KEY}",
            },
            "PolyAiTokenId": {
                "type": "apiKey",
                "in": "header",
                "name": "X-TOKEN-ID",
                "description": "PolyAI's connector: the project's id (`proj_…`)",
            },
        }
    ),
    "telegent": VendorAuth(
        {
            "TelegentBearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "The `token` of `POST /v1.0/oauth2/tokens` "
                "(AccountKey: the project's id; AccountSecret: one of its API keys)",
            }
        },
        open_paths=frozenset({"/v1.0/oauth2/tokens"}),
    ),
    "bland": VendorAuth(
        {
            "BlandAuthorization": {
                "type": "apiKey",
                "in": "header",
                "name": "authorization",
                "description": f"Bland's `authorization` header: {_API_KEY} (or `Bearer KEY`)",
            }
        }
    ),
    "agentphone": VendorAuth(
        {
            "AgentPhoneBearer": {
                "type": "http",
                "scheme": "bearer",
                "description": f"`Authorization: Bearer KEY`: {_API_KEY}",
            }
        }
    ),
}


def declare(schema: dict[str, Any], auth: Mapping[str, VendorAuth]) -> dict[str, Any]:
    """``schema`` (an OpenAPI document) with each vendor's schemes and requirements."""
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    for vendor in auth.values():
        schemes.update({name: dict(scheme) for name, scheme in vendor.schemes.items()})
    for path, operations in schema.get("paths", {}).items():
        found = _vendor_of(path, auth)
        if found is None:
            continue
        relative, vendor = found
        requirement: list[dict[str, list[str]]] = (
            [] if relative in vendor.open_paths else [{name: [] for name in vendor.schemes}]
        )
        for operation in operations.values():
            if isinstance(operation, dict):
                operation["security"] = requirement
    return schema


def _vendor_of(path: str, auth: Mapping[str, VendorAuth]) -> tuple[str, VendorAuth] | None:
    for name, vendor in auth.items():
        prefix = f"{COMPAT_ROOT}/{name}"
        if path.startswith(prefix + "/"):
            return path.removeprefix(prefix), vendor
    return None


def install(app: FastAPI, vendors: Sequence[str]) -> None:
    """Declare the auth of ``vendors`` in the app's OpenAPI document (built once)."""
    auth = {name: AUTH[name] for name in dict.fromkeys(vendors) if name in AUTH}
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        return declare(build(), auth)

    app.openapi = openapi  # type: ignore[method-assign]
