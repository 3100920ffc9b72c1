"""Odd input gets a 4xx with a machine code, never a 500: integers past 64 bits in ids and
paging parameters, NUL bytes and lone surrogates in text, in path, query, JSON and form."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.db import SessionDep
from hedgerow.models import Chat, Role, User
from tests.factories import api_headers, csrf_token, make_api_key, make_user
from tests.growth.factories import make_tree
from tests.page_helpers import log_in_as
from tests.test_access_control import app_routes

HUGE = "99999999999999999999"  # past 2**64
# export/ types its own routes; until it does, the database's refusal is answered 422 by a
# safety net (test_a_value_the_database_refuses_is_a_422_not_a_500).
EXPORT_ROUTES = ("/api/v1/datasets/", "/datasets/")
NUL = "text\x00with a NUL"
SURROGATE = "text \ud800 with a lone surrogate"


@pytest.fixture
def lenient_client(app: FastAPI) -> TestClient:
    # A 500 becomes a response to assert on, not an exception in the test.
    return TestClient(app, raise_server_exceptions=False)


def _error_code(response: Any) -> str:
    if response.headers.get("content-type", "").startswith("application/json"):
        return str(response.json()["error"]["code"])
    match = re.search(r'data-code="([a-z_]+)"', response.text)
    return match.group(1) if match else ""


def _refused(response: Any) -> tuple[int, str]:
    return response.status_code, _error_code(response)


def _raw_json(body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    # json.dumps escapes a lone surrogate as \ud800, the way an attacker sends it.
    return {"content": json.dumps(body), "headers": headers | {"content-type": "application/json"}}


def _admin(db: Session, client: TestClient) -> tuple[User, dict[str, str]]:
    admin = make_user(db, role=Role.admin)
    headers = api_headers(make_api_key(db, admin))
    log_in_as(client, db, admin)
    return admin, headers


def test_an_id_past_64_bits_in_any_path_is_refused_not_a_500(
    db: Session, lenient_client: TestClient, app: FastAPI
) -> None:
    _, api = _admin(db, lenient_client)
    token = csrf_token(lenient_client)
    problems = []
    for method, route in sorted(set(app_routes(app))):
        if not re.search(r"\{[a-z_]*id\}", route) or route.startswith(EXPORT_ROUTES):
            continue
        url = re.sub(r"\{[a-z_]*id\}", HUGE, route)
        url = re.sub(r"\{[a-z_]+\}", "x", url)
        headers = api if url.startswith("/api/") else {"X-CSRF-Token": token}
        response = lenient_client.request(method, url, headers=headers, follow_redirects=False)
        if response.status_code >= 500 or not (400 <= response.status_code < 500):
            problems.append(f"{method} {route}: {response.status_code}")
        elif response.status_code == 422 and not _error_code(response):
            problems.append(f"{method} {route}: 422 without an error code")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/admin/users?offset=10000000000000000000",
        "/api/v1/moderation/audit?page=10000000000000000000",
        "/api/v1/moderation/audit?target_id=10000000000000000000",
        "/moderation/audit?page=10000000000000000000",
        "/moderation/queue?page=10000000000000000000",
        "/admin/users?page=10000000000000000000",
        "/trees/1?message=10000000000000000000",
        "/me/contributions?page=10000000000000000000",
    ],
)
def test_a_paging_or_id_query_parameter_past_64_bits_is_a_422(
    db: Session, lenient_client: TestClient, url: str
) -> None:
    _, api = _admin(db, lenient_client)
    response = lenient_client.get(url, headers=api if url.startswith("/api/") else {})
    assert _refused(response) == (422, "invalid_request")


def _task(client: TestClient, db: Session) -> tuple[int, dict[str, str]]:
    make_tree(db, make_user(db))
    headers = api_headers(make_api_key(db, make_user(db)))
    response = client.post(
        "/api/v1/tasks", json={"kind": "reply_assistant", "language": "en"}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()["id"], headers


@pytest.mark.parametrize("text", [NUL, SURROGATE])
def test_a_draft_submission_or_skip_reason_with_nul_or_a_surrogate_is_a_422(
    db: Session, lenient_client: TestClient, text: str
) -> None:
    task_id, headers = _task(lenient_client, db)
    for action, body in [
        ("draft", {"draft": {"text": text}}),
        ("draft", {"draft": {text: "as a key"}}),
        ("submit", {"text": text}),
        ("skip", {"reason": text}),
    ]:
        response = lenient_client.post(
            f"/api/v1/tasks/{task_id}/{action}", **_raw_json(body, headers)
        )
        assert _refused(response) == (422, "invalid_text"), (action, response.text)
        assert response.json()["error"]["details"]["problems"][0]["code"] in {
            "text_contains_nul",
            "text_not_unicode",
            "string_unicode",  # pydantic's own refusal, for a dictionary key
        }


@pytest.mark.parametrize("text", [NUL, SURROGATE])
def test_a_moderation_reason_or_chat_title_with_nul_or_a_surrogate_is_a_422(
    db: Session, lenient_client: TestClient, text: str
) -> None:
    admin, api = _admin(db, lenient_client)
    tree, root = make_tree(db, make_user(db))
    chat = Chat(owner_id=admin.id, title="A chat", model_name="m")
    db.add(chat)
    db.flush()
    for url, body in [
        (f"/api/v1/moderation/messages/{root.id}/delete", {"reason": text}),
        (f"/api/v1/moderation/trees/{tree.id}/halt", {"reason": text}),
        (f"/api/v1/chats/{chat.id}", {"title": text}),
        (f"/api/v1/chats/{chat.id}", {"model": text}),
        (f"/api/v1/chats/{chat.id}/messages", {"text": text}),
    ]:
        method = "PATCH" if url.endswith(f"chats/{chat.id}") else "POST"
        response = lenient_client.request(method, url, **_raw_json(body, api))
        assert _refused(response) == (422, "invalid_text"), (url, body, response.text)


def test_a_nul_in_a_form_is_a_422_page(db: Session, lenient_client: TestClient) -> None:
    _admin(db, lenient_client)
    target = make_user(db)
    token = csrf_token(lenient_client)
    tree, _ = make_tree(db, make_user(db))
    for url, form in [
        (f"/moderation/users/{target.id}/disable", {"reason": NUL}),
        (f"/moderation/trees/{tree.id}/halt", {"reason": NUL}),
    ]:
        response = lenient_client.post(
            url, data=form, headers={"X-CSRF-Token": token}, follow_redirects=False
        )
        assert _refused(response) == (422, "invalid_text"), (url, response.text)


def test_a_value_the_database_refuses_is_a_422_not_a_500(
    db: Session, lenient_client: TestClient
) -> None:
    # Every route of the app validates its ids now, so a route made for this test stands in
    # for a future one that forgets to.
    def unvalidated(username: str, db: SessionDep) -> dict[str, bool]:
        return {"found": db.scalar(select(User).where(User.username == username)) is not None}

    app = lenient_client.app
    assert isinstance(app, FastAPI)
    app.add_api_route("/api/v1/unvalidated/{username}", unvalidated, methods=["GET"])
    _, api = _admin(db, lenient_client)
    response = lenient_client.get("/api/v1/unvalidated/a%00b", headers=api)
    assert _refused(response) == (422, "invalid_value"), response.text
