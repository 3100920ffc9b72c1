"""Settings refuse unsafe production configurations."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hedgerow.config import DEFAULT_SECRET_KEY, Settings

GOOD_SECRET = "x" * 48


def test_production_refuses_the_default_secret_key() -> None:
    with pytest.raises(ValidationError, match="HEDGEROW_SECRET_KEY is the development default"):
        Settings(_env_file=None, environment="production", secret_key=DEFAULT_SECRET_KEY)


def test_production_refuses_a_short_secret_key() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(_env_file=None, environment="production", secret_key="too-short")


def test_production_starts_with_a_long_random_secret() -> None:
    settings = Settings(_env_file=None, environment="production", secret_key=GOOD_SECRET)
    assert settings.secret_key == GOOD_SECRET


def test_development_tolerates_the_default_secret_key() -> None:
    settings = Settings(_env_file=None, environment="development", secret_key=DEFAULT_SECRET_KEY)
    assert settings.is_development


def test_production_reads_the_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEDGEROW_ENVIRONMENT", "production")
    monkeypatch.setenv("HEDGEROW_SECRET_KEY", DEFAULT_SECRET_KEY)
    with pytest.raises(ValidationError):
        Settings(_env_file=None)
