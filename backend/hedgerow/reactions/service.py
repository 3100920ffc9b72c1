"""Reactions: the emojis volunteers put on a message (Open-Assistant's +1, -1 and a few
more), one per person, emoji and message, toggled.

Red flags are reactions too, but given only by reporting or flagging a message (growth's
record_red_flag counts them and may delete the message); the bar neither shows nor
toggles them, so nothing counts twice. A thumbs up replaces the same person's thumbs down
and the other way round, as in Open-Assistant. Nobody reacts to their own message, nor to a
deleted one or one in a halted tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from babel.support import LazyProxy
from sqlalchemy.orm import Session

from hedgerow.errors import AppError, NotFound
from hedgerow.i18n import gettext as _
from hedgerow.i18n import lazy_gettext
from hedgerow.models import ReactionKind, TreeState, User
from hedgerow.reactions import queries


@dataclass(frozen=True)
class Emoji:
    kind: ReactionKind
    # Shown as text beside the emoji (Open-Assistant's name), so the bar reads "+1 3"
    # where no emoji font is installed.
    name: str
    character: str
    description: LazyProxy  # in the current request's language


# The bar, in order.
EMOJIS = (
    Emoji(ReactionKind.thumbs_up, "+1", "\N{THUMBS UP SIGN}", lazy_gettext("thumbs up")),
    Emoji(ReactionKind.thumbs_down, "-1", "\N{THUMBS DOWN SIGN}", lazy_gettext("thumbs down")),
    Emoji(
        ReactionKind.heart,
        "heart",
        "\N{HEAVY BLACK HEART}\N{VARIATION SELECTOR-16}",
        lazy_gettext("love it"),
    ),
    Emoji(
        ReactionKind.laugh,
        "laugh",
        "\N{SMILING FACE WITH OPEN MOUTH AND SMILING EYES}",
        lazy_gettext("funny"),
    ),
    Emoji(ReactionKind.confused, "confused", "\N{CONFUSED FACE}", lazy_gettext("confusing")),
)
BAR_KINDS = tuple(emoji.kind.value for emoji in EMOJIS)
# Giving one of these takes back the other.
OPPOSITES = {
    ReactionKind.thumbs_up: ReactionKind.thumbs_down,
    ReactionKind.thumbs_down: ReactionKind.thumbs_up,
}


@dataclass(frozen=True)
class BarItem:
    emoji: Emoji
    count: int
    mine: bool


@dataclass(frozen=True)
class ReactionBar:
    message_id: int
    items: list[BarItem]
    # False on the viewer's own messages and where nobody may react (counts only).
    can_react: bool


def parse_kind(value: str) -> ReactionKind:
    if value not in BAR_KINDS:
        raise AppError(
            "invalid_reaction", _("Choose a reaction: %(kinds)s.", kinds=", ".join(BAR_KINDS)), 422
        )
    return ReactionKind(value)


def _bar(
    message_id: int, counts: dict[str, int], mine: set[str], *, can_react: bool
) -> ReactionBar:
    items = [BarItem(emoji, counts.get(emoji.kind, 0), emoji.kind in mine) for emoji in EMOJIS]
    return ReactionBar(message_id, items, can_react)


def bars_for(
    db: Session, viewer: User, message_ids: Sequence[int], *, reactable: Sequence[int] = ()
) -> dict[int, ReactionBar]:
    """The bars of a page's messages in two queries; `reactable` are those the viewer may
    react to (the caller knows which messages are theirs, deleted or in a halted tree)."""
    if not message_ids:
        return {}
    counts = queries.counts(db, message_ids, BAR_KINDS)
    mine = queries.kinds_of_user(db, viewer.id, message_ids)
    allowed = set(reactable)
    return {
        message_id: _bar(
            message_id,
            counts.get(message_id, {}),
            mine.get(message_id, set()),
            can_react=message_id in allowed,
        )
        for message_id in message_ids
    }


def _check_reactable(db: Session, user: User, message_id: int) -> None:
    row = queries.message_for_reaction(db, message_id)
    # A halted tree is hidden from volunteers (the tree viewer's rule): the same answer
    # as a missing message.
    if row is None or row.deleted or row.tree_state == TreeState.halted:
        raise NotFound(_("That message does not exist."))
    if row.author_id == user.id:
        raise AppError("own_message", _("You cannot react to your own message."), 409)


def toggle_reaction(db: Session, user: User, message_id: int, kind: ReactionKind) -> bool:
    """Give `kind` to the message, or take it back if given; returns whether it is given
    now. The caller is a contributor (logged in, enabled, Terms accepted)."""
    _check_reactable(db, user, message_id)
    if queries.remove(db, message_id, user.id, [kind]):
        return False
    opposite = OPPOSITES.get(kind)
    if opposite is not None:
        queries.remove(db, message_id, user.id, [opposite])
    queries.add(db, message_id, user.id, kind)
    db.flush()
    return True


def bar_of(db: Session, viewer: User, message_id: int) -> ReactionBar:
    """One message's bar (after a toggle, or for the API)."""
    row = queries.message_for_reaction(db, message_id)
    if row is None or row.deleted or row.tree_state == TreeState.halted:
        raise NotFound(_("That message does not exist."))
    reactable = [message_id] if row.author_id != viewer.id else []
    return bars_for(db, viewer, [message_id], reactable=reactable)[message_id]
