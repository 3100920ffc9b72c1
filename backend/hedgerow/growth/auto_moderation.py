"""Auto-moderation: red flags soft-delete a subtree; many skips halt a tree.

A red flag counts toward deletion only from someone the flag can be trusted from: a
volunteer who was shown the message (growth/shown.py) and has earned trust (accepted
contributions, reliability above one half), or a moderator. Anyone else's flag becomes a
report in the moderators' queue, so a handful of fresh sign-ups cannot hide what they
never saw.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from hedgerow.config import Settings, get_settings
from hedgerow.errors import AppError, NotFound
from hedgerow.growth.interventions import soft_delete_subtree
from hedgerow.growth.queries import (
    insert_flag_report,
    insert_red_flag,
    lock_message_in_tree,
    volunteer_record_row,
)
from hedgerow.growth.redundancy import RELIABILITY_FLOOR, reliability
from hedgerow.growth.shown import message_was_shown_to
from hedgerow.growth.tree_state import halt_tree
from hedgerow.i18n import gettext as _
from hedgerow.models import Message, Role, Tree, User


@dataclass(frozen=True)
class RedFlagOutcome:
    message_id: int
    red_flag_count: int
    newly_flagged: bool
    deleted: bool
    # False: the flag went to the moderators as a report and does not count toward deletion.
    counted: bool = True


def has_earned_flag_trust(db: Session, user: User, settings: Settings) -> bool:
    """Enough accepted contributions, and neither their reviews nor their messages going
    against the crowd more often than not."""
    if user.has_role(Role.moderator):
        return True
    settled, agreed, decided, accepted = volunteer_record_row(db, user.id)
    if agreed + accepted < settings.red_flag_trusted_contributions:
        return False
    review_reliability = reliability(
        settled, agreed, settings.reviewer_prior_reliability, settings.reviewer_prior_weight
    )
    author_acceptance = reliability(
        decided, accepted, settings.author_prior_acceptance, settings.author_prior_weight
    )
    return min(review_reliability, author_acceptance) > RELIABILITY_FLOOR


def flag_counts(db: Session, user: User, message: Message, settings: Settings) -> bool:
    if not has_earned_flag_trust(db, user, settings):
        return False
    # Moderators see any message in their queue and may delete it outright anyway.
    return user.has_role(Role.moderator) or message_was_shown_to(db, user.id, message)


def record_red_flag(
    db: Session,
    user: User,
    message_id: int,
    *,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> RedFlagOutcome:
    """One red flag per user and message; enough that count delete the message's subtree.
    A flag that does not count is filed as a report (once per user and message)."""
    now = now or datetime.now(UTC)
    settings = get_settings()
    tree, message, parent = lock_message_in_tree(db, message_id)
    if message.deleted:
        raise NotFound(_("That message does not exist."))
    if message.author_id == user.id:
        raise AppError("own_message", _("You cannot flag your own message."), 409)
    if not flag_counts(db, user, message, settings):
        reported = insert_flag_report(db, message_id, user.id)
        db.flush()
        return RedFlagOutcome(message_id, message.red_flag_count, reported, False, counted=False)
    inserted = insert_red_flag(db, message_id, user.id)
    if inserted:
        message.red_flag_count += 1
    deleted = False
    if message.red_flag_count >= settings.red_flags_to_delete:
        soft_delete_subtree(
            db,
            message,
            tree,
            parent=parent,
            now=now,
            reason=f"auto: {message.red_flag_count} red flags",
            rng=rng,
        )
        deleted = True
    db.flush()
    return RedFlagOutcome(message_id, message.red_flag_count, inserted, deleted)


def count_skip(
    db: Session,
    target: Message,
    tree: Tree,
    *,
    now: datetime,
    rng: random.Random | None = None,
) -> bool:
    """Count a skip of `target` (locked with its tree); returns True if it halted the tree.

    Something that volunteer after volunteer skips is usually broken or offensive: stop the
    tree and let a moderator look.
    """
    target.skip_count += 1
    threshold = get_settings().skips_to_halt
    if target.skip_count >= threshold:
        return halt_tree(
            db,
            tree,
            reason=f"auto: message {target.id} skipped {target.skip_count} times",
            now=now,
            rng=rng,
        )
    return False
