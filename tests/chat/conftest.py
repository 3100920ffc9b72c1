"""A real model server with the tiny model, and an app that commits for real (the answer is
stored by the stream in its own transaction, after the request's)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from hedgerow.accounts.security import SESSION_COOKIE, create_user_session
from hedgerow.models import User
from tests.factories import csrf_token, make_user
from tests.growth.factories import override_settings
from tests.inference.conftest import served, tiny_models

__all__ = ["served", "tiny_models"]


@dataclass
class ChatClient:
    client: TestClient
    user: User
    headers: dict[str, str]
    version_id: int


def login(engine: Engine, client: TestClient) -> tuple[User, dict[str, str]]:
    maker = sessionmaker(bind=engine, expire_on_commit=False)
    with maker.begin() as db:
        user = make_user(db)
        client.cookies.set(SESSION_COOKIE, create_user_session(db, user, "chat-test"))
    return user, {"X-CSRF-Token": csrf_token(client)}


@pytest.fixture
def chat(
    engine: Engine, served: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> Iterator[ChatClient]:
    """A logged-in volunteer; data stays until the module's model server goes (its
    teardown empties the tables), so each test makes its own user."""
    from hedgerow.app import create_app

    url, version_id = served
    override_settings(monkeypatch, chat_inference_url=url, chat_default_model="hedgerow-chat")
    app = create_app()
    app.state.sessionmaker = sessionmaker(bind=engine, expire_on_commit=False)
    with TestClient(app) as client:
        user, headers = login(engine, client)
        yield ChatClient(client, user, headers, version_id)
