"""User management by moderators and admins: disable and enable (ending their open work
through the growth engine), notes, the moderator's user page, and an admin's deletion or
anonymisation of an account on request. Every action is audited.

A user's own account (sign-up, settings, API keys) is accounts/; roles and the user list are
admin/."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from hedgerow.accounts.service import anonymise_account
from hedgerow.config import get_settings
from hedgerow.errors import AppError
from hedgerow.growth import service as growth
from hedgerow.growth.schemas import VolunteerRecord
from hedgerow.i18n import gettext as _
from hedgerow.models import (
    AuditEvent,
    Message,
    Report,
    Role,
    User,
    UserNote,
)
from hedgerow.moderation import queries
from hedgerow.moderation.common import clean_reason, get_user, record_action, utcnow
from hedgerow.text import normalize_text

NOTE_MAX_LENGTH = 4000
AUDIT_ROWS_SHOWN = 50


def _refuse_higher_role(actor: User, user: User) -> None:
    if actor.id == user.id:
        raise AppError("cannot_moderate_self", _("You cannot do this to your own account."), 409)
    if user.has_role(Role.moderator) and not actor.has_role(Role.admin):
        raise AppError(
            "forbidden", _("Only an admin can disable a moderator or another admin."), 403
        )


def disable_user(db: Session, actor: User, user_id: int, *, reason: str | None) -> User:
    """Disable the account: its waiting prompts leave the lottery and its leases end."""
    reason = clean_reason(reason, required=True)
    user = get_user(db, user_id)
    _refuse_higher_role(actor, user)
    if not user.enabled:
        raise AppError("already_disabled", _("This account is already disabled."), 409)
    now = utcnow()
    user.enabled = False
    withdrawn = growth.withdraw_waiting_prompts(db, user.id, actor_id=actor.id)
    leases = growth.end_open_leases(db, user.id, now=now)
    record_action(
        db,
        actor,
        "user.disable",
        "user",
        user.id,
        before={"enabled": True},
        after={"enabled": False, "prompts_withdrawn": withdrawn, "leases_ended": leases},
        reason=reason,
    )
    db.flush()
    return user


def enable_user(db: Session, actor: User, user_id: int, *, reason: str | None) -> User:
    reason = clean_reason(reason)
    user = get_user(db, user_id)
    _refuse_higher_role(actor, user)
    if user.enabled:
        raise AppError("already_enabled", _("This account is already enabled."), 409)
    if user.deleted_at is not None:
        raise AppError("user_deleted", _("This account was deleted and cannot come back."), 409)
    user.enabled = True
    record_action(
        db,
        actor,
        "user.enable",
        "user",
        user.id,
        before={"enabled": False},
        after={"enabled": True},
        reason=reason,
    )
    db.flush()
    return user


def add_note(db: Session, actor: User, user_id: int, *, text: str) -> UserNote:
    user = get_user(db, user_id)
    body = normalize_text(text, NOTE_MAX_LENGTH, field="note")
    note = UserNote(user_id=user.id, author_id=actor.id, text=body)
    db.add(note)
    db.flush()
    record_action(db, actor, "user.note", "user", user.id, after={"note_id": note.id})
    db.flush()
    return note


@dataclass(frozen=True)
class EstimatePriors:
    """Where the growth engine's estimates of a volunteer start before they have a record,
    and how many reviews (messages) of evidence that start is worth."""

    review_reliability: float
    review_weight: float
    author_acceptance: float
    author_weight: float


def estimate_priors() -> EstimatePriors:
    settings = get_settings()
    return EstimatePriors(
        review_reliability=settings.reviewer_prior_reliability,
        review_weight=settings.reviewer_prior_weight,
        author_acceptance=settings.author_prior_acceptance,
        author_weight=settings.author_prior_weight,
    )


@dataclass
class UserDetail:
    user: User
    history: queries.AuthorHistory
    stats: dict[str, int]
    # Their track record as the growth engine keeps it, and the estimates it weighs them by.
    record: VolunteerRecord
    priors: EstimatePriors
    messages: list[Message]
    reports_received: list[Report]
    notes: list[tuple[UserNote, str]]
    audit: list[tuple[AuditEvent, str | None]]


def user_detail(db: Session, user_id: int) -> UserDetail:
    user = get_user(db, user_id)
    return UserDetail(
        user=user,
        history=queries.author_history(db, user.id),
        stats=queries.contribution_stats(db, user.id),
        record=growth.volunteer_record(db, user.id),
        priors=estimate_priors(),
        messages=queries.recent_messages(db, user.id),
        reports_received=queries.reports_received(db, user.id),
        notes=queries.notes_on(db, user.id),
        audit=queries.audit_events(
            db,
            actor_id=None,
            action=None,
            target_type="user",
            target_id=user.id,
            limit=AUDIT_ROWS_SHOWN,
            offset=0,
        ),
    )


def anonymise_user(db: Session, actor: User, user_id: int, *, reason: str | None) -> User:
    """Delete an account on request (an admin acting for the person)."""
    reason = clean_reason(reason, required=True)
    user = get_user(db, user_id)
    if user.id == actor.id:
        raise AppError("cannot_moderate_self", _("You cannot delete your own account here."), 409)
    return anonymise_account(db, user, actor=actor, action="user.anonymise", reason=reason)
