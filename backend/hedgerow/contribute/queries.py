"""Read-only SQL for the volunteer pages (the rules and locking live in growth/)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.models import Task, TaskState


def current_task(db: Session, user_id: int, now: datetime) -> Task | None:
    """The task the user holds and may still work on (ix_task_user_id_leased)."""
    return db.scalar(
        select(Task)
        .where(
            Task.user_id == user_id,
            Task.state == TaskState.leased,
            Task.lease_expires_at > now,
        )
        .limit(1)
    )
