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


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        ("10.0.0.5, 172.18.0.0/16", ["10.0.0.5", "172.18.0.0/16"]),
        ('["::1"]', ["::1"]),
    ],
)
def test_trusted_proxies_are_read_comma_separated_or_as_json(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv("HEDGEROW_TRUSTED_PROXIES", value)
    assert Settings(_env_file=None).trusted_proxies == expected


def test_a_trusted_proxy_must_be_an_address_or_a_network() -> None:
    with pytest.raises(ValidationError, match=r"'proxy\.local' is not an IP address or network"):
        Settings(_env_file=None, trusted_proxies="10.0.0.5,proxy.local")


def test_nobody_s_forwarded_headers_are_trusted_by_default() -> None:
    assert Settings(_env_file=None).trusted_proxies == []
