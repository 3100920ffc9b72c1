"""Other volunteers for the browser tests, driven through growth.service with real commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.accounts.security import create_user_session
from hedgerow.growth import service
from hedgerow.growth.schemas import Submission, SubmitOutcome
from hedgerow.models import Message, Tree, User
from tests.factories import make_user

# A quick-mode review that accepts the message.
ACCEPT = {"spam": 0.0, "lang_mismatch": 0.0, "quality": 0.75}


def volunteer(maker: sessionmaker[Session], username: str) -> tuple[int, str]:
    """A volunteer who accepted the Terms; returns the id and a session token for a browser."""
    with maker.begin() as db:
        user = make_user(db, username=username)
        return user.id, create_user_session(db, user, "playwright")


def do_task(
    maker: sessionmaker[Session], user_id: int, kind: str, submission: Submission
) -> SubmitOutcome:
    with maker.begin() as db:
        user = db.get(User, user_id)
        assert user is not None
        view = service.request_task(db, user, language="en", kind=kind, review_mode="quick")
        return service.submit_task(db, user, view.id, submission)


def review(maker: sessionmaker[Session], user_id: int, kind: str) -> dict[str, Any]:
    return do_task(maker, user_id, kind, Submission(labels=ACCEPT, mode="quick"))


def reply(maker: sessionmaker[Session], user_id: int, kind: str, text: str) -> int:
    return int(do_task(maker, user_id, kind, Submission(text=text)).message_id)


def tree_state(maker: sessionmaker[Session], tree_id: int) -> str:
    with maker() as db:
        state = db.scalar(select(Tree.state).where(Tree.id == tree_id))
        assert state is not None
        return state


def message(maker: sessionmaker[Session], message_id: int) -> Message:
    with maker() as db:
        found = db.get(Message, message_id)
        assert found is not None
        return found
