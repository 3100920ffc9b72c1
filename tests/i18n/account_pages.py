"""Builders of the accounts pages for the pseudo-locale check (tests/i18n/test_pseudo_locale.py):
the data each page shows, made with the services as the accounts tests do."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from hedgerow.accounts import service, tokens
from hedgerow.accounts.identities import link_identity
from hedgerow.accounts.oauth import ProviderProfile
from hedgerow.mail.service import queue_mail
from hedgerow.models import TokenPurpose, User

if TYPE_CHECKING:
    from tests.i18n.test_pseudo_locale import World


def _rich_settings(world: World, user: User) -> None:
    """A linked identity, a live and a revoked API key, an unverified address and mail in
    the log, so that every table and branch of the settings page renders."""
    link_identity(
        world.db,
        user,
        ProviderProfile(
            provider="oidc",
            subject=f"subject-{user.id}",
            email=f"{user.username}@provider.example",
            email_verified=True,
            username_hint=user.username,
            display=user.display_name,
        ),
    )
    service.create_api_key(world.db, user, name="export script")
    revoked, _raw = service.create_api_key(world.db, user, name="old script")
    service.revoke_api_key(world.db, user, revoked.id)
    user.email = f"{user.username}@example.org"
    queued = queue_mail(
        world.db,
        user,
        to=user.email,
        template="sign_in_link",
        context={"link": "https://hedgerow.example/sign-in?token=x", "minutes": 15},
    )
    queued.attempts = 2
    queue_mail(
        world.db,
        user,
        to=user.email,
        template="verify_email",
        context={
            "link": "https://hedgerow.example/verify-email?token=x",
            "address": user.email,
            "hours": 48,
        },
    ).status = "sent"
    world.db.flush()


def settings_page(world: World) -> str:
    for role in ("volunteer", "admin"):
        _rich_settings(world, world.users[role])
    return "/settings"


def _token_of(world: World, purpose: TokenPurpose) -> str:
    user = world.users["volunteer"]
    user.email = user.email or f"{user.username}@example.org"
    return tokens.issue_token(
        world.db, user, purpose, email=user.email, lifetime=timedelta(minutes=30)
    )


def reset_password_page(world: World) -> str:
    return "/reset-password?token=" + _token_of(world, TokenPurpose.reset_password)


def sign_in_link_page(world: World) -> str:
    return "/sign-in?token=" + _token_of(world, TokenPurpose.sign_in_link)
