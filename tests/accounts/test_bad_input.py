"""Bad input on the account pages: a clear 4xx with a machine code, and nothing changed."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.config import get_settings
from hedgerow.models import ApiKey, User
from tests.accounts.helpers import counts, log_in, post_form
from tests.factories import DEFAULT_PASSWORD, make_api_key, make_user

# --- login: no account enumeration (the throttle: test_login_throttle.py) -------------


def _login_error(body: str) -> str:
    match = re.search(r'<div class="alert alert-error" role="alert"[^>]*>([^<]*)</div>', body)
    assert match, body
    return match.group(0)


def test_wrong_password_and_unknown_user_give_the_identical_error(
    client: TestClient, db: Session
) -> None:
    make_user(db, username="existing")
    before = counts(db)
    wrong_password = post_form(client, "/login", {"username": "existing", "password": "nope nope"})
    unknown_user = post_form(client, "/login", {"username": "nobodyhere", "password": "nope nope"})
    assert wrong_password.status_code == unknown_user.status_code == 400
    assert _login_error(wrong_password.text) == _login_error(unknown_user.text)
    assert 'data-code="invalid_credentials"' in wrong_password.text
    # The whole page is the same apart from the username the person typed.
    assert wrong_password.text.replace("existing", "X") == unknown_user.text.replace(
        "nobodyhere", "X"
    )
    assert "hedgerow_session" not in client.cookies
    assert counts(db) == before


# --- sign up validation ---------------------------------------------------------------


def test_duplicate_username_in_any_case_is_a_form_error_and_one_row(
    client: TestClient, db: Session
) -> None:
    make_user(db, username="Taken")
    before = counts(db)
    response = post_form(
        client,
        "/signup",
        {"username": "tAKEN", "password": "a good long password", "display_name": "Twin"},
    )
    assert response.status_code == 409
    assert 'data-error-code="username_taken"' in response.text
    # The message sits next to the username field, and what they typed is kept.
    assert 'id="f-username-error"' in response.text
    assert "That username is taken" in response.text
    assert 'value="tAKEN"' in response.text
    assert 'value="Twin"' in response.text
    assert counts(db) == before
    assert len(db.scalars(select(User).where(User.username.ilike("taken"))).all()) == 1


@pytest.mark.parametrize(
    ("username", "password", "code"),
    [
        ("x" * 33, "a good long password", "invalid_username"),
        ("x" * 5000, "a good long password", "invalid_username"),
        ("ab", "a good long password", "invalid_username"),
        ("bell\x07user", "a good long password", "invalid_username"),
        ("new\nline", "a good long password", "invalid_username"),
        ("tab\tuser", "a good long password", "invalid_username"),
        ("rtl\u202euser", "a good long password", "invalid_username"),
        ("<script>", "a good long password", "invalid_username"),
        ("fine_name", "short", "weak_password"),
        ("fine_name", "p" * 257, "weak_password"),
    ],
)
def test_bad_sign_ups_are_rejected_and_create_nothing(
    client: TestClient, db: Session, username: str, password: str, code: str
) -> None:
    before = counts(db)
    response = post_form(client, "/signup", {"username": username, "password": password})
    assert response.status_code == 422
    assert f'data-error-code="{code}"' in response.text
    assert "<script>" not in response.text.split("<main")[1]
    assert counts(db) == before
    assert "hedgerow_session" not in client.cookies


def test_sign_up_rejects_unknown_language_and_unprintable_display_name(
    client: TestClient, db: Session
) -> None:
    before = counts(db)
    bad_language = post_form(
        client, "/signup", {"username": "polyglot", "password": "a good password", "language": "xx"}
    )
    assert bad_language.status_code == 422
    assert 'data-error-code="invalid_language"' in bad_language.text
    bad_name = post_form(
        client,
        "/signup",
        {"username": "polyglot", "password": "a good password", "display_name": "a\x00b"},
    )
    assert bad_name.status_code == 422
    assert 'data-error-code="invalid_display_name"' in bad_name.text
    assert counts(db) == before


ALL_WRONG = {
    "username": "ab",
    "password": "short",
    "display_name": "a\x00b",
    "language": "xx",
}


def _field_error(body: str, field: str) -> str | None:
    match = re.search(rf'<p id="f-{field}-error" class="field-error">([^<]*)</p>', body)
    return match.group(1) if match else None


def test_sign_up_shows_every_problem_at_once_each_next_to_its_field(
    client: TestClient, db: Session
) -> None:
    before = counts(db)
    response = post_form(client, "/signup", ALL_WRONG)
    assert response.status_code == 422
    assert 'data-error-code="invalid_signup"' in response.text
    assert "4 problems" in response.text
    assert "3 to 32 characters long" in (_field_error(response.text, "username") or "")
    assert "8 to 256 characters long" in (_field_error(response.text, "password") or "")
    assert "printable characters" in (_field_error(response.text, "display_name") or "")
    assert "supported languages" in (_field_error(response.text, "language") or "")
    assert 'value="ab"' in response.text  # what they typed is kept
    assert counts(db) == before


def test_a_taken_username_and_a_weak_password_are_reported_together(
    client: TestClient, db: Session
) -> None:
    make_user(db, username="Taken")
    response = post_form(client, "/signup", {"username": "taken", "password": "short"})
    assert response.status_code == 422
    assert "username is taken" in (_field_error(response.text, "username") or "")
    assert "8 to 256" in (_field_error(response.text, "password") or "")


def test_a_json_client_gets_every_sign_up_problem_with_its_field(
    client: TestClient, db: Session
) -> None:
    before = counts(db)
    response = post_form(client, "/signup", ALL_WRONG, headers={"Accept": "application/json"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_signup"
    problems = {problem["field"]: problem for problem in error["details"]["problems"]}
    assert set(problems) == {"username", "password", "display_name", "language"}
    assert problems["password"]["code"] == "weak_password"
    assert "8 to 256" in problems["password"]["message"]
    assert counts(db) == before


def test_sign_up_is_refused_when_closed(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "signup_open", False)
    response = post_form(client, "/signup", {"username": "latecomer", "password": "a good pw!"})
    assert response.status_code == 403
    assert "signup_closed" in response.text
    assert counts(db)["user"] == 0


# --- CSRF on every form -----------------------------------------------------------------


def _every_form_post(db: Session) -> list[tuple[str, dict[str, str]]]:
    target = make_user(db, username="csrf.target")
    return [
        ("/signup", {"username": "csrfsignup", "password": "a good long password"}),
        ("/login", {"username": "csrf.admin", "password": DEFAULT_PASSWORD}),
        ("/logout", {}),
        ("/tos", {"next": "/"}),
        ("/settings/profile", {"display_name": "Changed", "language": "de"}),
        ("/settings/api-keys", {"name": "sneaky"}),
        ("/settings/api-keys/{key_id}/revoke", {}),
        (f"/admin/users/{target.id}/role", {"role": "admin"}),
    ]


@pytest.mark.parametrize("token", [None, "", "wrong-token", "forged.signature"])
def test_missing_or_wrong_csrf_token_on_every_form_is_refused_and_changes_nothing(
    client: TestClient, db: Session, token: str | None
) -> None:
    from hedgerow.models import Role

    admin = make_user(db, username="csrf.admin", role=Role.admin, tos=False)
    make_api_key(db, admin, name="keep me")
    key_id = db.scalars(select(ApiKey.id).where(ApiKey.user_id == admin.id)).one()
    log_in(client, "csrf.admin")
    forms = _every_form_post(db)
    before = counts(db)
    for url, data in forms:
        form = dict(data)
        if token is not None:
            form["csrf_token"] = token
        response = client.post(url.format(key_id=key_id), data=form, follow_redirects=False)
        assert response.status_code == 403, url
        assert 'data-code="csrf_failed"' in response.text, url
    # The same through htmx (header) and the JSON API with a session cookie.
    htmx = client.post(
        "/settings/profile",
        data={"display_name": "Changed", "language": "de"},
        headers={"HX-Request": "true", "X-CSRF-Token": token or ""},
    )
    assert htmx.status_code == 403 and htmx.headers["HX-Retarget"] == "#toasts"
    api = client.patch(
        "/api/v1/me", json={"display_name": "Changed"}, headers={"X-CSRF-Token": token or ""}
    )
    assert api.status_code == 403 and api.json()["error"]["code"] == "csrf_failed"

    assert counts(db) == before
    db.refresh(admin)
    assert (admin.display_name, admin.language, admin.tos_accepted_at) == ("Csrf.Admin", "en", None)
    assert db.get(ApiKey, key_id).revoked_at is None  # type: ignore[union-attr]
    target = db.scalars(select(User).where(User.username == "csrf.target")).one()
    assert target.role == "volunteer"
    assert client.get("/api/v1/me").status_code == 200  # still logged in


def test_a_csrf_token_from_another_browser_is_refused(client: TestClient, db: Session) -> None:
    make_user(db, username="victim2")
    log_in(client, "victim2")
    # An attacker's own valid, signed token does not match the victim's cookie.
    from hedgerow.accounts.security import new_csrf_token

    response = client.post(
        "/settings/profile",
        data={"display_name": "Pwned", "language": "en", "csrf_token": new_csrf_token()},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert client.get("/api/v1/me").json()["display_name"] == "Victim2"


# --- admin pages ----------------------------------------------------------------------


@pytest.mark.parametrize("role_name", ["volunteer", "moderator"])
def test_non_admins_get_403_on_admin_pages_and_api(
    client: TestClient, db: Session, role_name: str
) -> None:
    from hedgerow.models import Role

    make_user(db, username="notadmin", role=Role(role_name))
    target = make_user(db, username="bystander")
    log_in(client, "notadmin")
    before = counts(db)

    page = client.get("/admin/users")
    assert page.status_code == 403
    assert 'data-code="forbidden"' in page.text
    api = client.get("/api/v1/admin/users")
    assert api.status_code == 403 and api.json()["error"]["code"] == "forbidden"
    change = post_form(client, f"/admin/users/{target.id}/role", {"role": "admin"})
    assert change.status_code == 403
    change_api = client.post(
        f"/api/v1/admin/users/{target.id}/role",
        json={"role": "admin"},
        headers={"X-CSRF-Token": client.cookies["hedgerow_csrf"]},
    )
    assert change_api.status_code == 403
    assert counts(db) == before
    db.refresh(target)
    assert target.role == "volunteer"


def test_admin_role_change_with_a_bad_role_changes_nothing(client: TestClient, db: Session) -> None:
    from hedgerow.models import Role

    make_user(db, username="chief", role=Role.admin)
    target = make_user(db, username="subject")
    log_in(client, "chief")
    before = counts(db)
    response = post_form(client, f"/admin/users/{target.id}/role", {"role": "emperor"})
    assert response.status_code == 422
    assert 'data-code="invalid_role"' in response.text
    missing = post_form(client, "/admin/users/999999/role", {"role": "admin"})
    assert missing.status_code == 404
    assert counts(db) == before
    db.refresh(target)
    assert target.role == "volunteer"


# --- API keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Log in or send a valid API key."),
        ({"Authorization": "Bearer not-a-key"}, "The API key is malformed."),
        ({"Authorization": "Bearer hr_deadbeef_nosuchsecret"}, "The API key is not valid."),
        ({"X-API-Key": "hr_"}, "The API key is malformed."),
    ],
)
def test_missing_or_bad_api_keys_get_401_json(
    client: TestClient, headers: dict[str, str], message: str
) -> None:
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"error": {"code": "not_authenticated", "message": message}}


def test_a_right_prefix_with_a_wrong_secret_gets_401(client: TestClient, db: Session) -> None:
    raw = make_api_key(db, make_user(db))
    _, prefix, _ = raw.split("_", 2)
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer hr_{prefix}_guess"})
    assert response.status_code == 401


def test_a_revoked_api_key_gets_401_json(client: TestClient, db: Session) -> None:
    user = make_user(db)
    raw = make_api_key(db, user)
    headers = {"Authorization": f"Bearer {raw}"}
    key_id = client.get("/api/v1/me/api-keys", headers=headers).json()[0]["id"]
    assert client.delete(f"/api/v1/me/api-keys/{key_id}", headers=headers).status_code == 200
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "not_authenticated",
        "message": "The API key was revoked.",
    }
