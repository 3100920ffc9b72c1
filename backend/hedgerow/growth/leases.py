"""Leases: a handed-out task holds a slot on its target until submitted, skipped or expired."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from hedgerow.config import get_settings
from hedgerow.growth.flags import REPLY_ROLE_FOR_KIND, release_slot
from hedgerow.growth.queries import (
    lock_message,
    lock_overdue_tasks,
    lock_tree,
    tree_id_of_message,
    tree_ids_of_messages,
)
from hedgerow.growth.tree_state import maybe_start_ranking
from hedgerow.models import Task, TaskState

# Small enough that one batch holds its row locks only briefly, large enough that a burst
# of abandoned tasks is cleared within a few job runs.
EXPIRY_BATCH_SIZE = 200


def utcnow() -> datetime:
    return datetime.now(UTC)


def lease_deadline(now: datetime) -> datetime:
    return now + timedelta(minutes=get_settings().lease_minutes)


def release_task_slot(
    db: Session, task: Task, *, now: datetime, rng: random.Random | None = None
) -> None:
    """Give back the slot a (locked) task holds, locking its tree and target first."""
    if not task.holds_slot or task.target_message_id is None:
        task.holds_slot = False
        return
    tree_id = tree_id_of_message(db, task.target_message_id)
    if tree_id is None:
        task.holds_slot = False
        return
    tree = lock_tree(db, tree_id)
    target = lock_message(db, task.target_message_id)
    release_slot(task, target, tree, get_settings())
    if task.kind in REPLY_ROLE_FOR_KIND:
        # The last reply lease going away can be what lets the tree move on to ranking.
        maybe_start_ranking(db, tree, now=now, rng=rng)


def expire_task(
    db: Session, task: Task, *, now: datetime, rng: random.Random | None = None
) -> None:
    release_task_slot(db, task, now=now, rng=rng)
    task.state = TaskState.expired
    task.finished_at = now


def expire_leases(
    db: Session,
    now: datetime | None = None,
    *,
    batch_size: int = EXPIRY_BATCH_SIZE,
    rng: random.Random | None = None,
) -> int:
    """Expire one batch of overdue leases and free their slots; returns how many.

    Tasks another transaction holds (being submitted right now) are skipped, and trees are
    locked in id order so that two expiry runs never wait on each other in a cycle.
    """
    now = now or utcnow()
    overdue = lock_overdue_tasks(db, now, batch_size)
    if not overdue:
        return 0
    target_ids = [t.target_message_id for t in overdue if t.target_message_id is not None]
    tree_of = tree_ids_of_messages(db, target_ids)
    for task in sorted(overdue, key=lambda t: (tree_of.get(t.target_message_id or 0, 0), t.id)):
        expire_task(db, task, now=now, rng=rng)
    db.flush()
    return len(overdue)
