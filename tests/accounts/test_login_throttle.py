"""Failed logins are throttled per (username, client address), with waits that grow, and per
client address across usernames: a guesser is slowed down and cannot lock the owner out.

Each TestClient here is one client address; test_login_behind_proxy.py shows, against a
real server, which address that is when X-Forwarded-For is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session

from hedgerow.accounts import ratelimit
from hedgerow.config import Settings
from tests.accounts.helpers import counts, log_in, post_form
from tests.factories import DEFAULT_PASSWORD, make_user
from tests.growth.factories import override_settings

GUESSER = "198.51.100.7"
OWNER = "203.0.113.20"


@contextmanager
def client_at(app: FastAPI, address: str) -> Iterator[TestClient]:
    with TestClient(app, client=(address, 50000)) as client:
        yield client


def guess(client: TestClient, username: str, password: str = "a wrong guess") -> Response:
    return post_form(client, "/login", {"username": username, "password": password})


@pytest.fixture
def throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three free failures per username and client, then 10 s doubling up to 60 s; the
    per-client window out of the way unless a test sets it."""
    override_settings(
        monkeypatch,
        login_failures_before_delay=3,
        login_delay_seconds=10,
        login_max_delay_seconds=60,
        login_attempts_per_window=1000,
    )


def assert_throttled(response: Response) -> int:
    assert response.status_code == 429
    assert 'data-code="rate_limited"' in response.text
    return int(response.headers["retry-after"])


def test_after_the_free_failures_the_guesser_waits_even_with_the_right_password(
    app: FastAPI, db: Session, throttle: None
) -> None:
    make_user(db, username="target")
    with client_at(app, GUESSER) as guesser:
        for _ in range(3):
            assert guess(guesser, "target").status_code == 400
        before = counts(db)
        retry_after = assert_throttled(guess(guesser, "target", DEFAULT_PASSWORD))
        assert 0 < retry_after <= 10
        assert "hedgerow_session" not in guesser.cookies
        assert counts(db) == before


def test_the_owner_logs_in_from_another_address_while_the_guesser_waits(
    app: FastAPI, db: Session, throttle: None
) -> None:
    make_user(db, username="owner")
    with client_at(app, GUESSER) as guesser:
        answers = [guess(guesser, "OWNER").status_code for _ in range(15)]
        assert answers == [400] * 3 + [429] * 12
        assert_throttled(guess(guesser, "owner", DEFAULT_PASSWORD))
    with client_at(app, OWNER) as owner:
        log_in(owner, "owner")
        assert "hedgerow_session" in owner.cookies


def test_each_further_failure_doubles_the_wait_up_to_the_longest(
    app: FastAPI, db: Session, throttle: None, redis_db: redis.Redis
) -> None:
    make_user(db, username="patient")
    waits = []
    with client_at(app, GUESSER) as guesser:
        for _ in range(2):
            assert guess(guesser, "patient").status_code == 400
        for _ in range(5):
            assert guess(guesser, "patient").status_code == 400  # the last wait is over
            waits.append(assert_throttled(guess(guesser, "patient", DEFAULT_PASSWORD)))
            # The wait runs out (the test does not sit through it).
            redis_db.delete(ratelimit.pair_wait_key(GUESSER, "patient"))
    # Retry-After counts down from the wait: each is at most the wait and well past the
    # one before.
    for wait, expected in zip(waits, [10, 20, 40, 60, 60], strict=True):
        assert expected - 5 < wait <= expected


def test_the_waits_double_from_the_first_delay_and_stop_at_the_longest() -> None:
    settings = Settings(
        _env_file=None,
        login_failures_before_delay=3,
        login_delay_seconds=2,
        login_max_delay_seconds=900,
    )
    waits = [ratelimit.wait_after(failures, settings) for failures in range(1, 15)]
    assert waits == [0, 0, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]
    assert ratelimit.wait_after(10**6, settings) == 900


def test_one_address_guessing_many_usernames_meets_the_address_window(
    app: FastAPI, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, login_attempts_per_window=3)
    make_user(db, username="victim")
    with client_at(app, GUESSER) as sprayer:
        for n in range(3):
            assert guess(sprayer, f"sprayed{n}").status_code == 400
        retry_after = assert_throttled(guess(sprayer, "victim", DEFAULT_PASSWORD))
        assert 0 < retry_after <= 300
    with client_at(app, OWNER) as owner:
        log_in(owner, "victim")


def test_a_successful_login_forgives_that_address_s_failures_for_the_username(
    app: FastAPI, db: Session, throttle: None, redis_db: redis.Redis
) -> None:
    make_user(db, username="forgetful")
    with client_at(app, OWNER) as owner:
        for _ in range(2):
            assert guess(owner, "forgetful").status_code == 400
        log_in(owner, "forgetful")
        assert redis_db.get(ratelimit.pair_failures_key(OWNER, "forgetful")) is None
        # The address's failures in its window are not forgiven by one success.
        assert redis_db.get(ratelimit.client_key(OWNER)) == "2"
    with client_at(app, OWNER) as owner_again:
        # Three fresh failures are free again before the first wait.
        assert [guess(owner_again, "forgetful").status_code for _ in range(4)] == [
            400,
            400,
            400,
            429,
        ]
