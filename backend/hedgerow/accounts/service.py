"""The rules for a user's own account: who may sign up with what, logging in, profile, API
keys, and deleting the account. Two steps others call are here too, so that accounts needs
neither of them: changing a role (admin/ and the CLI) and the anonymisation that an admin's
deletion on request (moderation/users.py) shares with the user's own.

Services only ``flush()``; the request's session (or the CLI's ``Session.begin()``)
commits. Validation errors carry ``details={"field": ...}`` so forms can show them next
to the field that caused them.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hedgerow.accounts import queries
from hedgerow.accounts.passwords import hash_password, needs_rehash, verify_password
from hedgerow.accounts.security import new_api_key, utcnow
from hedgerow.audit import record_audit
from hedgerow.config import get_settings
from hedgerow.errors import AppError, NotFound
from hedgerow.growth import service as growth
from hedgerow.i18n import gettext as _
from hedgerow.i18n import ngettext
from hedgerow.i18n.service import validate_interface_language
from hedgerow.models import ApiKey, Role, User, UserSession
from hedgerow.models.user import USERNAME_MAX_LENGTH

USERNAME_MIN_LENGTH = 3
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")
PASSWORD_MIN_LENGTH = 8
# argon2 hashes any length, but a megabyte "password" is a cheap way to burn our CPU.
PASSWORD_MAX_LENGTH = 256
DISPLAY_NAME_MAX_LENGTH = 64
EMAIL_MAX_LENGTH = 254
API_KEY_NAME_MAX_LENGTH = 64
T = TypeVar("T")


def _field_error(code: str, message: str, field: str, status: int = 422) -> AppError:
    return AppError(code, message, status, details={"field": field})


# --- validation ---------------------------------------------------------------------


def _has_unprintable(value: str) -> bool:
    # Cc control, Cf format (zero-width joiners, bidi overrides), Cs/Co/Cn: nothing a
    # person means to type in a name, and the bidi ones can disguise what is shown.
    return any(unicodedata.category(char).startswith("C") for char in value)


def validate_username(username: str) -> str:
    if _has_unprintable(username):
        raise _field_error(
            "invalid_username", _("Usernames cannot contain control characters."), "username"
        )
    if not USERNAME_MIN_LENGTH <= len(username) <= USERNAME_MAX_LENGTH:
        raise _field_error(
            "invalid_username",
            _(
                "Usernames are %(min)s to %(max)s characters long.",
                min=USERNAME_MIN_LENGTH,
                max=USERNAME_MAX_LENGTH,
            ),
            "username",
        )
    if not USERNAME_PATTERN.fullmatch(username):
        raise _field_error(
            "invalid_username",
            _("Usernames may use letters A-Z, digits, dots, dashes and underscores."),
            "username",
        )
    return username


def validate_password(password: str) -> str:
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        raise _field_error(
            "weak_password",
            _(
                "Passwords are %(min)s to %(max)s characters long.",
                min=PASSWORD_MIN_LENGTH,
                max=PASSWORD_MAX_LENGTH,
            ),
            "password",
        )
    return password


def validate_display_name(display_name: str) -> str:
    display_name = display_name.strip()
    if (
        not 1 <= len(display_name) <= DISPLAY_NAME_MAX_LENGTH
        or _has_unprintable(display_name)
        or not display_name.isprintable()
    ):
        raise _field_error(
            "invalid_display_name",
            _(
                "Display names are 1 to %(max)s printable characters.",
                max=DISPLAY_NAME_MAX_LENGTH,
            ),
            "display_name",
        )
    return display_name


def validate_language(language: str) -> str:
    languages = get_settings().languages
    if language not in languages:
        raise _field_error(
            "invalid_language",
            _(
                "Choose one of the supported languages: %(languages)s.",
                languages=", ".join(languages),
            ),
            "language",
        )
    return language


def validate_email(email: str | None) -> str | None:
    if email is None or not email.strip():
        return None
    email = email.strip()
    local, at, domain = email.partition("@")
    if (
        not at
        or not local
        or "." not in domain
        or len(email) > EMAIL_MAX_LENGTH
        or _has_unprintable(email)
        or any(char.isspace() for char in email)
    ):
        raise _field_error("invalid_email", _("That does not look like an email address."), "email")
    return email


# --- users --------------------------------------------------------------------------


def create_user(
    db: Session,
    *,
    username: str,
    password: str | None,
    display_name: str | None = None,
    email: str | None = None,
    role: Role = Role.volunteer,
    language: str = "en",
    accept_tos: bool = False,
) -> User:
    """Validate and store a new account; raises ``username_taken`` for any-case duplicates.
    No password (None): an account that signs in through a provider or an emailed link.

    Every field is checked before anything is refused, so a person fixes all the problems
    in one go: one problem raises its own error, several raise ``invalid_signup``; either
    way ``details["problems"]`` lists each with its field."""
    problems: list[AppError] = []

    def checked(validate: Callable[[], T]) -> T | None:
        try:
            return validate()
        except AppError as problem:
            problems.append(problem)
            return None

    valid_username = checked(partial(validate_username, username))
    if password is not None:
        checked(partial(validate_password, password))
    if display_name is not None:
        display_name = checked(partial(validate_display_name, display_name))
    email = checked(partial(validate_email, email))
    checked(partial(validate_language, language))
    if valid_username is not None and queries.username_exists(db, valid_username):
        problems.append(_username_taken())
    if problems:
        raise _sign_up_problems(problems)
    user = User(
        username=username,
        display_name=display_name if display_name is not None else username,
        email=email,
        password_hash=hash_password(password) if password is not None else None,
        role=role.value,
        language=language,
        tos_accepted_at=utcnow() if accept_tos else None,
    )
    # Two sign-ups racing for one name both pass the check above; the unique index on
    # lower(username) decides, and the savepoint keeps the caller's transaction usable.
    try:
        with db.begin_nested():
            db.add(user)
            db.flush()
    except IntegrityError as exc:
        if "uq_user_username_lower" in str(exc.orig):
            raise _username_taken() from exc
        raise
    return user


def _sign_up_problems(problems: list[AppError]) -> AppError:
    listed = [
        {"field": problem.details.get("field"), "code": problem.code, "message": problem.message}
        for problem in problems
    ]
    if len(problems) == 1:
        problems[0].details["problems"] = listed
        return problems[0]
    return AppError(
        "invalid_signup",
        ngettext(
            "Please fix this problem: %(problems)s",
            "Please fix these %(num)d problems: %(problems)s",
            len(problems),
            problems=" ".join(problem.message for problem in problems),
        ),
        422,
        details={"problems": listed},
    )


def _username_taken() -> AppError:
    return _field_error(
        "username_taken", _("That username is taken; please choose another."), "username", 409
    )


def get_user_by_username(db: Session, username: str) -> User:
    user = queries.user_by_username(db, username)
    if user is None:
        raise NotFound(_("That user does not exist."))
    return user


def authenticate(db: Session, *, username: str, password: str) -> User | None:
    """The user when the password matches, otherwise None (unknown user or wrong password).

    An unknown username still runs one argon2 verification, so the response time does not
    tell which accounts exist.
    """
    user = queries.user_by_username(db, username) if len(username) <= 64 else None
    usable = user is not None and user.deleted_at is None
    if len(password) > PASSWORD_MAX_LENGTH:
        # Still spend the time, on a bounded input.
        verify_password(None, password[:PASSWORD_MAX_LENGTH])
        return None
    ok = verify_password(user.password_hash if user is not None and usable else None, password)
    if not ok or user is None or not usable:
        return None
    if user.password_hash and needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_seen_at = utcnow()
    db.flush()
    return user


def _audit(
    db: Session,
    *,
    actor: User | None,
    action: str,
    target: User,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    reason: str | None = None,
) -> None:
    record_audit(
        db,
        actor_id=actor.id if actor is not None else None,
        action=action,
        target_type="user",
        target_id=target.id,
        before=before,
        after=after,
        reason=reason,
    )


def set_role(db: Session, *, username: str, role: Role, actor: User | None) -> User:
    """Change a user's role and record who did it (actor None: the command line)."""
    user = get_user_by_username(db, username)
    return change_role(db, user=user, role=role, actor=actor)


def change_role(db: Session, *, user: User, role: Role, actor: User | None) -> User:
    previous = user.role
    if actor is not None and actor.id == user.id and role != Role.admin:
        # An admin demoting themselves from the web could leave nobody able to undo it.
        raise AppError(
            "cannot_demote_self",
            _("You cannot take away your own admin role; ask another admin."),
            409,
        )
    user.role = role.value
    _audit(
        db,
        actor=actor,
        action="user.set_role",
        target=user,
        before={"role": previous},
        after={"role": role.value},
    )
    db.flush()
    return user


def accept_tos(db: Session, user: User) -> User:
    if user.tos_accepted_at is None:
        user.tos_accepted_at = utcnow()
        db.flush()
    return user


def update_profile(
    db: Session,
    user: User,
    *,
    display_name: str | None = None,
    language: str | None = None,
    interface_language: str | None = None,
) -> User:
    """Change the given fields; validate everything before touching anything.

    `interface_language` "" means "the same as my contribution language" (stored as NULL);
    None leaves it as it is."""
    new_display_name = validate_display_name(display_name) if display_name is not None else None
    new_language = validate_language(language) if language is not None else None
    new_interface = validate_interface_language(interface_language) if interface_language else None
    if new_display_name is not None:
        user.display_name = new_display_name
    if new_language is not None:
        user.language = new_language
    if interface_language is not None:
        user.interface_language = new_interface
    db.flush()
    return user


# --- password and sessions ----------------------------------------------------------


def change_password(
    db: Session,
    user: User,
    *,
    current_password: str,
    new_password: str,
    new_password_again: str,
    keep_token_hash: str | None,
) -> int:
    """Set a new password after checking the current one, and log out every other session
    (whoever may have learnt the old password is logged out with it). Returns how many
    sessions ended. Nothing changes unless everything is right."""
    # An account made through a sign-in provider has no password yet: it sets a first one.
    if user.password_hash is not None and (
        len(current_password) > PASSWORD_MAX_LENGTH
        or not verify_password(user.password_hash, current_password)
    ):
        raise _field_error(
            "invalid_credentials",
            _("Your current password is not right; the password was not changed."),
            "current_password",
            400,
        )
    try:
        validate_password(new_password)
    except AppError as error:
        error.details["field"] = "new_password"
        raise
    if new_password != new_password_again:
        raise _field_error(
            "password_mismatch",
            _("The two new passwords differ; type it twice."),
            "new_password_again",
        )
    user.password_hash = hash_password(new_password)
    ended = queries.delete_other_sessions(db, user.id, keep_token_hash)
    _audit(
        db,
        actor=user,
        action="user.change_password",
        target=user,
        before=None,
        after={"other_sessions_ended": ended},
    )
    db.flush()
    return ended


def log_out_other_sessions(db: Session, user: User, *, keep_token_hash: str | None) -> int:
    """End every session of the user but this one; returns how many ended."""
    ended = queries.delete_other_sessions(db, user.id, keep_token_hash)
    db.flush()
    return ended


def live_sessions(db: Session, user: User) -> list[UserSession]:
    return queries.live_sessions_of(db, user.id, utcnow())


# --- API keys -----------------------------------------------------------------------


def create_api_key(db: Session, user: User, *, name: str) -> tuple[ApiKey, str]:
    """Store a new key and return it with the full key, which is never shown again."""
    name = name.strip()
    if not 1 <= len(name) <= API_KEY_NAME_MAX_LENGTH or _has_unprintable(name):
        raise _field_error(
            "invalid_key_name",
            _(
                "Name the key in 1 to %(max)s printable characters.",
                max=API_KEY_NAME_MAX_LENGTH,
            ),
            "name",
        )
    raw_key, prefix, secret_hash = new_api_key()
    key = ApiKey(user_id=user.id, name=name, prefix=prefix, secret_hash=secret_hash)
    db.add(key)
    db.flush()
    return key, raw_key


def list_api_keys(db: Session, user: User) -> list[ApiKey]:
    return queries.api_keys_of(db, user.id)


def revoke_api_key(db: Session, user: User, key_id: int) -> ApiKey:
    key = queries.api_key_of(db, user.id, key_id)
    if key is None:
        raise NotFound(_("That API key does not exist."))
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        db.flush()
    return key


# --- deleting an account ------------------------------------------------------------


def delete_own_account(db: Session, user: User, *, password: str) -> User:
    """A volunteer deletes their own account from the settings page, confirming with their
    password; the same anonymisation as an admin's."""
    # Without a password (a provider's account) the username typed again confirms.
    confirmed = (
        password == user.username
        if user.password_hash is None
        else verify_password(user.password_hash, password)
    )
    if not confirmed:
        raise AppError(
            "invalid_credentials", _("That password is not right; nothing was deleted."), 400
        )
    return anonymise_account(db, user, actor=user, action="user.delete_self", reason="own request")


def anonymise_account(
    db: Session, user: User, *, actor: User, action: str, reason: str | None
) -> User:
    """The name, e-mail, password, sessions and keys go; the contributions stay under a
    pseudonym (exports read the user row, so they carry the pseudonym too). The audit event
    keeps no trace of the old name."""
    if user.deleted_at is not None:
        raise AppError("already_deleted", _("This account is already deleted."), 409)
    now = utcnow()
    withdrawn = growth.withdraw_waiting_prompts(db, user.id, actor_id=actor.id)
    leases = growth.end_open_leases(db, user.id, now=now)
    pseudonym = f"anon-{secrets.token_hex(6)}"
    previous_role = user.role
    user.username = pseudonym
    user.display_name = pseudonym
    user.email = None
    user.password_hash = None
    user.enabled = False
    user.show_on_leaderboard = False
    user.role = Role.volunteer.value
    user.deleted_at = now
    user.email_verified_at = None
    queries.delete_sessions_of(db, user.id)
    queries.delete_api_keys_of(db, user.id)
    # Every other way in, and the log of mail sent to the old address.
    queries.delete_sign_in_rows_of(db, user.id)
    _audit(
        db,
        actor=actor,
        action=action,
        target=user,
        before={"role": previous_role},
        after={"pseudonym": pseudonym, "prompts_withdrawn": withdrawn, "leases_ended": leases},
        reason=reason,
    )
    db.flush()
    return user
