"""Helpers for tests of HTML pages: a logged-in client without the slow password hash."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from hedgerow.accounts.security import SESSION_COOKIE, create_user_session
from hedgerow.models import User


def log_in_as(client: TestClient, db: Session, user: User) -> TestClient:
    client.cookies.set(SESSION_COOKIE, create_user_session(db, user, "pytest"))
    return client
