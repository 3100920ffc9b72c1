"""Pages and API answers in the negotiated language; the switcher in every header."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from hedgerow.i18n.negotiation import LANGUAGE_COOKIE
from hedgerow.i18n.translation import translations
from tests.accounts.helpers import log_in, post_form
from tests.factories import make_user


def page_language(html: str) -> tuple[str, str]:
    match = re.search(r'<html lang="([^"]+)" dir="([^"]+)"', html)
    assert match, html[:300]
    return match[1], match[2]


def translated(language: str, english: str) -> str:
    text = translations(language).gettext(english)
    assert text != english, f"{english!r} has no {language} translation"
    return text


def test_the_browsers_language_is_used_for_a_visitor(client: TestClient) -> None:
    response = client.get("/", headers={"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"})
    assert response.status_code == 200
    assert page_language(response.text) == ("es", "ltr")
    assert response.headers["content-language"] == "es"
    assert "Accept-Language" in response.headers["vary"]
    assert translated("es", "Terms of Service") in response.text


def test_arabic_pages_run_right_to_left(client: TestClient) -> None:
    response = client.get("/", headers={"Accept-Language": "ar"})
    assert page_language(response.text) == ("ar", "rtl")


def test_an_unusable_accept_language_falls_back_without_an_error(client: TestClient) -> None:
    response = client.get("/", headers={"Accept-Language": "q=;;,*,xx-YY;q=oops"})
    assert response.status_code == 200
    assert page_language(response.text) == ("en", "ltr")


def test_the_switcher_sets_a_cookie_that_beats_the_browser(client: TestClient) -> None:
    response = post_form(client, "/language", {"lang": "fr", "next": "/tos"})
    assert response.status_code == 303
    assert response.headers["location"] == "/tos"
    assert client.cookies[LANGUAGE_COOKIE] == "fr"
    page = client.get("/tos", headers={"Accept-Language": "de"})
    assert page_language(page.text) == ("fr", "ltr")


def test_the_switcher_never_redirects_off_site(client: TestClient) -> None:
    response = post_form(client, "/language", {"lang": "de", "next": "//evil.example"})
    assert response.headers["location"] == "/"


def test_an_unknown_language_in_the_switcher_is_refused_and_changes_nothing(
    client: TestClient, db: Session
) -> None:
    user = make_user(db, language="de")
    log_in(client, user.username)
    response = client.post(
        "/language",
        data={"lang": "xx", "next": "/"},
        headers={"X-CSRF-Token": client.cookies["hedgerow_csrf"], "Accept": "application/json"},
        follow_redirects=False,
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_interface_language"
    assert LANGUAGE_COOKIE not in client.cookies
    db.refresh(user)
    assert user.interface_language is None


def test_a_signed_in_users_setting_beats_the_cookie(client: TestClient, db: Session) -> None:
    user = make_user(db, language="en")
    user.interface_language = "de"
    db.flush()
    log_in(client, user.username)
    client.cookies.set(LANGUAGE_COOKIE, "es")
    page = client.get("/tos", headers={"Accept-Language": "fr"})
    assert page_language(page.text) == ("de", "ltr")


def test_switching_while_signed_in_saves_the_setting(client: TestClient, db: Session) -> None:
    user = make_user(db, language="en")
    log_in(client, user.username)
    post_form(client, "/language", {"lang": "ar", "next": "/"})
    db.refresh(user)
    assert user.interface_language == "ar"
    client.cookies.delete(LANGUAGE_COOKIE)  # the setting alone decides now
    assert page_language(client.get("/tos").text) == ("ar", "rtl")


def test_an_api_error_message_follows_accept_language(client: TestClient) -> None:
    response = client.get("/api/v1/me", headers={"Accept-Language": "es"})
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "not_authenticated"  # machine codes never change
    assert error["message"] == translated("es", "Log in or send a valid API key.")
