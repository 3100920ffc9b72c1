"""A volunteer deletes their own account: anonymised, logged out, contributions kept."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hedgerow.models import ApiKey, AuditEvent, Message, User, UserSession
from tests.factories import DEFAULT_PASSWORD, csrf_token, make_api_key, make_user
from tests.growth.factories import make_tree
from tests.page_helpers import log_in_as


def _count(db: Session, model: type, user_id: int) -> int:
    column = model.user_id  # type: ignore[attr-defined]
    return db.scalar(select(func.count()).select_from(model).where(column == user_id)) or 0


def test_deleting_my_account_anonymises_me_and_keeps_my_contributions(
    client: TestClient, db: Session
) -> None:
    user = make_user(db, username="leaving_soon")
    make_api_key(db, user)
    _tree, root = make_tree(db, user)
    log_in_as(client, db, user)
    response = client.post(
        "/settings/delete-account",
        data={"password": DEFAULT_PASSWORD, "csrf_token": csrf_token(client)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/?account=deleted"
    db.expire_all()
    gone = db.get_one(User, user.id)
    assert gone.deleted_at is not None
    assert gone.username.startswith("anon-") and gone.email is None
    assert gone.password_hash is None and not gone.enabled
    assert _count(db, UserSession, user.id) == 0
    assert _count(db, ApiKey, user.id) == 0
    assert db.get_one(Message, root.id).author_id == user.id  # the contribution stays
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "user.delete_self"))
    assert event is not None and "leaving_soon" not in str(event.after)
    # The old session no longer works.
    assert client.get("/settings", follow_redirects=False).status_code == 303


def test_a_wrong_password_deletes_nothing(client: TestClient, db: Session) -> None:
    user = make_user(db)
    log_in_as(client, db, user)
    response = client.post(
        "/settings/delete-account",
        data={"password": "not my password", "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 400
    assert "nothing was deleted" in response.text
    db.expire_all()
    assert db.get_one(User, user.id).deleted_at is None
    assert _count(db, UserSession, user.id) == 1


def test_deleting_without_the_csrf_token_is_refused(client: TestClient, db: Session) -> None:
    user = make_user(db)
    log_in_as(client, db, user)
    response = client.post("/settings/delete-account", data={"password": DEFAULT_PASSWORD})
    assert response.status_code == 403
    db.expire_all()
    assert db.get_one(User, user.id).deleted_at is None


def test_deleting_needs_a_login(client: TestClient) -> None:
    response = client.post(
        "/settings/delete-account",
        data={"password": "x", "csrf_token": csrf_token(client)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
