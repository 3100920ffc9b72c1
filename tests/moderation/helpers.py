"""Logged-in clients for the moderation tests, without going through the login form."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from hedgerow.accounts.security import SESSION_COOKIE, create_user_session
from hedgerow.models import User
from tests.factories import csrf_token


def log_in_as(client: TestClient, db: Session, user: User) -> TestClient:
    client.cookies.set(SESSION_COOKIE, create_user_session(db, user, "test"))
    csrf_token(client)
    return client


def form(client: TestClient, data: dict[str, str] | None = None) -> dict[str, str]:
    return {"csrf_token": csrf_token(client), **(data or {})}


def json_headers(client: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": csrf_token(client)}
