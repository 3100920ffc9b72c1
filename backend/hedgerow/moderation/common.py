"""What every moderator and admin action shares: the audit record and the reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from hedgerow.audit import record_audit
from hedgerow.errors import AppError, NotFound
from hedgerow.i18n import gettext as _
from hedgerow.models import User

REASON_MAX_LENGTH = 500


def utcnow() -> datetime:
    return datetime.now(UTC)


def record_action(
    db: Session,
    actor: User | None,
    action: str,
    target_type: str,
    target_id: int | None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    record_audit(
        db,
        actor_id=actor.id if actor is not None else None,
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=before,
        after=after,
        reason=reason,
    )


def clean_reason(reason: str | None, *, required: bool = False) -> str | None:
    value = (reason or "").strip()
    if len(value) > REASON_MAX_LENGTH:
        raise AppError(
            "reason_too_long",
            _("Give the reason in at most %(limit)s characters.", limit=REASON_MAX_LENGTH),
            422,
        )
    if required and not value:
        raise AppError("reason_required", "Say why: the reason goes into the audit log.", 422)
    return value or None


def get_user(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound(_("That user does not exist."))
    return user
