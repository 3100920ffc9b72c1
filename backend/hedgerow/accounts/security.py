"""Who is asking: browser sessions, API keys, CSRF tokens and role checks.

Routes declare what they need with the typed dependencies at the bottom:
``CurrentUser`` (logged in), ``ContributorUser`` (logged in and accepted the Terms),
``ModeratorUser``, ``AdminUser``; ``SessionUser`` for what only a browser session may do.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from hedgerow.accounts import queries
from hedgerow.accounts.auth_cache import CACHE, Credential, attach, user_columns
from hedgerow.config import get_settings
from hedgerow.db import SessionDep, app_sessionmaker
from hedgerow.errors import AppError, Forbidden, NotAuthenticated
from hedgerow.i18n import gettext as _
from hedgerow.i18n.translation import use_user_language
from hedgerow.models import Role, User, UserSession

log = logging.getLogger(__name__)

SESSION_COOKIE = "hedgerow_session"
CSRF_COOKIE = "hedgerow_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FORM_FIELD = "csrf_token"
API_KEY_PREFIX = "hr"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Refreshing last_used_at on every call would turn each API read into a write.
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- browser sessions ---------------------------------------------------------------


def create_user_session(db: Session, user: User, user_agent: str | None) -> str:
    """Store a new login and return the raw token for the cookie (never stored)."""
    token = secrets.token_urlsafe(32)
    db.add(
        UserSession(
            user_id=user.id,
            token_hash=sha256_hex(token),
            expires_at=utcnow() + timedelta(days=get_settings().session_days),
            user_agent=(user_agent or "")[:256] or None,
        )
    )
    db.flush()
    return token


def delete_user_session(db: Session, token: str) -> None:
    row = queries.session_by_token_hash(db, sha256_hex(token))
    if row is not None:
        db.delete(row)
        db.flush()


def session_token_hash(request: HTTPConnection) -> str | None:
    """The stored hash of the session this request came with, if it has a cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    return sha256_hex(token) if token else None


def _user_from_session_cookie(db: Session, token: str) -> User | None:
    token_hash = sha256_hex(token)
    now = utcnow()
    cached = CACHE.get(f"session:{token_hash}")
    if cached is not None and cached.session_expires_at and cached.session_expires_at > now:
        return attach(db, cached.user_columns)
    found = queries.live_session_with_user(db, token_hash, now)
    if found is None:
        return None
    session, user = found
    CACHE.put(
        f"session:{token_hash}",
        Credential(
            user_columns(user),
            time.monotonic() + CACHE.ttl(),
            session_expires_at=session.expires_at,
        ),
    )
    return user


# --- API keys -----------------------------------------------------------------------


def new_api_key() -> tuple[str, str, str]:
    """Return (full key shown once, prefix, sha256 of the secret)."""
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    return f"{API_KEY_PREFIX}_{prefix}_{secret}", prefix, sha256_hex(secret)


def _user_from_api_key(db: Session, raw_key: str) -> User:
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        raise NotAuthenticated(_("The API key is malformed."))
    _api, prefix, secret = parts
    credential = CACHE.get(f"api_key:{prefix}") or _api_key_credential(db, prefix)
    if credential is None or not hmac.compare_digest(
        credential.secret_hash or "", sha256_hex(secret)
    ):
        raise NotAuthenticated(_("The API key is not valid."))
    if credential.revoked:
        raise NotAuthenticated(_("The API key was revoked."))
    now = utcnow()
    if credential.last_used_at is None or now - credential.last_used_at > API_KEY_TOUCH_INTERVAL:
        assert credential.api_key_id is not None
        queries.touch_api_key(db, credential.api_key_id, now)
        credential.last_used_at = now
    return attach(db, credential.user_columns)


def _api_key_credential(db: Session, prefix: str) -> Credential | None:
    found = queries.api_key_with_owner(db, prefix)
    if found is None:
        return None
    key, user = found
    credential = Credential(
        user_columns(user),
        time.monotonic() + CACHE.ttl(),
        api_key_id=key.id,
        secret_hash=key.secret_hash,
        revoked=key.revoked_at is not None,
        last_used_at=key.last_used_at,
    )
    CACHE.put(f"api_key:{prefix}", credential)
    return credential


def bearer_token(request: HTTPConnection) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


# --- dependencies -------------------------------------------------------------------


def get_optional_user(request: Request, db: SessionDep) -> User | None:
    """The authenticated user or None. API keys win over cookies."""
    if "user" in request.state._state:
        return request.state.user
    user: User | None = None
    request.state.auth_method = None
    raw_key = bearer_token(request)
    if raw_key is not None:
        user = _user_from_api_key(db, raw_key)
        request.state.auth_method = "api_key"
    elif token := request.cookies.get(SESSION_COOKIE):
        user = _user_from_session_cookie(db, token)
        if user is not None:
            request.state.auth_method = "session"
            # Pages speak the user's language; the JSON API follows Accept-Language.
            use_user_language(user)
    if user is not None and user.deleted_at is not None:
        user = None
    request.state.user = user
    return user


def user_for_error_page(request: Request) -> User | None:
    """Who is logged in, for an error page whose request never resolved it (a path no route
    matches runs no dependency), so the page shows their navigation. Browser sessions only,
    in a session of its own; None when the cookie does not resolve, and None rather than a
    second error when the database cannot answer."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        with app_sessionmaker(request)() as db:
            user = _user_from_session_cookie(db, token)
    except SQLAlchemyError:
        log.warning("could not resolve the user for an error page", exc_info=True)
        return None
    if user is None or user.deleted_at is not None:
        return None
    return user


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


# The checks below read attributes of the user loaded by get_optional_user: no I/O, so
# they are coroutines and run on the event loop. (A plain def dependency costs a hop to
# the thread pool and back on every request, and a task request already makes several.)


async def get_current_user(user: OptionalUser) -> User:
    if user is None:
        raise NotAuthenticated()
    if not user.enabled:
        raise AppError("account_disabled", _("This account has been disabled by a moderator."), 403)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_contributor(user: CurrentUser) -> User:
    if user.tos_accepted_at is None:
        raise AppError(
            "tos_required", _("Please accept the Terms of Service before contributing."), 403
        )
    return user


ContributorUser = Annotated[User, Depends(get_contributor)]


async def get_session_user(request: Request, user: CurrentUser) -> User:
    """The user, when they came with a browser session rather than an API key.

    Keys are for scripts: a leaked key must not be able to mint more keys (which would
    outlive revoking it), change the password or end the owner's sessions."""
    if request.state.auth_method != "session":
        raise AppError(
            "session_required",
            _(
                "Only a logged-in browser session can do this, not an API key. "
                "Log in on the website and use the settings page."
            ),
            403,
        )
    return user


SessionUser = Annotated[User, Depends(get_session_user)]


def require_role(minimum: Role):
    async def dependency(user: CurrentUser) -> User:
        if not user.has_role(minimum):
            raise Forbidden(_("This needs the %(role)s role.", role=minimum.value))
        return user

    return dependency


ModeratorUser = Annotated[User, Depends(require_role(Role.moderator))]
AdminUser = Annotated[User, Depends(require_role(Role.admin))]


# --- CSRF ---------------------------------------------------------------------------


def _csrf_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(get_settings().secret_key, salt="csrf")


def new_csrf_token() -> str:
    return _csrf_serializer().dumps(secrets.token_urlsafe(16))


def csrf_token_is_valid(token: str | None) -> bool:
    if not token:
        return False
    try:
        _csrf_serializer().loads(token)
    except BadSignature:
        return False
    return True


def _needs_a_user(dependant: Dependant) -> bool:
    return any(
        dependency.call is get_current_user or _needs_a_user(dependency)
        for dependency in dependant.dependencies
    )


def _route_needs_a_user(route: object) -> bool:
    """Whether the matched route refuses anonymous callers. Walked on each call: only
    unsafe requests without any credentials get here, and the tree is a few dozen nodes."""
    return isinstance(route, APIRoute) and _needs_a_user(route.dependant)


async def verify_csrf(request: Request) -> None:
    """Double-submit check on every state-changing request made with cookies.

    The signed token lives in a cookie and must come back in the X-CSRF-Token header
    (htmx, fetch) or the csrf_token form field (plain forms). Requests authenticated by an
    API key carry no ambient credentials and are exempt. So is a request with no session
    cookie to a route that needs a logged-in user: it has no credentials for a forger to
    ride on, and the route refuses it as not_authenticated (401 or the login page), which
    says what is wrong where "the form expired" would not. Routes open to anonymous callers
    (log in, sign up) keep the check.
    """
    if request.method in SAFE_METHODS or bearer_token(request) is not None:
        return
    if SESSION_COOKIE not in request.cookies and _route_needs_a_user(request.scope.get("route")):
        return
    cookie = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FORM_FIELD)
        sent = value if isinstance(value, str) else None
    if not (cookie and sent and hmac.compare_digest(cookie, sent) and csrf_token_is_valid(sent)):
        raise AppError(
            "csrf_failed",
            _("The form expired or came from another site. Reload the page and try again."),
            403,
        )


# --- cookies and redirects ----------------------------------------------------------


def set_session_cookie(response: Response, token: str) -> None:
    settings = get_settings()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_days * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.cookies_secure,
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    settings = get_settings()
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="lax", secure=settings.cookies_secure, path="/"
    )


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths: ``next`` must never send a user to another site."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or any(char in target for char in "\r\n\t\\")
        or len(target) > 2000
    ):
        return default
    return target
