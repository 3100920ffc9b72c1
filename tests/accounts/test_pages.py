"""The account pages in a browser's shoes: sign up, the Terms gate, log in and out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.accounts.security import SESSION_COOKIE, ContributorUser, sha256_hex
from hedgerow.config import get_settings
from hedgerow.i18n.translation import translations
from hedgerow.models import User, UserSession
from tests.accounts.helpers import counts, log_in, post_form
from tests.factories import make_user

CONTRIBUTE_PROBE = "/_test/contribute"


@pytest.fixture
def probe_app(app: FastAPI) -> FastAPI:
    """The app plus one route guarded by ContributorUser, standing in for any task route."""

    @app.get(CONTRIBUTE_PROBE)
    def contribute(user: ContributorUser) -> dict[str, str]:
        return {"contributor": user.username}

    @app.get("/api/v1" + CONTRIBUTE_PROBE)
    def contribute_api(user: ContributorUser) -> dict[str, str]:
        return {"contributor": user.username}

    return app


@pytest.fixture
def probe_client(probe_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(probe_app) as client:
        yield client


def test_landing_page_explains_the_project_and_offers_sign_up(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "CC BY 4.0" in page.text
    assert 'href="/signup"' in page.text and 'href="/login"' in page.text


def test_landing_page_sends_logged_in_users_onward(client: TestClient, db: Session) -> None:
    make_user(db, username="returning")
    log_in(client, "returning")
    page = client.get("/")
    assert 'href="/dashboard"' in page.text
    assert "Sign up to contribute" not in page.text


def test_sign_up_logs_in_and_the_terms_gate_blocks_until_accepted(
    probe_client: TestClient, db: Session
) -> None:
    client = probe_client
    signup = post_form(
        client,
        "/signup",
        {"username": "NewPerson", "password": "a good long password", "language": "de"},
    )
    assert signup.status_code == 303
    assert signup.headers["location"] == "/tos?next=%2F"
    user = db.scalars(select(User).where(User.username == "NewPerson")).one()
    assert user.language == "de" and user.role == "volunteer"
    assert client.get("/api/v1/me").json()["can_contribute"] is False

    blocked_api = client.get("/api/v1" + CONTRIBUTE_PROBE)
    assert blocked_api.status_code == 403
    assert blocked_api.json()["error"]["code"] == "tos_required"
    blocked_page = client.get(CONTRIBUTE_PROBE, follow_redirects=False)
    assert blocked_page.status_code == 303
    assert blocked_page.headers["location"] == "/tos?next=%2F_test%2Fcontribute"
    blocked_htmx = client.get(CONTRIBUTE_PROBE, headers={"HX-Request": "true"})
    assert blocked_htmx.headers["HX-Redirect"].startswith("/tos?next=")

    terms = client.get("/tos?next=/_test/contribute")
    # In German: the interface follows the contribution language she chose.
    assert translations("de").gettext("I accept the Terms of Service") in terms.text
    accepted = post_form(client, "/tos", {"next": CONTRIBUTE_PROBE})
    assert accepted.status_code == 303
    assert accepted.headers["location"] == CONTRIBUTE_PROBE
    assert client.get(CONTRIBUTE_PROBE).json() == {"contributor": "NewPerson"}
    db.refresh(user)
    assert user.tos_accepted_at is not None


def test_accepting_the_terms_keeps_next_on_this_site(client: TestClient, db: Session) -> None:
    make_user(db, username="offsite", tos=False)
    log_in(client, "offsite")
    for evil in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = post_form(client, "/tos", {"next": evil})
        assert response.headers["location"] == "/"


def test_pages_for_members_send_anonymous_visitors_to_log_in(client: TestClient) -> None:
    response = client.get("/settings?tab=keys", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fsettings%3Ftab%3Dkeys"
    htmx = client.get(
        "/settings", headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/settings"}
    )
    assert htmx.headers["HX-Redirect"] == "/login?next=%2Fsettings"
    api = client.get("/api/v1/me")
    assert api.status_code == 401
    assert api.json()["error"]["code"] == "not_authenticated"


def test_login_goes_to_next_and_a_logged_in_visit_to_login_moves_on(
    client: TestClient, db: Session
) -> None:
    make_user(db, username="Walker")
    form = client.get("/login?next=/settings")
    assert 'name="next" value="/settings"' in form.text
    response = post_form(
        client,
        "/login",
        {"username": "walker", "password": "correct horse battery staple", "next": "/settings"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/settings"
    assert client.get("/settings").status_code == 200
    again = client.get("/login?next=/settings", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/settings"


def test_log_out_deletes_the_session_row_and_the_cookie_stops_working(
    client: TestClient, db: Session
) -> None:
    user = make_user(db, username="leaver")
    log_in(client, "leaver")
    token = client.cookies[SESSION_COOKIE]
    assert db.scalar(select(UserSession).where(UserSession.token_hash == sha256_hex(token)))
    assert client.get("/api/v1/me").json()["username"] == "leaver"

    response = post_form(client, "/logout", {})
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert SESSION_COOKIE in response.headers["set-cookie"]
    assert db.scalars(select(UserSession).where(UserSession.user_id == user.id)).all() == []

    # Even a client that kept the old cookie is no longer anyone.
    client.cookies.set(SESSION_COOKIE, token)
    assert client.get("/api/v1/me").status_code == 401


def test_an_expired_session_is_not_a_login(client: TestClient, db: Session) -> None:
    make_user(db, username="sleeper")
    log_in(client, "sleeper")
    row = db.scalars(select(UserSession)).one()
    row.expires_at = row.created_at
    db.flush()
    assert client.get("/api/v1/me").status_code == 401


def test_session_cookie_is_httponly_and_samesite_lax(client: TestClient, db: Session) -> None:
    make_user(db, username="cookies")
    response = log_in(client, "cookies")
    cookie = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith(SESSION_COOKIE + "=")
    )
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "secure" not in attributes
    assert f"max-age={get_settings().session_days * 86400}" in attributes


def test_session_cookie_is_secure_when_the_site_is_https(
    app: FastAPI, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "base_url", "https://hedgerow.example")
    make_user(db, username="secure")
    # Secure cookies only travel over https, so the client talks https too.
    with TestClient(app, base_url="https://testserver") as client:
        response = log_in(client, "secure")
    session_cookie = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith(SESSION_COOKIE + "=")
    )
    attributes = [part.strip().lower() for part in session_cookie.split(";")]
    assert "secure" in attributes and "httponly" in attributes
    assert "samesite=lax" in attributes


def test_settings_page_changes_display_name_and_language(client: TestClient, db: Session) -> None:
    user = make_user(db, username="settler")
    log_in(client, "settler")
    response = post_form(
        client, "/settings/profile", {"display_name": "Settler Sam", "language": "fr"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/settings?saved=profile"
    db.refresh(user)
    assert (user.display_name, user.language) == ("Settler Sam", "fr")
    page = client.get("/settings?saved=profile")
    assert translations("fr").gettext("Your profile was saved.") in page.text
    assert '<html lang="fr" dir="ltr"' in page.text  # the interface follows, unless set apart


def test_settings_profile_errors_keep_input_and_change_nothing(
    client: TestClient, db: Session
) -> None:
    user = make_user(db, username="keeper")
    log_in(client, "keeper")
    response = post_form(
        client,
        "/settings/profile",
        {"display_name": "New name", "language": "klingon"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    assert 'data-error-code="invalid_language"' in response.text
    assert 'value="New name"' in response.text
    # The htmx fragment only: the profile section, not the whole page.
    assert response.text.lstrip().startswith('<section id="profile"')
    db.refresh(user)
    assert (user.display_name, user.language) == ("Keeper", "en")


def test_api_key_is_shown_once_in_settings_listed_and_revocable(
    client: TestClient, db: Session
) -> None:
    make_user(db, username="scripter")
    log_in(client, "scripter")
    created = post_form(client, "/settings/api-keys", {"name": "exporter"})
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    raw_key = created.text.split('id="new-api-key" class="key">')[1].split("<")[0]
    assert raw_key.startswith("hr_")
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw_key}"}).status_code == 200
    )

    listing = client.get("/settings")
    assert "exporter" in listing.text
    assert raw_key not in listing.text
    prefix = raw_key.split("_")[1]
    assert f"hr_{prefix}_" in listing.text

    key_id = client.get("/api/v1/me/api-keys").json()[0]["id"]
    revoked = post_form(client, f"/settings/api-keys/{key_id}/revoke", {})
    assert revoked.status_code == 303
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw_key}"}).status_code == 401
    )
    assert "revoked" in client.get("/settings").text
    assert counts(db)["api_key"] == 1


def test_sign_up_is_rate_limited_per_client_address(
    app: FastAPI, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "signups_per_window", 2)

    def sign_up(client: TestClient, username: str):  # type: ignore[no-untyped-def]
        client.cookies.clear()  # each sign-up logs in; start every one logged out
        form = {"username": username, "password": "a good long password"}
        return post_form(client, "/signup", form)

    with TestClient(app, client=("198.51.100.7", 40000)) as farm:
        assert [sign_up(farm, name).status_code for name in ("sybil1", "sybil2")] == [303, 303]
        refused = sign_up(farm, "sybil3")
        assert refused.status_code == 429
        assert 'data-code="signup_rate_limited"' in refused.text
        assert 0 < int(refused.headers["retry-after"]) <= get_settings().signup_window_seconds
        assert 'value="sybil3"' in refused.text  # what they typed stays in the form
    assert db.scalars(select(User).where(User.username == "sybil3")).first() is None
    # Failed attempts do not use up the allowance, and other addresses are not affected.
    with TestClient(app, client=("203.0.113.20", 40000)) as neighbour:
        assert post_form(neighbour, "/signup", {"username": "x"}).status_code == 422
        assert sign_up(neighbour, "honest1").status_code == 303
        assert sign_up(neighbour, "honest2").status_code == 303
