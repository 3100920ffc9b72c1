"""Pages of the provider sign-in: off to the provider, back at the callback, the short
form that creates an account on a first sign-in, and linking from the settings page.

What the browser must bring back (state, nonce, PKCE verifier) and a first sign-in's
profile waiting for its form travel in signed, short-lived, HttpOnly cookies: nothing is
stored for a sign-in that is never finished.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from hedgerow.accounts import identities, oauth
from hedgerow.accounts.routes import (
    FormText,
    _default_contribution_language,
    _form_error_context,
    _settings_page,
    see_other,
)
from hedgerow.accounts.security import (
    OptionalUser,
    SessionUser,
    create_user_session,
    safe_next,
    set_session_cookie,
)
from hedgerow.config import get_settings
from hedgerow.db import SessionDep
from hedgerow.errors import AppError
from hedgerow.i18n import gettext as _
from hedgerow.inputs import Id, Text
from hedgerow.models import User
from hedgerow.templating import is_htmx, render

router = APIRouter(include_in_schema=False)

FLOW_COOKIE = "hedgerow_oauth_flow"
PENDING_COOKIE = "hedgerow_oauth_pending"
# Long enough to sign in at the provider (a password, a second factor), no longer.
FLOW_MAX_AGE_SECONDS = 600
PENDING_MAX_AGE_SECONDS = 1800


def _signer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key, salt=f"oauth-{purpose}")


def _set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        # Lax: the provider's redirect back is a top-level GET, which carries it.
        samesite="lax",
        secure=get_settings().cookies_secure,
        path="/",
    )


def _read_cookie(request: Request, name: str, purpose: str, max_age: int) -> dict[str, Any]:
    raw = request.cookies.get(name)
    try:
        if raw is None:
            raise BadSignature("missing")
        value = _signer(purpose).loads(raw, max_age=max_age)
    except BadSignature as exc:  # also SignatureExpired
        raise AppError(
            "oauth_state_mismatch",
            _(
                "This sign-in was not started in this browser, or took too long. "
                "Please start again."
            ),
            400,
        ) from exc
    assert isinstance(value, dict)
    return value


def _redirect_to_provider(
    provider: oauth.Provider, *, next: str, link_user_id: int | None
) -> Response:
    url, flow = oauth.start(provider)
    response = see_other(url)
    value = {**flow.to_dict(), "next": next, "link_user_id": link_user_id}
    _set_cookie(response, FLOW_COOKIE, _signer("flow").dumps(value), FLOW_MAX_AGE_SECONDS)
    return response


def _signed_in(request: Request, db: SessionDep, user: User, next: str) -> Response:
    response = see_other(safe_next(next))
    set_session_cookie(response, create_user_session(db, user, request.headers.get("user-agent")))
    response.delete_cookie(FLOW_COOKIE, path="/")
    return response


@router.get("/auth/{name}/start")
def start(name: str, next: Text = "/") -> Response:
    return _redirect_to_provider(oauth.get_provider(name), next=safe_next(next), link_user_id=None)


@router.get("/auth/{name}/callback")
def callback(request: Request, name: str, db: SessionDep, user: OptionalUser) -> Response:
    provider = oauth.get_provider(name)
    saved = _read_cookie(request, FLOW_COOKIE, "flow", FLOW_MAX_AGE_SECONDS)
    flow = oauth.Flow(
        provider=saved["provider"],
        state=saved["state"],
        nonce=saved["nonce"],
        code_verifier=saved["code_verifier"],
    )
    profile = oauth.finish(provider, flow, dict(request.query_params))
    next = safe_next(saved.get("next"))
    if saved.get("link_user_id") is not None:
        if user is None or user.id != saved["link_user_id"]:
            raise AppError(
                "oauth_state_mismatch",
                _("Linking was started by another account; log in again and start over."),
                400,
            )
        identities.link_identity(db, user, profile)
        response = see_other("/settings?saved=identities#identities")
        response.delete_cookie(FLOW_COOKIE, path="/")
        return response
    account = identities.existing_account(db, profile)
    if account is not None:
        return _signed_in(request, db, account, next)
    # A first sign-in: the username and the Terms on a short form.
    response = see_other("/auth/complete")
    pending = {**asdict(profile), "next": next}
    _set_cookie(
        response, PENDING_COOKIE, _signer("pending").dumps(pending), PENDING_MAX_AGE_SECONDS
    )
    response.delete_cookie(FLOW_COOKIE, path="/")
    return response


def _pending_profile(request: Request) -> tuple[oauth.ProviderProfile, str]:
    saved = _read_cookie(request, PENDING_COOKIE, "pending", PENDING_MAX_AGE_SECONDS)
    next = safe_next(saved.pop("next", None))
    return oauth.ProviderProfile(**saved), next


def _complete_page(
    request: Request,
    profile: oauth.ProviderProfile,
    values: dict[str, Any],
    status_code: int = 200,
    **extra: Any,
) -> Response:
    context = {
        "profile": profile,
        "provider": oauth.get_provider(profile.provider),
        "values": values,
        **extra,
    }
    return render(request, "accounts/oauth_complete.html", context, status_code=status_code)


@router.get("/auth/complete")
def complete_form(request: Request) -> Response:
    profile, _ = _pending_profile(request)
    return _complete_page(request, profile, {"username": profile.username_hint or ""})


@router.post("/auth/complete")
def complete(
    request: Request,
    db: SessionDep,
    username: FormText = "",
    accept_tos: FormText = "",
) -> Response:
    profile, next = _pending_profile(request)
    try:
        user = identities.create_account(
            db,
            profile,
            username=username,
            accept_tos=accept_tos == "yes",
            language=_default_contribution_language(),
        )
    except AppError as error:
        if error.code == "email_belongs_to_account":
            raise
        return _complete_page(
            request,
            profile,
            {"username": username},
            status_code=error.status,
            **_form_error_context(error),
        )
    response = _signed_in(request, db, user, next)
    response.delete_cookie(PENDING_COOKIE, path="/")
    return response


# --- settings -----------------------------------------------------------------------


@router.post("/settings/identities/{name}/link")
def link(name: str, user: SessionUser) -> Response:
    return _redirect_to_provider(oauth.get_provider(name), next="/settings", link_user_id=user.id)


@router.post("/settings/identities/{identity_id}/unlink")
def unlink(request: Request, identity_id: Id, user: SessionUser, db: SessionDep) -> Response:
    try:
        identities.unlink_identity(db, user, identity_id)
    except AppError as error:
        if error.status == 404:
            raise
        return _settings_page(
            request,
            db,
            user,
            block="identities",
            status_code=error.status,
            identity_error=error.message,
            identity_error_code=error.code,
        )
    if is_htmx(request):
        return _settings_page(request, db, user, block="identities", saved="identities")
    return see_other("/settings?saved=identities#identities")
