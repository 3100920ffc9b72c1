"""The audit log's one way in: every moderator, admin and engine action that changes what
volunteers see is recorded as an append-only AuditEvent in the transaction that makes it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hedgerow.models import AuditEvent


def record_audit(
    db: Session,
    *,
    actor_id: int | None,
    action: str,
    target_type: str,
    target_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=before,
        after=after,
        reason=reason,
    )
    db.add(event)
    return event
