"""Sign-in with a provider, against a real OpenID Connect provider on loopback
(tests/oidc_provider.py) reached through the generic provider setting: the code path of
Google, GitHub and Discord (authorization code, PKCE, state; nonce and a signed id_token
for OpenID Connect)."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hedgerow.models import User, UserIdentity, UserSession
from tests.accounts.helpers import log_in, post_form
from tests.factories import DEFAULT_PASSWORD, make_user
from tests.mail_server import path_of
from tests.oidc_provider import LoopbackProvider


def _through_provider(client: TestClient, start: Response, tamper_state: bool = False) -> Response:
    """Follow the app's redirect to the provider and the provider's back to the app."""
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    assert "code_challenge=" in authorize and "code_challenge_method=S256" in authorize
    assert "nonce=" in authorize and "state=" in authorize
    back = httpx.get(authorize, follow_redirects=False)
    assert back.status_code == 302, back.text
    path = path_of(back.headers["location"])
    if tamper_state:
        path = path.replace("state=", "state=x")
    return client.get(path, follow_redirects=False)


def _sign_in(client: TestClient, tamper_state: bool = False) -> Response:
    start = client.get("/auth/oidc/start?next=/settings", follow_redirects=False)
    return _through_provider(client, start, tamper_state)


def _code(response: Response) -> str:
    return response.text.split('data-code="', 1)[1].split('"', 1)[0]


def _counts(db: Session) -> tuple[int, int, int]:
    db.expire_all()
    return (
        db.scalar(select(func.count()).select_from(User)) or 0,
        db.scalar(select(func.count()).select_from(UserIdentity)) or 0,
        db.scalar(select(func.count()).select_from(UserSession)) or 0,
    )


def test_buttons_show_only_for_configured_providers(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "data-provider=" not in client.get("/login").text
    assert client.get("/auth/github/start").status_code == 404
    from tests.growth.factories import override_settings

    override_settings(
        monkeypatch, oauth_discord_client_id="id", oauth_discord_client_secret="secret"
    )
    page = client.get("/login").text
    assert 'data-provider="discord"' in page and 'data-provider="github"' not in page
    start = client.get("/auth/discord/start", follow_redirects=False)
    assert start.headers["location"].startswith("https://discord.com/oauth2/authorize?")


def test_a_first_sign_in_creates_an_account_on_a_short_form_then_signs_in_directly(
    client: TestClient, db: Session, oidc: LoopbackProvider
) -> None:
    assert 'data-provider="oidc"' in client.get("/login").text
    back = _sign_in(client)
    assert back.status_code == 303 and back.headers["location"] == "/auth/complete"
    assert _counts(db) == (0, 0, 0)
    form = client.get("/auth/complete")
    assert 'value="robin"' in form.text and "Test Provider" in form.text
    no_terms = post_form(client, "/auth/complete", {"username": "robin"})
    assert no_terms.status_code == 422 and "Terms of Service" in no_terms.text
    assert _counts(db)[0] == 0
    done = post_form(client, "/auth/complete", {"username": "robin", "accept_tos": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/settings"
    me = client.get("/api/v1/me").json()
    assert me["username"] == "robin"
    user = db.scalars(select(User).where(User.username == "robin")).one()
    assert user.password_hash is None and user.tos_accepted_at is not None
    assert user.email == "robin@idp.example" and user.email_verified_at is not None
    identity = db.scalars(select(UserIdentity)).one()
    assert (identity.provider, identity.subject, identity.user_id) == ("oidc", "subject-1", user.id)

    other_browser = TestClient(client.app)
    again = _sign_in(other_browser)
    assert again.status_code == 303 and again.headers["location"] == "/settings"
    assert other_browser.get("/api/v1/me").json()["username"] == "robin"
    assert _counts(db)[:2] == (1, 1)


def test_a_wrong_state_is_refused_and_nothing_is_created(
    client: TestClient, db: Session, oidc: LoopbackProvider
) -> None:
    refused = _sign_in(client, tamper_state=True)
    assert refused.status_code == 400 and _code(refused) == "oauth_state_mismatch"
    # A callback in a browser that never started a sign-in.
    stranger = TestClient(client.app)
    start = client.get("/auth/oidc/start", follow_redirects=False)
    back = httpx.get(start.headers["location"], follow_redirects=False)
    foreign = stranger.get(path_of(back.headers["location"]), follow_redirects=False)
    assert foreign.status_code == 400 and _code(foreign) == "oauth_state_mismatch"
    assert _counts(db) == (0, 0, 0)


@pytest.mark.parametrize(
    ("misbehave", "status", "code"),
    [
        ("wrong_nonce", 400, "oauth_nonce_mismatch"),
        ("bad_signature", 400, "oauth_id_token_invalid"),
        ("error", 400, "oauth_denied"),
        ("token_error", 502, "oauth_failed"),
    ],
)
def test_a_provider_that_misbehaves_signs_nobody_in(
    client: TestClient, db: Session, oidc: LoopbackProvider, misbehave: str, status: int, code: str
) -> None:
    make_user(db, username="bystander")
    oidc.misbehave = misbehave
    refused = _sign_in(client)
    assert refused.status_code == status, refused.text
    assert _code(refused) == code
    assert client.get("/api/v1/me").status_code == 401
    assert _counts(db) == (1, 0, 0)


def test_an_address_of_another_account_never_links_silently_but_can_be_linked_from_settings(
    client: TestClient, db: Session, oidc: LoopbackProvider
) -> None:
    owner = make_user(db, username="robin_owner")
    oidc.next_user["email"] = owner.email
    refused = _sign_in(client)
    assert refused.status_code == 409 and _code(refused) == "email_belongs_to_account"
    assert "link" in refused.text
    assert _counts(db) == (1, 0, 0)

    log_in(client, "robin_owner")
    settings_page = client.get("/settings").text
    assert 'data-link-provider="oidc"' in settings_page
    start = post_form(client, "/settings/identities/oidc/link", {})
    linked = _through_provider(client, start)
    assert linked.status_code == 303 and linked.headers["location"].startswith("/settings")
    identity = db.scalars(select(UserIdentity)).one()
    assert identity.user_id == owner.id
    assert 'data-identity="oidc"' in client.get("/settings").text

    fresh = TestClient(client.app)
    assert _sign_in(fresh).status_code == 303
    assert fresh.get("/api/v1/me").json()["username"] == "robin_owner"


def test_an_identity_linked_elsewhere_cannot_be_linked_again(
    client: TestClient, db: Session, oidc: LoopbackProvider
) -> None:
    first = TestClient(client.app)
    _sign_in(first)
    post_form(first, "/auth/complete", {"username": "robin", "accept_tos": "yes"})
    make_user(db, username="second")
    log_in(client, "second")
    taken = _through_provider(client, post_form(client, "/settings/identities/oidc/link", {}))
    assert taken.status_code == 409 and _code(taken) == "identity_taken"
    assert db.scalars(select(UserIdentity)).one().user_id != client.get("/api/v1/me").json()["id"]


def test_unlinking_is_refused_for_the_last_way_in(
    client: TestClient, db: Session, oidc: LoopbackProvider
) -> None:
    oidc.next_user["email_verified"] = False  # no verified address: no emailed link either
    _sign_in(client)
    post_form(client, "/auth/complete", {"username": "solo", "accept_tos": "yes"})
    identity = db.scalars(select(UserIdentity)).one()
    refused = post_form(client, f"/settings/identities/{identity.id}/unlink", {})
    assert refused.status_code == 409 and "only way into your account" in refused.text
    assert _counts(db)[1] == 1
    # A first password is another way in; then unlinking is fine.
    post_form(
        client,
        "/settings/password",
        {"new_password": DEFAULT_PASSWORD, "new_password_again": DEFAULT_PASSWORD},
    )
    unlinked = post_form(client, f"/settings/identities/{identity.id}/unlink", {})
    assert unlinked.status_code == 303
    assert _counts(db)[1] == 0
    log_in(TestClient(client.app), "solo")


def test_api_keys_work_for_provider_accounts_and_deleting_the_account_deletes_identities(
    client: TestClient, db: Session, oidc: LoopbackProvider
) -> None:
    _sign_in(client)
    post_form(client, "/auth/complete", {"username": "robin", "accept_tos": "yes"})
    created = post_form(client, "/settings/api-keys", {"name": "script"})
    key = created.text.split('id="new-api-key" class="key">', 1)[1].split("<", 1)[0]
    api = TestClient(client.app)
    headers = {"Authorization": f"Bearer {key}"}
    assert api.get("/api/v1/me", headers=headers).json()["username"] == "robin"
    deleted = post_form(client, "/settings/delete-account", {"password": "robin"})
    assert deleted.status_code == 303, deleted.text
    assert _counts(db)[1] == 0
    # The same provider account can start afresh (nothing left linked to the old one).
    again = _sign_in(TestClient(client.app))
    assert again.headers["location"] == "/auth/complete"
