"""The accounts pages the route table cannot visit twice with one URL, in the
pseudo-locale: the single-use email confirmation, the provider's first-sign-in form (it
needs the cookie the provider's answer leaves), and the pages that show the sign-in
providers once one is set up."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

import pytest

from hedgerow.accounts import tokens
from hedgerow.accounts.oauth import ProviderProfile
from hedgerow.accounts.oauth_routes import PENDING_COOKIE, _signer
from hedgerow.models import TokenPurpose
from tests.i18n.pseudo import untranslated_text
from tests.i18n.test_pseudo_locale import World
from tests.i18n.test_pseudo_locale import pseudo_locale as pseudo_locale
from tests.i18n.test_pseudo_locale import source_messages as source_messages
from tests.i18n.test_pseudo_locale import world as world
from tests.oidc_provider import LoopbackProvider
from tests.oidc_provider import oidc as oidc
from tests.oidc_provider import oidc_provider_server as oidc_provider_server
from tests.page_helpers import log_in_as


def _assert_only_catalog(world: World, url: str) -> None:
    response = world.client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    assert not untranslated_text(response.text), untranslated_text(response.text)


@pytest.mark.parametrize("signed_in", [False, True])
def test_the_email_confirmation_speaks_only_from_the_catalog(
    world: World, pseudo_locale: None, signed_in: bool
) -> None:
    user = world.users["volunteer"]
    user.email = "maple@example.org"
    token = tokens.issue_token(
        world.db, user, TokenPurpose.verify_email, email=user.email, lifetime=timedelta(hours=1)
    )
    if signed_in:
        log_in_as(world.client, world.db, user)
    _assert_only_catalog(world, f"/verify-email?token={token}")


def test_the_first_provider_sign_in_form_speaks_only_from_the_catalog(
    world: World, pseudo_locale: None, oidc: LoopbackProvider
) -> None:
    profile = ProviderProfile(
        provider="oidc",
        subject="subject-1",
        email="robin@provider.example",
        email_verified=True,
        username_hint="robin",
        display="Robin Hood",
    )
    pending = _signer("pending").dumps({**asdict(profile), "next": "/"})
    world.client.cookies.set(PENDING_COOKIE, pending)
    _assert_only_catalog(world, "/auth/complete")


@pytest.mark.parametrize("url", ["/login", "/signup", "/settings"])
def test_pages_with_provider_buttons_speak_only_from_the_catalog(
    world: World, pseudo_locale: None, oidc: LoopbackProvider, url: str
) -> None:
    if url == "/settings":
        log_in_as(world.client, world.db, world.users["volunteer"])
    _assert_only_catalog(world, url)
