"""Settings: change the password, log out the other sessions. Plain HTML forms (CSRF
token in the form, 303 after the change), htmx fragments where htmx asks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.accounts.passwords import verify_password
from hedgerow.accounts.security import SESSION_COOKIE, sha256_hex
from hedgerow.models import AuditEvent, User, UserSession
from tests.accounts.helpers import log_in, post_form
from tests.factories import DEFAULT_PASSWORD, api_headers, make_api_key, make_user

NEW_PASSWORD = "a much longer and newer passphrase"


@pytest.fixture
def other_browser(app: FastAPI) -> Iterator[TestClient]:
    """A second browser of the same person (its own cookie jar)."""
    with TestClient(app) as client:
        yield client


def _sessions(db: Session, user: User) -> set[str]:
    db.expire_all()
    return set(db.scalars(select(UserSession.token_hash).where(UserSession.user_id == user.id)))


def _is_logged_in(client: TestClient) -> bool:
    return client.get("/api/v1/me").status_code == 200


def _change(client: TestClient, current: str, new: str, again: str | None = None, **kwargs):  # type: ignore[no-untyped-def]
    form = {
        "current_password": current,
        "new_password": new,
        "new_password_again": new if again is None else again,
    }
    return post_form(client, "/settings/password", form, **kwargs)


def test_changing_the_password_logs_out_every_other_session(
    client: TestClient, other_browser: TestClient, db: Session
) -> None:
    user = make_user(db, username="changer")
    log_in(client, "changer")
    log_in(other_browser, "changer")
    this_session = sha256_hex(client.cookies[SESSION_COOKIE])
    assert len(_sessions(db, user)) == 2

    response = _change(client, DEFAULT_PASSWORD, NEW_PASSWORD)

    assert response.status_code == 303
    assert response.headers["location"] == "/settings?saved=password#password"
    db.refresh(user)
    assert verify_password(user.password_hash, NEW_PASSWORD)
    assert not verify_password(user.password_hash, DEFAULT_PASSWORD)
    assert _sessions(db, user) == {this_session}
    assert _is_logged_in(client) and not _is_logged_in(other_browser)
    assert "Your password was changed." in client.get("/settings?saved=password").text
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "user.change_password")).one()
    assert event.target_id == user.id and event.after == {"other_sessions_ended": 1}
    # The new password logs in; the old one does not.
    log_in(other_browser, "changer", NEW_PASSWORD)
    refused = post_form(
        other_browser, "/login", {"username": "changer", "password": DEFAULT_PASSWORD}
    )
    assert refused.status_code == 400


@pytest.mark.parametrize(
    ("current", "new", "again", "code", "field"),
    [
        ("not my password", NEW_PASSWORD, NEW_PASSWORD, "invalid_credentials", "current_password"),
        (DEFAULT_PASSWORD, "short", "short", "weak_password", "new_password"),
        (
            DEFAULT_PASSWORD,
            NEW_PASSWORD,
            NEW_PASSWORD + "!",
            "password_mismatch",
            "new_password_again",
        ),
    ],
)
def test_a_refused_password_change_says_why_next_to_the_field_and_changes_nothing(
    client: TestClient,
    other_browser: TestClient,
    db: Session,
    current: str,
    new: str,
    again: str,
    code: str,
    field: str,
) -> None:
    user = make_user(db, username="careful")
    log_in(client, "careful")
    log_in(other_browser, "careful")
    password_hash = user.password_hash
    sessions = _sessions(db, user)

    response = _change(client, current, new, again)

    assert response.status_code in (400, 422)
    assert f'data-error-code="{code}"' in response.text
    assert f'id="f-{field}-error"' in response.text
    # Typed passwords are never echoed back into the page.
    assert current not in response.text and new not in response.text
    db.refresh(user)
    assert user.password_hash == password_hash
    assert _sessions(db, user) == sessions
    assert _is_logged_in(other_browser)


def test_the_password_form_answers_htmx_with_its_section(client: TestClient, db: Session) -> None:
    make_user(db, username="htmxer")
    log_in(client, "htmxer")
    response = _change(client, DEFAULT_PASSWORD, NEW_PASSWORD, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="password"')
    assert "Your password was changed." in response.text


def test_the_password_form_needs_its_csrf_token(client: TestClient, db: Session) -> None:
    user = make_user(db, username="forged")
    log_in(client, "forged")
    response = client.post(
        "/settings/password",
        data={
            "current_password": DEFAULT_PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
        },
        follow_redirects=False,
    )
    assert response.status_code == 403
    db.refresh(user)
    assert verify_password(user.password_hash, DEFAULT_PASSWORD)


def test_log_out_my_other_sessions_keeps_this_one(
    client: TestClient, other_browser: TestClient, db: Session
) -> None:
    user = make_user(db, username="roamer")
    log_in(client, "roamer")
    log_in(other_browser, "roamer")
    this_session = sha256_hex(client.cookies[SESSION_COOKIE])
    page = client.get("/settings")
    assert "Log out my other sessions" in page.text
    assert "this browser" in page.text
    assert "A login lasts 30 days" in page.text

    response = post_form(client, "/settings/sessions/log-out-others", {})

    assert response.status_code == 303
    assert response.headers["location"] == "/settings?saved=sessions#sessions"
    assert _sessions(db, user) == {this_session}
    assert _is_logged_in(client) and not _is_logged_in(other_browser)
    page = client.get("/settings?saved=sessions")
    assert "Every other browser where you were logged in has been logged out." in page.text
    assert "Log out my other sessions" not in page.text


def test_only_a_browser_session_changes_the_password_or_ends_sessions(
    client: TestClient, other_browser: TestClient, db: Session
) -> None:
    """An API key is for scripts: a leaked one must not lock its owner out."""
    user = make_user(db, username="scripted")
    log_in(other_browser, "scripted")
    headers = api_headers(make_api_key(db, user))
    form = {
        "current_password": DEFAULT_PASSWORD,
        "new_password": NEW_PASSWORD,
        "new_password_again": NEW_PASSWORD,
    }
    changed = client.post("/settings/password", data=form, headers=headers)
    ended = client.post("/settings/sessions/log-out-others", headers=headers)
    assert (changed.status_code, ended.status_code) == (403, 403)
    db.refresh(user)
    assert verify_password(user.password_hash, DEFAULT_PASSWORD)
    assert _is_logged_in(other_browser)
