"""How each provider's answer becomes a profile: GitHub and Discord speak plain OAuth 2 with
their own user APIs (no id_token), OpenID Connect providers a signed id_token plus userinfo.
Pure functions over the answers the providers document."""

from __future__ import annotations

import pytest

from hedgerow.accounts import oauth
from hedgerow.errors import AppError
from tests.growth.factories import override_settings


@pytest.fixture
def all_providers(monkeypatch: pytest.MonkeyPatch) -> dict[str, oauth.Provider]:
    override_settings(
        monkeypatch,
        oauth_github_client_id="gh",
        oauth_github_client_secret="s",
        oauth_google_client_id="go",
        oauth_google_client_secret="s",
        oauth_discord_client_id="dc",
        oauth_discord_client_secret="s",
    )
    return {provider.name: provider for provider in oauth.configured_providers()}


def test_configured_providers_follow_the_settings(all_providers: dict[str, oauth.Provider]) -> None:
    assert list(all_providers) == ["github", "google", "discord"]
    assert all_providers["google"].openid and not all_providers["github"].openid
    assert not all_providers["discord"].openid


def test_github_profile_uses_the_numeric_id_and_the_verified_primary_address(
    all_providers: dict[str, oauth.Provider],
) -> None:
    info = {
        "id": 583231,
        "login": "octocat",
        "name": "The Octocat",
        "email": "o@gh.example",
        "email_verified": True,
    }
    profile = oauth._profile(all_providers["github"], {}, info)
    assert (profile.subject, profile.username_hint, profile.display) == (
        "583231",
        "octocat",
        "The Octocat",
    )
    assert profile.email == "o@gh.example" and profile.email_verified


def test_discord_profile_reads_verified_from_its_own_field(
    all_providers: dict[str, oauth.Provider],
) -> None:
    info = {
        "id": "80351110224678912",
        "username": "nelly",
        "global_name": "Nelly",
        "email": "nelly@discord.example",
        "verified": False,
    }
    profile = oauth._profile(all_providers["discord"], {}, info)
    assert profile.subject == "80351110224678912" and profile.display == "Nelly"
    assert profile.email == "nelly@discord.example" and not profile.email_verified


def test_openid_userinfo_about_someone_else_is_refused(
    all_providers: dict[str, oauth.Provider],
) -> None:
    with pytest.raises(AppError) as refused:
        oauth._profile(all_providers["google"], {"sub": "a"}, {"sub": "b", "email": "x@y.z"})
    assert refused.value.code == "oauth_failed"
    profile = oauth._profile(
        all_providers["google"], {"sub": "a", "email": "x@y.z", "email_verified": True}, {}
    )
    assert profile.subject == "a" and profile.email_verified


def test_a_profile_without_a_subject_is_refused(all_providers: dict[str, oauth.Provider]) -> None:
    with pytest.raises(AppError) as refused:
        oauth._profile(all_providers["github"], {}, {"login": "nobody"})
    assert refused.value.code == "oauth_failed"
