"""Settings: the database URL gets the driver agentsms uses; bad settings are refused at startup."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agentsms.config import ConfigurationError, Settings, normalize_database_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("postgresql://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("POSTGRESQL://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("postgresql+asyncpg://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("sqlite:///./agentsms.db", "sqlite+aiosqlite:///./agentsms.db"),
        ("sqlite:////var/lib/agentsms.db", "sqlite+aiosqlite:////var/lib/agentsms.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("  sqlite+aiosqlite:///x.db  ", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_common_spellings_get_the_driver_agentsms_uses(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


@pytest.mark.parametrize(
    "given",
    ["foo", "", "mysql://root@db/app", "postgresql+psycopg2://u@db/app", "sqlite:", "db:5432"],
)
def test_other_forms_are_refused_naming_the_value_and_the_accepted_forms(given: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        normalize_database_url(given)
    message = str(refused.value)
    assert repr(given) in message
    assert "sqlite+aiosqlite:///" in message
    assert "postgresql+asyncpg://" in message
    assert "\n" not in message


def test_settings_normalise_the_environment_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSMS_DATABASE_URL", "postgres://agentsms@127.0.0.1/agentsms")
    assert Settings().database_url == "postgresql+asyncpg://agentsms@127.0.0.1/agentsms"


def test_a_refused_database_url_does_not_show_its_password() -> None:
    with pytest.raises(ConfigurationError) as refused:
        normalize_database_url("mysql://app:s3cret-pw@db/app")
    assert "s3cret-pw" not in str(refused.value)
    assert "mysql://app:***@db/app" in str(refused.value)


def test_the_bootstrap_key_has_at_least_24_characters() -> None:
    with pytest.raises(ValidationError, match="at least 24 characters"):
        Settings(bootstrap_api_key="x" * 23)
    assert Settings(bootstrap_api_key="x" * 24).bootstrap_api_key == "x" * 24
    assert Settings(bootstrap_api_key="").bootstrap_api_key is None  # empty: unset
