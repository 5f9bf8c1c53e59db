"""Settings that are refused at startup."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agentsms.config import Settings


def test_the_bootstrap_key_has_at_least_24_characters() -> None:
    with pytest.raises(ValidationError, match="at least 24 characters"):
        Settings(bootstrap_api_key="x" * 23)
    assert Settings(bootstrap_api_key="x" * 24).bootstrap_api_key == "x" * 24
    assert Settings(bootstrap_api_key="").bootstrap_api_key is None  # empty: unset
