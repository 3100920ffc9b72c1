"""The interface-language setting: on the settings page and in the API, refused when the
interface does not ship the language; and the sign-up form's default contribution
language from the language the page speaks."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from hedgerow.i18n.negotiation import LANGUAGE_COOKIE
from tests.accounts.helpers import error_code, log_in, post_form
from tests.factories import api_headers, make_api_key, make_user
from tests.growth.factories import override_settings


def _selected(html: str, name: str) -> str:
    select = re.search(rf'<select[^>]*name="{name}".*?</select>', html, re.S)
    assert select, f"no select {name}"
    chosen = re.findall(r'<option value="([^"]*)"[^>]*\sselected', select[0])
    assert len(chosen) == 1, chosen
    return chosen[0]


def test_the_settings_form_sets_and_clears_the_interface_language(
    client: TestClient, db: Session
) -> None:
    user = make_user(db, username="polyglot", language="fr")
    log_in(client, "polyglot")
    page = client.get("/settings")
    # Every shipped language, named in its own language, and "same as contribution".
    assert _selected(page.text, "interface_language") == ""
    for name in ("English", "Deutsch", "Español", "Français", "简体中文", "العربية"):
        assert f">{name}</option>" in page.text
    response = post_form(
        client,
        "/settings/profile",
        {"display_name": "Polyglot", "language": "fr", "interface_language": "ar"},
    )
    assert response.status_code == 303
    db.refresh(user)
    assert (user.language, user.interface_language) == ("fr", "ar")
    page = client.get("/settings")
    assert '<html lang="ar" dir="rtl"' in page.text
    assert _selected(page.text, "interface_language") == "ar"
    # "Same as my contribution language": cleared, the interface follows French again.
    post_form(
        client,
        "/settings/profile",
        {"display_name": "Polyglot", "language": "fr", "interface_language": ""},
    )
    db.refresh(user)
    assert user.interface_language is None
    assert '<html lang="fr" dir="ltr"' in client.get("/settings").text


def test_the_htmx_answer_shows_the_new_choice(client: TestClient, db: Session) -> None:
    make_user(db, username="switcher")
    log_in(client, "switcher")
    response = post_form(
        client,
        "/settings/profile",
        {"display_name": "Switcher", "language": "en", "interface_language": "de"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert _selected(response.text, "interface_language") == "de"


def test_an_unknown_interface_language_on_the_form_changes_nothing(
    client: TestClient, db: Session
) -> None:
    user = make_user(db, username="careful")
    log_in(client, "careful")
    response = post_form(
        client,
        "/settings/profile",
        {"display_name": "Changed", "language": "de", "interface_language": "tlh"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    assert 'data-error-code="invalid_interface_language"' in response.text
    assert 'id="f-interface-language-error"' in response.text
    db.refresh(user)
    assert (user.display_name, user.language, user.interface_language) == ("Careful", "en", None)


def test_the_api_reads_sets_and_clears_the_interface_language(
    client: TestClient, db: Session
) -> None:
    user = make_user(db)
    headers = api_headers(make_api_key(db, user))
    assert client.get("/api/v1/me", headers=headers).json()["interface_language"] is None
    response = client.patch("/api/v1/me", json={"interface_language": "zh"}, headers=headers)
    assert response.status_code == 200 and response.json()["interface_language"] == "zh"
    db.refresh(user)
    assert user.interface_language == "zh"
    # Other fields leave it alone; null clears it.
    client.patch("/api/v1/me", json={"display_name": "Ada"}, headers=headers)
    db.refresh(user)
    assert user.interface_language == "zh"
    response = client.patch("/api/v1/me", json={"interface_language": None}, headers=headers)
    assert response.json()["interface_language"] is None
    db.refresh(user)
    assert user.interface_language is None


def test_the_api_refuses_an_unknown_interface_language_and_changes_nothing(
    client: TestClient, db: Session
) -> None:
    user = make_user(db, username="steadfast")
    user.interface_language = "de"
    db.flush()
    headers = api_headers(make_api_key(db, user))
    for value in ("tlh", "EN", "es-ES", "x" * 17):
        response = client.patch(
            "/api/v1/me",
            json={"display_name": "Changed", "language": "fr", "interface_language": value},
            headers=headers,
        )
        assert response.status_code == 422, value
        assert error_code(response) == "invalid_interface_language", value
    db.refresh(user)
    assert (user.display_name, user.language, user.interface_language) == ("Steadfast", "en", "de")


def test_sign_up_offers_the_pages_language_as_contribution_language(
    client: TestClient, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    spanish = client.get("/signup", headers={"Accept-Language": "es-MX,es;q=0.9"})
    assert _selected(spanish.text, "language") == "es"
    client.cookies.set(LANGUAGE_COOKIE, "de")
    assert _selected(client.get("/signup").text, "language") == "de"
    client.cookies.delete(LANGUAGE_COOKIE)
    # Arabic pages, but no Arabic contributions here: the server's default language.
    override_settings(monkeypatch, default_language="fr")
    arabic = client.get("/signup", headers={"Accept-Language": "ar"})
    assert _selected(arabic.text, "language") == "fr"
    # A server that does not take Spanish contributions does not preselect it.
    override_settings(monkeypatch, languages=["en", "fr"])
    assert (
        _selected(client.get("/signup", headers={"Accept-Language": "es"}).text, "language") == "fr"
    )
