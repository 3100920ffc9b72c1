"""The accounts and admin JSON API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from hedgerow.accounts.security import sha256_hex
from hedgerow.models import ApiKey, AuditEvent, Role, User
from tests.accounts.helpers import counts, error_code, log_in
from tests.factories import api_headers, csrf_token, make_api_key, make_user


def test_me_describes_the_caller(client: TestClient, db: Session) -> None:
    user = make_user(db, username="Curious", tos=False, language="ja")
    headers = api_headers(make_api_key(db, user))
    me = client.get("/api/v1/me", headers=headers).json()
    assert me["username"] == "Curious"
    assert me["language"] == "ja"
    assert me["role"] == "volunteer"
    assert me["can_contribute"] is False and me["tos_accepted_at"] is None
    assert "password_hash" not in me


def test_patch_me_updates_display_name_and_language(client: TestClient, db: Session) -> None:
    user = make_user(db)
    headers = api_headers(make_api_key(db, user))
    response = client.patch(
        "/api/v1/me", json={"display_name": "  Ada L.  ", "language": "es"}, headers=headers
    )
    assert response.status_code == 200
    assert response.json()["display_name"] == "Ada L."
    db.refresh(user)
    assert (user.display_name, user.language) == ("Ada L.", "es")


def test_patch_me_rejects_bad_values_and_changes_nothing(client: TestClient, db: Session) -> None:
    user = make_user(db, username="steady")
    headers = api_headers(make_api_key(db, user))
    cases = [
        ({"display_name": "fine", "language": "tlh"}, 422, "invalid_language"),
        ({"display_name": ""}, 422, "invalid_display_name"),
        ({"display_name": "x" * 65}, 422, "invalid_display_name"),
        ({"display_name": "bidi\u202e"}, 422, "invalid_display_name"),
        ({"display_name": 42}, 422, "invalid_request"),
        ({"role": "admin"}, 422, "invalid_request"),
    ]
    for body, status, code in cases:
        response = client.patch("/api/v1/me", json=body, headers=headers)
        assert (response.status_code, error_code(response)) == (status, code), body
    db.refresh(user)
    assert (user.display_name, user.language, user.role) == ("Steady", "en", "volunteer")


def test_accepting_the_terms_through_the_api(client: TestClient, db: Session) -> None:
    user = make_user(db, tos=False)
    headers = api_headers(make_api_key(db, user))
    response = client.post("/api/v1/me/tos", headers=headers)
    assert response.status_code == 200
    assert response.json()["can_contribute"] is True
    first_accepted = response.json()["tos_accepted_at"]
    # Accepting again keeps the original date.
    assert (
        client.post("/api/v1/me/tos", headers=headers).json()["tos_accepted_at"] == first_accepted
    )


def test_api_key_is_returned_once_and_stored_only_as_a_hash(
    client: TestClient, db: Session
) -> None:
    user = make_user(db)
    headers = api_headers(make_api_key(db, user, name="bootstrap"))
    # Keys are made from a browser session (an API key cannot make keys).
    log_in(client, user.username)
    created = client.post(
        "/api/v1/me/api-keys",
        json={"name": "pipeline"},
        headers={"X-CSRF-Token": csrf_token(client)},
    )
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    raw_key = body["key"]
    _, prefix, secret = raw_key.split("_", 2)
    assert body["prefix"] == prefix and body["name"] == "pipeline"

    listed = client.get("/api/v1/me/api-keys", headers=headers).json()
    assert {key["name"] for key in listed} == {"bootstrap", "pipeline"}
    assert all("key" not in key for key in listed)

    stored = db.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).one()
    assert stored.secret_hash == sha256_hex(secret)
    # Neither the key nor its secret appears in any column of any table.
    db.flush()
    tables = db.scalars(
        text(
            "SELECT quote_ident(table_name) FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
    ).all()
    for table in tables:
        hits = db.scalar(
            text(f"SELECT count(*) FROM {table} AS row WHERE row::text LIKE :needle"),  # noqa: S608
            {"needle": f"%{secret}%"},
        )
        assert hits == 0, table


def test_api_key_use_sets_last_used_at(client: TestClient, db: Session) -> None:
    user = make_user(db)
    raw = make_api_key(db, user)
    key = db.scalars(select(ApiKey).where(ApiKey.user_id == user.id)).one()
    assert key.last_used_at is None
    assert client.get("/api/v1/me", headers=api_headers(raw)).status_code == 200
    db.refresh(key)
    assert key.last_used_at is not None
    assert datetime.now(UTC) - key.last_used_at < timedelta(hours=1)
    listed = client.get("/api/v1/me/api-keys", headers=api_headers(raw)).json()
    assert listed[0]["last_used_at"] is not None


def test_an_api_key_cannot_make_api_keys(client: TestClient, db: Session) -> None:
    """A leaked key must not mint keys that would outlive its revocation."""
    user = make_user(db)
    headers = api_headers(make_api_key(db, user, name="leaked"))
    before = counts(db)
    response = client.post("/api/v1/me/api-keys", json={"name": "child"}, headers=headers)
    assert response.status_code == 403 and error_code(response) == "session_required"
    # Nor through the settings form, which the key can reach as well.
    form = client.post("/settings/api-keys", data={"name": "child"}, headers=headers)
    assert form.status_code == 403
    assert counts(db) == before
    # The key still does what keys are for.
    assert client.get("/api/v1/me/api-keys", headers=headers).status_code == 200


def test_api_key_names_are_validated(client: TestClient, db: Session) -> None:
    user = make_user(db)
    log_in(client, user.username)
    headers = {"X-CSRF-Token": csrf_token(client)}
    before = counts(db)
    for body in ({"name": ""}, {"name": "   "}, {"name": "x" * 65}):
        response = client.post("/api/v1/me/api-keys", json=body, headers=headers)
        assert response.status_code == 422
        assert error_code(response) == "invalid_key_name"
    # A name is Text: what no text may hold is refused as in every other text field.
    response = client.post("/api/v1/me/api-keys", json={"name": "a\x00b"}, headers=headers)
    assert (response.status_code, error_code(response)) == (422, "invalid_text")
    assert error_code(client.post("/api/v1/me/api-keys", json={}, headers=headers)) == (
        "invalid_request"
    )
    assert counts(db) == before


def test_nobody_can_revoke_someone_elses_key(client: TestClient, db: Session) -> None:
    owner = make_user(db)
    make_api_key(db, owner, name="owned")
    owned_id = db.scalars(select(ApiKey.id).where(ApiKey.user_id == owner.id)).one()
    stranger_headers = api_headers(make_api_key(db, make_user(db)))
    response = client.delete(f"/api/v1/me/api-keys/{owned_id}", headers=stranger_headers)
    assert response.status_code == 404 and error_code(response) == "not_found"
    assert db.get(ApiKey, owned_id).revoked_at is None  # type: ignore[union-attr]


def test_api_key_requests_need_no_csrf_token(client: TestClient, db: Session) -> None:
    user = make_user(db)
    raw = make_api_key(db, user)
    assert (
        client.patch("/api/v1/me", json={"language": "it"}, headers=api_headers(raw)).status_code
        == 200
    )


# --- admin ----------------------------------------------------------------------------


def test_admin_lists_and_searches_users(client: TestClient, db: Session) -> None:
    admin = make_user(db, username="root.admin", role=Role.admin)
    for name in ("garden_a", "garden_b", "meadow", "gardens"):
        make_user(db, username=name)
    headers = api_headers(make_api_key(db, admin))
    everyone = client.get("/api/v1/admin/users", headers=headers).json()
    assert len(everyone) == 5
    # "_" is a literal underscore in the search, not a LIKE wildcard.
    found = client.get("/api/v1/admin/users", params={"q": "GARDEN_"}, headers=headers).json()
    assert [user["username"] for user in found] == ["garden_a", "garden_b"]
    page = client.get(
        "/api/v1/admin/users", params={"limit": 2, "offset": 1}, headers=headers
    ).json()
    assert [user["username"] for user in page] == ["garden_b", "gardens"]
    bad = client.get("/api/v1/admin/users", params={"limit": 0}, headers=headers)
    assert bad.status_code == 422 and error_code(bad) == "invalid_page"


def test_admin_changes_a_role_with_an_audit_event(client: TestClient, db: Session) -> None:
    admin = make_user(db, username="the.admin", role=Role.admin)
    target = make_user(db, username="helper")
    headers = api_headers(make_api_key(db, admin))
    response = client.post(
        f"/api/v1/admin/users/{target.id}/role", json={"role": "moderator"}, headers=headers
    )
    assert response.status_code == 200 and response.json()["role"] == "moderator"
    db.refresh(target)
    assert target.role == "moderator"
    event = db.scalars(select(AuditEvent).where(AuditEvent.target_id == target.id)).one()
    assert (event.actor_id, event.action) == (admin.id, "user.set_role")
    assert (event.before, event.after) == ({"role": "volunteer"}, {"role": "moderator"})


def test_admin_role_change_rejects_bad_input_and_changes_nothing(
    client: TestClient, db: Session
) -> None:
    admin = make_user(db, username="careful.admin", role=Role.admin)
    target = make_user(db, username="unchanged")
    headers = api_headers(make_api_key(db, admin))
    before = counts(db)
    bad_role = client.post(
        f"/api/v1/admin/users/{target.id}/role", json={"role": "overlord"}, headers=headers
    )
    assert bad_role.status_code == 422 and error_code(bad_role) == "invalid_request"
    missing = client.post(
        "/api/v1/admin/users/987654/role", json={"role": "admin"}, headers=headers
    )
    assert missing.status_code == 404 and error_code(missing) == "not_found"
    self_demotion = client.post(
        f"/api/v1/admin/users/{admin.id}/role", json={"role": "volunteer"}, headers=headers
    )
    assert self_demotion.status_code == 409 and error_code(self_demotion) == "cannot_demote_self"
    assert counts(db) == before
    db.refresh(target)
    db.refresh(admin)
    assert (target.role, admin.role) == ("volunteer", "admin")


def test_admin_users_page_searches_and_changes_roles(client: TestClient, db: Session) -> None:
    from tests.accounts.helpers import log_in, post_form

    make_user(db, username="page.admin", role=Role.admin)
    target = make_user(db, username="promotee")
    make_user(db, username="other.person")
    log_in(client, "page.admin")
    page = client.get("/admin/users", params={"q": "promo"})
    assert page.status_code == 200
    assert "promotee" in page.text and "other.person" not in page.text
    fragment = client.get("/admin/users", params={"q": "other"}, headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<section id="results"')
    assert "other.person" in fragment.text

    changed = post_form(
        client, f"/admin/users/{target.id}/role", {"role": "moderator", "q": "promo"}
    )
    assert changed.status_code == 303
    assert changed.headers["location"].startswith("/admin/users?q=promo")
    assert "promotee is now moderator." in client.get(changed.headers["location"]).text
    spoofed = client.get("/admin/users", params={"changed": "not-a-number"})
    assert spoofed.status_code == 422
    db.refresh(target)
    assert target.role == "moderator"
    assert db.scalars(select(User).where(User.role == "moderator")).all() == [target]
    assert len(db.scalars(select(AuditEvent)).all()) == 1
