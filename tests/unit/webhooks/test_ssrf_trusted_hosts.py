"""The operator's allow-list (``AGENTSMS_TRUSTED_PRIVATE_HOSTS``) and the insecure flag."""

from __future__ import annotations

from collections.abc import Sequence

import pydantic
import pytest

from agentsms.config import Settings
from agentsms.webhooks.ssrf import UnsafeURL, UrlPolicy, VettingBackend, url_problem

LAN = Settings(trusted_private_hosts="ollama.lan, 10.1.2.3, 192.168.50.0/24, [fd00::7]")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:11434/v1",
        "https://[::1]/v1",
        "https://[::ffff:127.0.0.1]/v1",
        "https://2130706433/v1",  # 127.0.0.1 in decimal
        "https://0177.0.0.1/v1",  # ... in octal
        "https://0x7f.1/v1",  # ... in hex
        "https://10.1.2.4/v1",
        "https://169.254.169.254/latest",
        "https://localhost/v1",
        "http://ollama.example/v1",  # not trusted: https only
    ],
)
def test_private_and_loopback_urls_are_refused_by_default(url: str) -> None:
    assert url_problem(url, Settings()) is not None
    assert url_problem(url, LAN) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://ollama.lan:11434/v1",
        "http://OLLAMA.LAN.:11434/v1",
        "http://10.1.2.3:11434/v1",
        "https://[::ffff:10.1.2.3]/v1",
        "http://192.168.50.77/v1",
        "http://[fd00::7]:8000/v1",
    ],
)
def test_trusted_private_hosts_are_allowed_with_http(url: str) -> None:
    assert url_problem(url, LAN) is None
    assert url_problem(url, Settings()) is not None


def test_the_insecure_flag_allows_everything_http() -> None:
    insecure = Settings(allow_insecure_urls=True)
    assert url_problem("http://127.0.0.1:9/hook", insecure) is None
    assert url_problem("ftp://127.0.0.1/", insecure) is not None


def test_a_bad_allow_list_entry_is_refused_at_startup() -> None:
    with pytest.raises(pydantic.ValidationError, match="not a host name"):
        Settings(trusted_private_hosts="10.0.0.0/33")
    with pytest.raises(pydantic.ValidationError, match="not a host name"):
        Settings(trusted_private_hosts="ollama lan")


def _backend(settings: Settings, answers: dict[str, Sequence[str]]) -> VettingBackend:
    async def resolve(host: str, port: int) -> Sequence[str]:
        return answers[host]

    return VettingBackend(policy=UrlPolicy.of(settings), resolver=resolve, dialer=None)


async def test_a_name_resolving_to_loopback_is_refused_at_connect_time() -> None:
    answers = {"rebind.example": ["127.0.0.1"], "mixed.example": ["93.184.216.34", "10.0.0.1"]}
    backend = _backend(Settings(), answers)
    with pytest.raises(UnsafeURL, match="loopback"):
        await backend.addresses("rebind.example", 443)
    with pytest.raises(UnsafeURL, match="private"):
        await backend.addresses("mixed.example", 443)


async def test_trusted_names_and_networks_are_dialed_at_connect_time() -> None:
    answers = {
        "ollama.lan": ["10.9.9.9"],
        "gpu.example": ["192.168.50.8"],
        "other.example": ["192.168.51.8"],
    }
    backend = _backend(LAN, answers)
    assert await backend.addresses("ollama.lan", 11434) == ["10.9.9.9"]
    assert await backend.addresses("gpu.example", 443) == ["192.168.50.8"]
    with pytest.raises(UnsafeURL, match="private"):
        await backend.addresses("other.example", 443)
    with pytest.raises(UnsafeURL, match="loopback"):
        await backend.addresses("127.0.0.1", 443)
