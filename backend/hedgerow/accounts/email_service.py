"""The rules for an account's email address and what it unlocks: verifying it, changing it,
resetting a forgotten password and signing in by an emailed link.

Asking for a reset or a link answers the same whether or not an account matches, so
nobody learns which names and addresses have accounts. Mail is queued in the caller's
transaction and sent after it commits (mail/service.py).
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hedgerow.accounts import queries, tokens
from hedgerow.accounts.passwords import hash_password
from hedgerow.accounts.security import utcnow
from hedgerow.accounts.service import (
    PASSWORD_MAX_LENGTH,
    _audit,
    _field_error,
    validate_email,
    validate_password,
)
from hedgerow.config import get_settings
from hedgerow.errors import AppError
from hedgerow.i18n import gettext as _
from hedgerow.mail.service import queue_mail
from hedgerow.models import TokenPurpose, User

LOGIN_MAX_LENGTH = 254


def link_to(path: str, token: str) -> str:
    return f"{get_settings().base_url.rstrip('/')}{path}?{urlencode({'token': token})}"


# --- the address --------------------------------------------------------------------


def send_verification(db: Session, user: User, address: str) -> None:
    hours = get_settings().email_verification_hours
    token = tokens.issue_token(
        db, user, TokenPurpose.verify_email, email=address, lifetime=timedelta(hours=hours)
    )
    queue_mail(
        db,
        user,
        to=address,
        template="verify_email",
        context={"link": link_to("/verify-email", token), "address": address, "hours": hours},
    )


def change_email(db: Session, user: User, new_address: str) -> None:
    """Send a verification to `new_address`; the account keeps its current address until
    the link is followed (a typo must not lock anyone out of password resets)."""
    address = validate_email(new_address)
    if address is None:
        raise _field_error("invalid_email", _("Type the new email address."), "email")
    if user.email and user.email.lower() == address.lower() and user.email_verified_at is not None:
        raise _field_error("email_unchanged", _("That is already your verified address."), "email")
    if user.email is None:
        user.email = address  # shown as "not verified yet" until the link is followed
    send_verification(db, user, address)
    db.flush()


def resend_verification(db: Session, user: User) -> None:
    if user.email is None or user.email_verified_at is not None:
        raise AppError("nothing_to_verify", _("There is no unverified address to confirm."), 409)
    send_verification(db, user, user.email)


def confirm_email(db: Session, raw_token: str) -> User:
    """Follow a verification link: the address it was sent to becomes the account's,
    verified; a different previous address is told of the change."""
    token, user = tokens.use_token(db, raw_token, TokenPurpose.verify_email)
    previous = user.email
    user.email = token.email
    user.email_verified_at = utcnow()
    if previous and previous.lower() != token.email.lower():
        queue_mail(
            db,
            user,
            to=previous,
            template="email_changed",
            context={"new_address": token.email},
        )
        _audit(db, actor=user, action="user.change_email", target=user, before=None, after=None)
    db.flush()
    return user


# --- who asked: by username or address ----------------------------------------------


def accounts_for_login(db: Session, login: str) -> list[User]:
    """The usable accounts a "forgot password" or "email me a link" request names: by
    username, or every account whose verified address it is."""
    login = login.strip()
    if not login or len(login) > LOGIN_MAX_LENGTH:
        return []
    if "@" in login:
        candidates = list(
            db.scalars(
                select(User).where(
                    func.lower(User.email) == login.lower(), User.email_verified_at.is_not(None)
                )
            )
        )
    else:
        user = queries.user_by_username(db, login)
        candidates = [user] if user is not None else []
    return [
        user
        for user in candidates
        if user.deleted_at is None
        and user.enabled
        and user.email
        and user.email_verified_at is not None
    ]


def request_password_reset(db: Session, login: str) -> None:
    minutes = get_settings().password_reset_minutes
    for user in accounts_for_login(db, login):
        assert user.email is not None
        token = tokens.issue_token(
            db,
            user,
            TokenPurpose.reset_password,
            email=user.email,
            lifetime=timedelta(minutes=minutes),
        )
        queue_mail(
            db,
            user,
            to=user.email,
            template="reset_password",
            context={"link": link_to("/reset-password", token), "minutes": minutes},
        )


def reset_password(
    db: Session, raw_token: str, *, new_password: str, new_password_again: str
) -> User:
    """Set a new password with a reset link; every session of the account ends (whoever
    knew the old password is out) and the account's other reset links stop working. A
    password that will not do leaves the link usable."""
    tokens.check_token(db, raw_token, TokenPurpose.reset_password)
    try:
        validate_password(new_password)
    except AppError as error:
        error.details["field"] = "new_password"
        raise
    if new_password != new_password_again or len(new_password_again) > PASSWORD_MAX_LENGTH:
        raise _field_error(
            "password_mismatch",
            _("The two passwords differ; type it twice."),
            "new_password_again",
        )
    _token, user = tokens.use_token(db, raw_token, TokenPurpose.reset_password)
    user.password_hash = hash_password(new_password)
    ended = queries.delete_other_sessions(db, user.id, None)
    tokens.delete_unused_tokens(db, user.id, TokenPurpose.reset_password)
    _audit(
        db,
        actor=user,
        action="user.reset_password",
        target=user,
        before=None,
        after={"sessions_ended": ended},
    )
    db.flush()
    return user


def request_sign_in_link(db: Session, login: str) -> None:
    minutes = get_settings().sign_in_link_minutes
    for user in accounts_for_login(db, login):
        assert user.email is not None
        token = tokens.issue_token(
            db,
            user,
            TokenPurpose.sign_in_link,
            email=user.email,
            lifetime=timedelta(minutes=minutes),
        )
        queue_mail(
            db,
            user,
            to=user.email,
            template="sign_in_link",
            context={"link": link_to("/sign-in", token), "minutes": minutes},
        )


def sign_in_with_link(db: Session, raw_token: str) -> User:
    _token, user = tokens.use_token(db, raw_token, TokenPurpose.sign_in_link)
    user.last_seen_at = utcnow()
    db.flush()
    return user
