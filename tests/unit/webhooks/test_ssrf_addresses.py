"""Address rules of the SSRF guard: numeric host spellings and which addresses are allowed."""

from __future__ import annotations

import ipaddress

import pytest

from agentsms.config import Settings
from agentsms.errors import ValidationFailed
from agentsms.webhooks.ssrf import UnsafeURL, blocked_reason, check_url, parse_ipv4_literal


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F.0x00.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("8.8.8.8.", "8.8.8.8"),
        ("3232235777", "192.168.1.1"),
    ],
)
def test_numeric_spellings_parse_like_inet_aton(host: str, expected: str) -> None:
    assert parse_ipv4_literal(host) == ipaddress.IPv4Address(expected)


@pytest.mark.parametrize("host", ["example.com", "1.example", "a1", "0x7g.1", "", "xn--e1a"])
def test_names_are_not_numbers(host: str) -> None:
    assert parse_ipv4_literal(host) is None


@pytest.mark.parametrize("host", ["256.1.1.1", "1.2.3.4.5", "4294967296", "1.16777216", "09.1"])
def test_out_of_range_numbers_are_refused(host: str) -> None:
    with pytest.raises(UnsafeURL):
        parse_ipv4_literal(host)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.255",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "198.18.0.1",
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",
        "::8.8.8.8",
        "2002:7f00:1::",
        "2002:a00:1::1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::1",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        "2001::1",
    ],
)
def test_never_routable_addresses_are_blocked(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "2002:808:808::1",
        "64:ff9b::808:808",
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


def test_check_url_names_the_field_and_explains() -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_url("https://[::ffff:169.254.169.254]/latest", "conversation.webhook_url", Settings())
    [error] = refused.value.errors
    assert error.field == "conversation.webhook_url"
    assert "link-local" in error.message
    assert refused.value.status == 422


def test_insecure_mode_allows_http_and_private_but_not_other_schemes() -> None:
    insecure = Settings(allow_insecure_urls=True)
    check_url("http://127.0.0.1:8080/hook", "url", insecure)
    check_url("https://10.0.0.1/hook", "url", insecure)
    with pytest.raises(ValidationFailed):
        check_url("file:///etc/passwd", "url", insecure)
    with pytest.raises(ValidationFailed):
        check_url("gopher://127.0.0.1/", "url", insecure)
