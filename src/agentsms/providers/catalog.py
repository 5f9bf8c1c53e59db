"""The carriers agentsms can hold accounts at: credential keys, default API and adapter;
and every provider's words for its error codes (:func:`error_description`)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CarrierSpec:
    """What an account at this carrier needs."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    default_api_base_url: str | None
    adapter: str  # "module:Class", imported when first needed
    schemes: tuple[str, ...] = ("https", "http")
    webhooks: bool = True  # False: receipts and texts come over the adapter's own session
    channels: tuple[str, ...] | None = None  # what its numbers can carry, if limited

    def adapter_class(self) -> type:
        """The adapter class, built as ``cls(account, events=events)``."""
        module_name, _, class_name = self.adapter.partition(":")
        found = getattr(importlib.import_module(module_name), class_name)
        assert isinstance(found, type)
        return found


CARRIERS: dict[str, CarrierSpec] = {
    spec.name: spec
    for spec in (
        CarrierSpec(
            "twilio",
            ("account_sid", "auth_token"),
            ("messaging_service_sid",),
            "https://api.twilio.com",
            "agentsms.providers.twilio:TwilioProvider",
        ),
        CarrierSpec(
            "telnyx",
            ("api_key", "public_key"),
            ("messaging_profile_id",),
            "https://api.telnyx.com",
            "agentsms.providers.telnyx:TelnyxProvider",
        ),
        CarrierSpec(
            "vonage",
            ("api_key", "api_secret", "application_id", "private_key", "signature_secret"),
            (),
            "https://api.nexmo.com",
            "agentsms.providers.vonage:VonageProvider",
        ),
        CarrierSpec(
            "plivo",
            ("auth_id", "auth_token"),
            (),
            "https://api.plivo.com",
            "agentsms.providers.plivo:PlivoProvider",
        ),
        CarrierSpec(
            "smpp",
            ("system_id", "password"),
            ("system_type",),
            None,
            "agentsms.providers.smpp:SmppProvider",
            schemes=("smpp", "smpps"),
            webhooks=False,
            channels=("sms",),
        ),
    )
}

# The simulator is built in (no accounts), but words its error codes like the others.
_ERROR_TABLES = {
    "simulator": "agentsms.providers.simulator",
    **{name: spec.adapter.partition(":")[0] for name, spec in CARRIERS.items()},
}


def error_description(provider: str, code: str) -> str | None:
    """How ``provider`` words its error ``code`` (the ``ERRORS`` table of its module), if
    it knows the code: for a receipt that gives the code alone."""
    module_name = _ERROR_TABLES.get(provider)
    if module_name is None:
        return None
    table = getattr(importlib.import_module(module_name), "ERRORS", None)
    if not isinstance(table, dict):
        return None
    found = table.get(code)
    return None if found is None else str(found)
