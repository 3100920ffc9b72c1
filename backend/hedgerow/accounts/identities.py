"""The rules for accounts at sign-in providers: signing in with one, creating an account
from one, linking and unlinking.

An address that belongs to an existing account never links a provider to it on its own:
whoever controls the provider account might not be that account's owner (an address can
change hands, a provider may not have checked it). The owner signs in first and links
from the settings page.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hedgerow.accounts.oauth import ProviderProfile, get_provider
from hedgerow.accounts.security import utcnow
from hedgerow.accounts.service import _audit, create_user
from hedgerow.errors import AppError, NotFound
from hedgerow.i18n import gettext as _
from hedgerow.models import User, UserIdentity


def identity_of(db: Session, provider: str, subject: str) -> UserIdentity | None:
    # uq_user_identity_provider_subject
    return db.scalar(
        select(UserIdentity).where(
            UserIdentity.provider == provider, UserIdentity.subject == subject
        )
    )


def identities_of(db: Session, user_id: int) -> list[UserIdentity]:
    return list(
        db.scalars(
            select(UserIdentity).where(UserIdentity.user_id == user_id).order_by(UserIdentity.id)
        )
    )


def _email_taken(db: Session, email: str) -> bool:
    return (
        db.scalar(
            select(User.id)
            .where(func.lower(User.email) == email.lower(), User.deleted_at.is_(None))
            .limit(1)
        )
        is not None
    )


def _usable(user: User) -> User:
    if user.deleted_at is not None:
        raise AppError("account_deleted", _("The account linked to this sign-in was deleted."), 403)
    if not user.enabled:
        raise AppError("account_disabled", _("This account has been disabled by a moderator."), 403)
    return user


def existing_account(db: Session, profile: ProviderProfile) -> User | None:
    """The account this provider identity signs in to; None when it is new. A new one
    whose address belongs to an account is refused (see the module docstring)."""
    identity = identity_of(db, profile.provider, profile.subject)
    if identity is not None:
        identity.last_used_at = utcnow()
        user = db.get(User, identity.user_id)
        assert user is not None
        return _usable(user)
    if profile.email and _email_taken(db, profile.email):
        title = get_provider(profile.provider).title
        raise AppError(
            "email_belongs_to_account",
            _(
                "An account with the address %(address)s already exists. Log in to that "
                "account (with its password or an emailed link), then link %(provider)s from "
                "the settings page.",
                address=profile.email,
                provider=title,
            ),
            409,
        )
    return None


def create_account(
    db: Session, profile: ProviderProfile, *, username: str, accept_tos: bool, language: str
) -> User:
    """A new account for a first provider sign-in: the username chosen on the form, the
    Terms accepted there, no password; the address verified when the provider says so."""
    if not accept_tos:
        raise AppError(
            "tos_required",
            _("Please accept the Terms of Service to create your account."),
            422,
            details={"field": "accept_tos"},
        )
    existing_account(db, profile)  # the checks again: the form may have waited a while
    email = profile.email if profile.email and profile.email_verified else None
    user = create_user(
        db,
        username=username,
        password=None,
        display_name=(profile.display or username)[:64],
        email=email,
        language=language,
        accept_tos=True,
    )
    if email is not None:
        user.email_verified_at = utcnow()
    link_identity(db, user, profile)
    return user


def link_identity(db: Session, user: User, profile: ProviderProfile) -> UserIdentity:
    identity = identity_of(db, profile.provider, profile.subject)
    if identity is not None:
        if identity.user_id != user.id:
            raise _identity_taken(profile)
        return identity
    identity = UserIdentity(
        user_id=user.id,
        provider=profile.provider,
        subject=profile.subject,
        email=profile.email,
        display=profile.display or profile.username_hint,
        last_used_at=utcnow(),
    )
    # Two tabs finishing the same link race for the unique (provider, subject).
    try:
        with db.begin_nested():
            db.add(identity)
            db.flush()
    except IntegrityError as exc:
        raise _identity_taken(profile) from exc
    _audit(
        db,
        actor=user,
        action="user.link_identity",
        target=user,
        before=None,
        after={"provider": profile.provider},
    )
    return identity


def _identity_taken(profile: ProviderProfile) -> AppError:
    title = get_provider(profile.provider).title
    return AppError(
        "identity_taken",
        _(
            "That %(provider)s account is already linked to another Hedgerow account.",
            provider=title,
        ),
        409,
    )


def other_ways_in(db: Session, user: User, *, without: int) -> bool:
    """Whether the account can still be signed in to without identity `without`."""
    if user.password_hash or (user.email and user.email_verified_at):
        return True
    return any(identity.id != without for identity in identities_of(db, user.id))


def unlink_identity(db: Session, user: User, identity_id: int) -> None:
    identity = db.scalar(
        select(UserIdentity).where(UserIdentity.id == identity_id, UserIdentity.user_id == user.id)
    )
    if identity is None:
        raise NotFound(_("That linked sign-in does not exist."))
    if not other_ways_in(db, user, without=identity.id):
        raise AppError(
            "last_sign_in_method",
            _(
                "This is the only way into your account. Set a password or confirm an email "
                "address first, then unlink it."
            ),
            409,
        )
    db.delete(identity)
    _audit(
        db,
        actor=user,
        action="user.unlink_identity",
        target=user,
        before={"provider": identity.provider},
        after=None,
    )
    db.flush()
