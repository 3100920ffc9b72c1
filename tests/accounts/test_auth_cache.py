"""What a key or session resolved to is remembered for a few seconds, and forgotten at once
(in every web worker process) when the key is revoked or the user changes."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, event
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.accounts.auth_cache import CACHE
from hedgerow.models import Role
from tests.factories import api_headers, make_api_key, make_user
from tests.live_server import REPO_ROOT, live_uvicorn


@contextmanager
def statements_on(connection: Connection) -> Iterator[list[str]]:
    seen: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(connection, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(connection, "before_cursor_execute", capture)


@pytest.fixture(autouse=True)
def cache_on() -> None:
    # The cache is on only while it hears invalidations: without this the tests below could
    # pass with the cache off.
    assert CACHE.listening(timeout=10)


def test_a_known_key_is_not_looked_up_again(client: TestClient, db: Session) -> None:
    headers = api_headers(make_api_key(db, make_user(db)))
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    with statements_on(db.connection()) as statements:
        again = client.get("/api/v1/me", headers=headers)
    assert again.status_code == 200
    assert not [s for s in statements if "api_key" in s], statements


def test_a_revoked_key_is_refused_on_the_next_request(client: TestClient, db: Session) -> None:
    user = make_user(db)
    raw = make_api_key(db, user)
    other = api_headers(make_api_key(db, user, name="other"))
    assert client.get("/api/v1/me", headers=api_headers(raw)).status_code == 200  # cached
    key_id = next(
        k["id"]
        for k in client.get("/api/v1/me/api-keys", headers=other).json()
        if k["name"] == "test"
    )
    assert client.delete(f"/api/v1/me/api-keys/{key_id}", headers=other).status_code == 200
    refused = client.get("/api/v1/me", headers=api_headers(raw))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "not_authenticated"


def test_disabling_or_demoting_a_user_takes_effect_on_the_next_request(
    client: TestClient, db: Session
) -> None:
    admin = make_user(db, role=Role.admin)
    headers = api_headers(make_api_key(db, admin))
    assert client.get("/metrics", headers=headers).status_code == 200  # cached as an admin
    admin.role = Role.volunteer.value
    db.flush()
    assert client.get("/metrics", headers=headers).status_code == 403
    admin.enabled = False
    db.flush()
    disabled = client.get("/api/v1/me", headers=headers)
    assert disabled.status_code == 403
    assert disabled.json()["error"]["code"] == "account_disabled"


def test_a_logged_out_session_is_refused_on_the_next_request(
    client: TestClient, db: Session
) -> None:
    make_user(db, username="walker", password="a-long-password-1")
    token = client.get("/login").cookies.get("hedgerow_csrf") or client.cookies["hedgerow_csrf"]
    client.post(
        "/login",
        data={"username": "walker", "password": "a-long-password-1", "csrf_token": token},
        follow_redirects=False,
    )
    session_cookie = client.cookies["hedgerow_session"]
    assert client.get("/api/v1/me").status_code == 200  # cached
    client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    client.cookies.set("hedgerow_session", session_cookie)  # a copy the browser kept
    assert client.get("/api/v1/me").status_code == 401


def test_a_revoked_key_is_refused_in_every_worker_process(
    committing_sessionmaker: sessionmaker[Session],
) -> None:
    with committing_sessionmaker.begin() as db:
        user = make_user(db)
        raw = make_api_key(db, user)
        manager = api_headers(make_api_key(db, user, name="manager"))
    log_path = (
        REPO_ROOT
        / "test-artifacts"
        / f"auth-cache-{os.environ.get('PYTEST_XDIST_WORKER', 'gw0')}.log"
    )
    log_path.parent.mkdir(exist_ok=True)
    with live_uvicorn(dict(os.environ), log_path, workers=2) as base_url:
        # Many keep-alive connections, spread over both worker processes by the kernel;
        # each worker that served one now has the key cached.
        clients = [httpx.Client(base_url=base_url, headers=api_headers(raw)) for _ in range(12)]
        try:
            assert {c.get("/api/v1/me").status_code for c in clients} == {200}
            keys = httpx.get(f"{base_url}/api/v1/me/api-keys", headers=manager).json()
            key_id = next(k["id"] for k in keys if k["name"] == "test")
            revoked = httpx.delete(f"{base_url}/api/v1/me/api-keys/{key_id}", headers=manager)
            assert revoked.status_code == 200
            assert [c.get("/api/v1/me").status_code for c in clients] == [401] * len(clients)
        finally:
            for c in clients:
                c.close()


def test_the_listener_survives_its_connection_closed_under_it() -> None:
    """A command disconnects the shared Redis pool before the embedded Redis stops, closing
    the listener's socket from another thread: the listener resubscribes rather than dying
    (a dead listener would leave the cache off, and its traceback in the log)."""
    from hedgerow.redis_client import get_redis

    listener = CACHE._listener
    assert listener is not None and listener.is_alive()
    get_redis().connection_pool.disconnect()
    # It noticed (the cache is off until it is back), then subscribed again, same thread.
    deadline = time.monotonic() + 10
    while CACHE._subscribed.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert CACHE.listening(timeout=10)
    assert CACHE._listener is listener and listener.is_alive()
