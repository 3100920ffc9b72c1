"""Shared helpers for the accounts tests."""

from __future__ import annotations

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hedgerow.models import ApiKey, AuditEvent, User, UserSession
from tests.factories import DEFAULT_PASSWORD, csrf_token


def post_form(client: TestClient, url: str, data: dict[str, str], **kwargs: object) -> Response:
    """A browser form POST: the CSRF token in the form, redirects not followed."""
    return client.post(
        url, data={"csrf_token": csrf_token(client), **data}, follow_redirects=False, **kwargs
    )


def log_in(client: TestClient, username: str, password: str = DEFAULT_PASSWORD) -> Response:
    response = post_form(client, "/login", {"username": username, "password": password})
    assert response.status_code == 303, response.text
    return response


def counts(db: Session) -> dict[str, int]:
    """Row counts of every table an accounts request may touch."""
    db.expire_all()
    return {
        model.__tablename__: db.scalar(select(func.count()).select_from(model)) or 0
        for model in (User, UserSession, ApiKey, AuditEvent)
    }


def error_code(response: Response) -> str:
    return response.json()["error"]["code"]
