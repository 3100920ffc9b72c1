"""Factories for test data: users, API keys, logged-in clients."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from hedgerow.accounts.passwords import hash_password
from hedgerow.accounts.security import new_api_key
from hedgerow.models import ApiKey, Role, User

_counter = itertools.count(1)
DEFAULT_PASSWORD = "correct horse battery staple"
_hash_cache: dict[str, str] = {}


def _hashed(password: str) -> str:
    # argon2 is deliberately slow; hash each test password once per process.
    if password not in _hash_cache:
        _hash_cache[password] = hash_password(password)
    return _hash_cache[password]


def make_user(
    db: Session,
    *,
    username: str | None = None,
    role: Role = Role.volunteer,
    password: str = DEFAULT_PASSWORD,
    tos: bool = True,
    enabled: bool = True,
    language: str = "en",
) -> User:
    n = next(_counter)
    username = username or f"user{n}"
    user = User(
        username=username,
        display_name=username.title(),
        email=f"{username}@example.org",
        password_hash=_hashed(password),
        role=role.value,
        enabled=enabled,
        language=language,
        tos_accepted_at=datetime.now(UTC) if tos else None,
    )
    db.add(user)
    db.flush()
    return user


def make_api_key(db: Session, user: User, name: str = "test") -> str:
    raw, prefix, secret_hash = new_api_key()
    db.add(ApiKey(user_id=user.id, name=name, prefix=prefix, secret_hash=secret_hash))
    db.flush()
    return raw


def api_headers(raw_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw_key}"}


def csrf_token(client: TestClient) -> str:
    """Fetch a page so the CSRF cookie is set, and return the token."""
    if "hedgerow_csrf" not in client.cookies:
        client.get("/healthz")
    return client.cookies["hedgerow_csrf"]
