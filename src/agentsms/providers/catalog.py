"""The carriers agentsms can hold accounts at: credential keys, default API and adapter."""

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
