"""AGENTSMS_ALLOW_INSECURE_URLS is off by default and loudly warned about when on."""

from __future__ import annotations

from structlog.testing import capture_logs

from agentsms.config import Settings
from agentsms.webhooks.ssrf import warn_if_insecure


def test_off_by_default_and_silent() -> None:
    assert Settings().allow_insecure_urls is False
    with capture_logs() as logs:
        warn_if_insecure(Settings())
    assert logs == []


def test_warned_when_on() -> None:
    with capture_logs() as logs:
        warn_if_insecure(Settings(allow_insecure_urls=True))
    [entry] = logs
    assert entry["log_level"] == "warning"
    assert entry["event"] == "insecure_urls_allowed"
    assert "AGENTSMS_ALLOW_INSECURE_URLS" in entry["detail"]
