"""The account rules the web pages, the API and the CLI share."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hedgerow.accounts import service
from hedgerow.errors import AppError, NotFound
from hedgerow.models import AuditEvent, Role, User
from tests.factories import make_user


def _user_count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(User)) or 0


def test_create_user_hashes_the_password_and_defaults_to_volunteer(db: Session) -> None:
    user = service.create_user(db, username="Alice.B-1", password="long enough pw")
    assert user.id is not None
    assert user.role == Role.volunteer.value
    assert user.display_name == "Alice.B-1"
    assert user.password_hash and user.password_hash.startswith("$argon2id$")
    assert "long enough pw" not in user.password_hash
    assert user.tos_accepted_at is None


def test_create_user_can_accept_the_terms_and_set_a_role(db: Session) -> None:
    user = service.create_user(
        db, username="boss", password="long enough pw", role=Role.admin, accept_tos=True
    )
    assert user.role == "admin"
    assert user.tos_accepted_at is not None


@pytest.mark.parametrize(
    ("username", "code"),
    [
        ("ab", "invalid_username"),
        ("a" * 33, "invalid_username"),
        ("bad\x00name", "invalid_username"),
        ("bad\nname", "invalid_username"),
        ("zero\u200bwidth", "invalid_username"),
        ("spaced name", "invalid_username"),
        ("émile", "invalid_username"),
    ],
)
def test_create_user_rejects_bad_usernames(db: Session, username: str, code: str) -> None:
    before = _user_count(db)
    with pytest.raises(AppError) as raised:
        service.create_user(db, username=username, password="long enough pw")
    assert raised.value.code == code
    assert raised.value.details["field"] == "username"
    assert _user_count(db) == before


@pytest.mark.parametrize("password", ["short", "x" * 257])
def test_create_user_rejects_weak_or_absurd_passwords(db: Session, password: str) -> None:
    with pytest.raises(AppError) as raised:
        service.create_user(db, username="someone", password=password)
    assert raised.value.code == "weak_password"
    assert _user_count(db) == 0


def test_create_user_rejects_a_username_taken_in_any_case(db: Session) -> None:
    make_user(db, username="Hazel")
    with pytest.raises(AppError) as raised:
        service.create_user(db, username="hAZEL", password="long enough pw")
    assert raised.value.code == "username_taken"
    assert raised.value.status == 409
    assert _user_count(db) == 1


def test_create_user_rejects_unknown_language_and_bad_display_name(db: Session) -> None:
    with pytest.raises(AppError) as raised:
        service.create_user(db, username="lang", password="long enough pw", language="xx")
    assert raised.value.code == "invalid_language"
    with pytest.raises(AppError) as raised:
        service.create_user(db, username="lang", password="long enough pw", display_name="a\tb")
    assert raised.value.code == "invalid_display_name"
    assert _user_count(db) == 0


def test_authenticate_is_case_insensitive_and_rejects_wrong_passwords(db: Session) -> None:
    user = make_user(db, username="Robin", password="the right one")
    assert service.authenticate(db, username="robin", password="the right one") == user
    assert service.authenticate(db, username="Robin", password="the wrong one") is None
    assert service.authenticate(db, username="nobody", password="the right one") is None
    assert service.authenticate(db, username="Robin", password="x" * 10_000) is None


def test_set_role_records_an_audit_event_with_before_and_after(db: Session) -> None:
    admin = make_user(db, role=Role.admin)
    target = make_user(db, username="promote.me")
    service.set_role(db, username="PROMOTE.ME", role=Role.moderator, actor=admin)
    assert target.role == "moderator"
    event = db.scalars(select(AuditEvent).where(AuditEvent.target_id == target.id)).one()
    assert (event.actor_id, event.action, event.target_type) == (admin.id, "user.set_role", "user")
    assert event.before == {"role": "volunteer"}
    assert event.after == {"role": "moderator"}


def test_set_role_from_the_command_line_has_no_actor(db: Session) -> None:
    target = make_user(db, username="cli.target")
    service.set_role(db, username="cli.target", role=Role.admin, actor=None)
    event = db.scalars(select(AuditEvent).where(AuditEvent.target_id == target.id)).one()
    assert event.actor_id is None
    assert target.role == "admin"


def test_set_role_on_an_unknown_user_is_not_found(db: Session) -> None:
    with pytest.raises(NotFound):
        service.set_role(db, username="ghost", role=Role.admin, actor=None)
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_racing_sign_ups_for_one_name_end_with_one_account_and_a_clear_error(
    committing_sessionmaker,
) -> None:
    """The check-then-insert race is settled by the unique index on lower(username)."""
    import threading
    import time

    from sqlalchemy import text

    first = committing_sessionmaker()
    service.create_user(first, username="Racer", password="long enough pw")  # not committed
    outcome: dict[str, object] = {}

    def second_sign_up() -> None:
        with committing_sessionmaker() as second:
            try:
                service.create_user(second, username="rACER", password="long enough pw")
                second.commit()
                outcome["result"] = "created"
            except AppError as error:
                outcome["result"] = error.code
                # The savepoint kept the transaction usable after the unique violation.
                outcome["still_usable"] = second.scalar(text("SELECT 1")) == 1

    racer = threading.Thread(target=second_sign_up)
    racer.start()
    # Wait (with a deadline) until the second insert is blocked on the first one's row.
    deadline = time.monotonic() + 10
    blocked = False
    with committing_sessionmaker() as observer:
        while time.monotonic() < deadline:
            waiting = observer.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            observer.rollback()
            if waiting:
                blocked = True
                break
    assert blocked, "the second sign-up never waited on the first one's row"
    first.commit()
    first.close()
    racer.join(timeout=30)
    assert outcome == {"result": "username_taken", "still_usable": True}
    with committing_sessionmaker() as check:
        assert _user_count(check) == 1
