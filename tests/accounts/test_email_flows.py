"""Email address, password reset and sign-in links, end to end through a real SMTP server:
each test sends the mail, reads it from the server and follows the link in its body."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hedgerow.accounts.passwords import verify_password
from hedgerow.mail.service import deliver_queued
from hedgerow.models import AccountToken, MailMessage, TokenPurpose, User, UserSession
from tests.accounts.helpers import log_in, post_form
from tests.factories import DEFAULT_PASSWORD, make_user
from tests.growth.factories import override_settings
from tests.mail_server import Inbox, path_of

NEW_PASSWORD = "a brand new passphrase"


def _verified_user(db: Session, username: str = "maple") -> User:
    user = make_user(db, username=username)
    user.email_verified_at = datetime.now(UTC)
    db.flush()
    return user


def _sessions(db: Session, user: User) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).where(UserSession.user_id == user.id)) or 0


def _code(response) -> str | None:  # type: ignore[no-untyped-def]
    text = response.text
    marker = 'data-code="'
    if marker not in text:
        return None
    return str(text.split(marker, 1)[1].split('"', 1)[0])


# --- verification -------------------------------------------------------------------


def test_sign_up_with_an_email_sends_a_link_that_verifies_it_once(
    client: TestClient, db: Session, inbox: Inbox
) -> None:
    signup = post_form(
        client,
        "/signup",
        {"username": "wren", "password": "a good long password", "email": "wren@example.org"},
    )
    assert signup.status_code == 303
    user = db.scalars(select(User).where(User.username == "wren")).one()
    assert user.email == "wren@example.org" and user.email_verified_at is None
    deliver_queued(db)
    link = inbox.link("wren@example.org", "/verify-email")
    page = client.get(path_of(link))
    assert page.status_code == 200 and "Email address confirmed" in page.text
    db.refresh(user)
    assert user.email_verified_at is not None
    again = client.get(path_of(link))
    assert again.status_code == 400 and _code(again) == "token_used"


def test_sign_up_without_an_email_sends_nothing(
    client: TestClient, db: Session, inbox: Inbox
) -> None:
    post_form(client, "/signup", {"username": "quiet", "password": "a good long password"})
    assert deliver_queued(db) == []
    assert inbox.messages() == []


def test_a_bad_email_at_sign_up_creates_nothing(client: TestClient, db: Session) -> None:
    response = post_form(
        client, "/signup", {"username": "oops", "password": "a good long password", "email": "no"}
    )
    assert response.status_code == 422 and "does not look like an email" in response.text
    assert db.scalar(select(User).where(User.username == "oops")) is None
    assert db.scalar(select(func.count()).select_from(MailMessage)) == 0


def test_changing_the_address_verifies_the_new_one_and_tells_the_old_one(
    client: TestClient, db: Session, inbox: Inbox
) -> None:
    user = _verified_user(db)
    log_in(client, "maple")
    response = post_form(client, "/settings/email", {"email": "maple@new.example"})
    assert response.status_code == 303
    db.refresh(user)
    # Nothing changes until the new address proves itself.
    assert user.email == "maple@example.org" and user.email_verified_at is not None
    deliver_queued(db)
    client.get(path_of(inbox.link("maple@new.example", "/verify-email")))
    db.refresh(user)
    assert user.email == "maple@new.example" and user.email_verified_at is not None
    deliver_queued(db)
    notice = inbox.last("maple@example.org")
    assert notice.subject == "Your Hedgerow email address was changed"
    assert "maple@new.example" in notice.body("plain")


def test_tampered_and_expired_verification_links_change_nothing(
    client: TestClient, db: Session, inbox: Inbox
) -> None:
    user = make_user(db, username="finch")
    log_in(client, "finch")
    post_form(client, "/settings/email", {"email": "finch@new.example"})
    deliver_queued(db)
    link = inbox.link("finch@new.example", "/verify-email")
    tampered = client.get(path_of(link)[:-3] + "xyz")
    assert tampered.status_code == 400 and _code(tampered) == "token_invalid"
    assert client.get("/verify-email").status_code == 400
    db.execute(
        AccountToken.__table__.update().values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    expired = client.get(path_of(link))
    assert expired.status_code == 400 and _code(expired) == "token_expired"
    db.refresh(user)
    assert user.email == "finch@example.org" and user.email_verified_at is None


# --- password reset -----------------------------------------------------------------


@pytest.mark.parametrize("login", ["maple", "MAPLE@example.org"])
def test_forgotten_password_reset_by_username_or_address_ends_every_session(
    client: TestClient, db: Session, inbox: Inbox, login: str
) -> None:
    user = _verified_user(db)
    other_browser = TestClient(client.app)
    log_in(other_browser, "maple")
    assert _sessions(db, user) == 1
    asked = post_form(client, "/forgot-password", {"login": login})
    assert asked.status_code == 200 and "Check your email" in asked.text
    deliver_queued(db)
    link = inbox.link("maple@example.org", "/reset-password")
    form = client.get(path_of(link))
    assert form.status_code == 200 and "maple" in form.text
    token = path_of(link).split("token=", 1)[1]
    # A password that will not do leaves the link usable.
    short = post_form(
        client,
        "/reset-password",
        {"token": token, "new_password": "short", "new_password_again": "short"},
    )
    assert short.status_code == 422 and "8 to 256" in short.text
    done = post_form(
        client,
        "/reset-password",
        {"token": token, "new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD},
    )
    assert done.status_code == 303 and done.headers["location"] == "/login?reset=done"
    db.refresh(user)
    assert verify_password(user.password_hash, NEW_PASSWORD)
    assert _sessions(db, user) == 0
    assert other_browser.get("/api/v1/me").status_code == 401
    log_in(client, "maple", NEW_PASSWORD)
    reused = post_form(
        client,
        "/reset-password",
        {
            "token": token,
            "new_password": "yet another one!",
            "new_password_again": "yet another one!",
        },
    )
    assert reused.status_code == 400 and _code(reused) == "token_used"
    db.refresh(user)
    assert verify_password(user.password_hash, NEW_PASSWORD)


def test_forgot_password_answers_the_same_whether_or_not_an_account_matches(
    client: TestClient, db: Session, inbox: Inbox
) -> None:
    _verified_user(db)
    make_user(db, username="unverified")  # an address never confirmed gets no reset
    pages = [
        post_form(client, "/forgot-password", {"login": login})
        for login in ("maple", "nobody-here", "ghost@example.org", "unverified")
    ]
    assert {page.status_code for page in pages} == {200}
    bodies = {
        page.text.replace(page.text.split('name="csrf-token" content="')[1][:80], "")
        for page in pages
    }
    assert len(bodies) == 1
    deliver_queued(db)
    assert [mail.to for mail in inbox.messages()] == ["maple@example.org"]


def test_an_expired_or_tampered_reset_link_is_refused(
    client: TestClient, db: Session, inbox: Inbox
) -> None:
    user = _verified_user(db)
    post_form(client, "/forgot-password", {"login": "maple"})
    deliver_queued(db)
    token = path_of(inbox.link(path="/reset-password")).split("token=", 1)[1]
    tampered = post_form(
        client,
        "/reset-password",
        {
            "token": token[:-1] + ("A" if token[-1] != "A" else "B"),
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
        },
    )
    assert tampered.status_code == 400 and _code(tampered) == "token_invalid"
    db.execute(
        AccountToken.__table__.update().values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    )
    expired = client.get(f"/reset-password?token={token}")
    assert expired.status_code == 400 and _code(expired) == "token_expired"
    db.refresh(user)
    assert not verify_password(user.password_hash, NEW_PASSWORD)


def test_reset_links_expire_after_thirty_minutes(db: Session, client: TestClient) -> None:
    user = _verified_user(db)
    post_form(client, "/forgot-password", {"login": "maple"})
    token = db.scalars(select(AccountToken).where(AccountToken.user_id == user.id)).one()
    assert token.purpose == TokenPurpose.reset_password
    lifetime = token.expires_at - token.created_at
    assert timedelta(minutes=29) < lifetime <= timedelta(minutes=30, seconds=5)


def test_mail_requests_are_limited_per_address_and_per_client(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, mail_requests_per_address=2, mail_requests_per_client=3)
    _verified_user(db)
    for _ in range(2):
        assert post_form(client, "/forgot-password", {"login": "maple"}).status_code == 200
    limited = post_form(client, "/forgot-password", {"login": "Maple"})
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    assert _code(limited) == "mail_rate_limited"
    assert post_form(client, "/sign-in-link", {"login": "someone-else"}).status_code == 200
    per_client = post_form(client, "/sign-in-link", {"login": "a-third-name"})
    assert per_client.status_code == 429
    assert db.scalar(select(func.count()).select_from(AccountToken)) == 2


# --- sign-in links ------------------------------------------------------------------


def test_an_emailed_link_signs_in_once_within_fifteen_minutes(
    client: TestClient, db: Session, inbox: Inbox
) -> None:
    _verified_user(db)
    post_form(client, "/sign-in-link", {"login": "maple@example.org"})
    deliver_queued(db)
    link = inbox.link("maple@example.org", "/sign-in")
    page = client.get(path_of(link))
    # Opening the link (as a mail scanner would) signs nobody in.
    assert page.status_code == 200 and client.get("/api/v1/me").status_code == 401
    token = path_of(link).split("token=", 1)[1]
    signed_in = post_form(client, "/sign-in", {"token": token})
    assert signed_in.status_code == 303
    assert client.get("/api/v1/me").json()["username"] == "maple"
    stranger = TestClient(client.app)
    reused = post_form(stranger, "/sign-in", {"token": token})
    assert reused.status_code == 400 and _code(reused) == "token_used"
    assert stranger.get("/api/v1/me").status_code == 401
    row = db.scalars(select(AccountToken)).one()
    assert row.expires_at - row.created_at <= timedelta(minutes=15, seconds=5)


# --- SMTP down ----------------------------------------------------------------------


def test_with_the_smtp_server_down_the_request_succeeds_and_says_mail_may_be_late(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    override_settings(monkeypatch, smtp_url=f"smtp://127.0.0.1:{closed}")
    user = _verified_user(db)
    first = post_form(client, "/forgot-password", {"login": "maple"})
    assert first.status_code == 200 and "mail_delayed" not in first.text
    deliver_queued(db)  # the job's first attempt fails and is to be retried
    message = db.scalars(select(MailMessage).where(MailMessage.user_id == user.id)).one()
    assert (message.status, message.attempts) == ("queued", 1)
    assert "ConnectionRefusedError" in (message.last_error or "")
    second = post_form(client, "/sign-in-link", {"login": "maple"})
    assert second.status_code == 200 and _code(second) == "mail_delayed"
    log_in(client, "maple")
    settings_page = client.get("/settings")
    assert "delayed, retrying (1 attempt)" in settings_page.text


def test_deleting_the_account_deletes_its_tokens_and_mail_log(
    client: TestClient, db: Session
) -> None:
    user = _verified_user(db)
    post_form(client, "/forgot-password", {"login": "maple"})
    log_in(client, "maple")
    deleted = post_form(client, "/settings/delete-account", {"password": DEFAULT_PASSWORD})
    assert deleted.status_code == 303, deleted.text
    for model in (AccountToken, MailMessage):
        assert db.scalar(select(func.count()).where(model.user_id == user.id)) == 0
    db.refresh(user)
    assert user.email is None and user.email_verified_at is None
