"""Pages for what an email address unlocks: confirming it, changing it, "forgot password"
and "email me a link to sign in". Every form works without JavaScript (POST, then a page
or a 303)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hedgerow.accounts import email_service, ratelimit, tokens
from hedgerow.accounts.routes import (
    FormText,
    _form_error_context,
    _settings_page,
    client_ip,
    see_other,
)
from hedgerow.accounts.security import (
    OptionalUser,
    SessionUser,
    create_user_session,
    set_session_cookie,
)
from hedgerow.db import SessionDep
from hedgerow.errors import AppError
from hedgerow.i18n import gettext as _
from hedgerow.i18n import lazy_gettext
from hedgerow.inputs import Text
from hedgerow.mail.service import delivery_delayed
from hedgerow.models import TokenPurpose
from hedgerow.templating import is_htmx, render

router = APIRouter(include_in_schema=False)

# What each "email me" form is for: its page text and the service that acts on it.
REQUESTS: dict[str, dict[str, Any]] = {
    "forgot-password": {
        "title": lazy_gettext("Forgot your password?"),
        "intro": lazy_gettext(
            "Type your username or your verified email address; we will email you a "
            "link to choose a new password."
        ),
        "button": lazy_gettext("Email me a reset link"),
        "send": email_service.request_password_reset,
    },
    "sign-in-link": {
        "title": lazy_gettext("Sign in with an emailed link"),
        "intro": lazy_gettext(
            "Type your username or your verified email address; we will email you a "
            "link that signs you in, no password needed."
        ),
        "button": lazy_gettext("Email me a sign-in link"),
        "send": email_service.request_sign_in_link,
    },
}


def _request_page(
    request: Request, kind: str, *, login: str = "", status_code: int = 200, **extra: Any
) -> Response:
    context = {"kind": kind, "form": REQUESTS[kind], "login": login, **extra}
    return render(request, "accounts/email_request.html", context, status_code=status_code)


def _ask_for_mail(request: Request, db: SessionDep, kind: str, login: str) -> Response:
    ip = client_ip(request)
    try:
        if not login.strip():
            raise AppError("login_required", _("Type your username or email address."), 422)
        ratelimit.check_mail_request_allowed(ip, login)
    except AppError as error:
        response = _request_page(
            request,
            kind,
            login=login,
            status_code=error.status,
            form_error=error.message,
            error_code=error.code,
        )
        response.headers.update(error.headers)
        return response
    ratelimit.record_mail_request(ip, login)
    REQUESTS[kind]["send"](db, login)
    # The same page whether or not an account matched: nobody learns who has one.
    return render(
        request,
        "accounts/mail_sent.html",
        {"kind": kind, "delayed": delivery_delayed(db)},
    )


@router.get("/forgot-password")
def forgot_password_form(request: Request) -> Response:
    return _request_page(request, "forgot-password")


@router.post("/forgot-password")
def forgot_password(request: Request, db: SessionDep, login: FormText = "") -> Response:
    return _ask_for_mail(request, db, "forgot-password", login)


@router.get("/sign-in-link")
def sign_in_link_form(request: Request) -> Response:
    return _request_page(request, "sign-in-link")


@router.post("/sign-in-link")
def sign_in_link(request: Request, db: SessionDep, login: FormText = "") -> Response:
    return _ask_for_mail(request, db, "sign-in-link", login)


# --- following the links ------------------------------------------------------------
# Reset and sign-in links open a page with a button rather than acting on the GET: mail
# scanners fetch links to check them, and must not use up (or use) a single-use token.


def _reset_page(request: Request, token: str, *, status_code: int = 200, **extra: Any) -> Response:
    return render(
        request,
        "accounts/reset_password.html",
        {"token": token, **extra},
        status_code=status_code,
    )


@router.get("/reset-password")
def reset_password_form(request: Request, db: SessionDep, token: Text = "") -> Response:
    _, user = tokens.check_token(db, token, TokenPurpose.reset_password)
    return _reset_page(request, token, account=user)


@router.post("/reset-password")
def reset_password(
    request: Request,
    db: SessionDep,
    token: FormText = "",
    new_password: FormText = "",
    new_password_again: FormText = "",
) -> Response:
    try:
        email_service.reset_password(
            db, token, new_password=new_password, new_password_again=new_password_again
        )
    except AppError as error:
        if error.code.startswith("token_"):
            raise  # the error page: this link cannot be used, whatever is typed
        return _reset_page(request, token, status_code=error.status, **_form_error_context(error))
    return see_other("/login?reset=done")


@router.get("/sign-in")
def sign_in_link_page(request: Request, db: SessionDep, token: Text = "") -> Response:
    _, user = tokens.check_token(db, token, TokenPurpose.sign_in_link)
    return render(request, "accounts/sign_in_link.html", {"token": token, "account": user})


@router.post("/sign-in")
def sign_in_with_link(request: Request, db: SessionDep, token: FormText = "") -> Response:
    user = email_service.sign_in_with_link(db, token)
    response = see_other("/")
    set_session_cookie(response, create_user_session(db, user, request.headers.get("user-agent")))
    return response


@router.get("/verify-email")
def verify_email(
    request: Request, db: SessionDep, user: OptionalUser, token: Text = ""
) -> Response:
    """Confirming an address acts on the GET: at worst a scanner confirms it for the
    address's owner, who is the one the mail went to."""
    account = email_service.confirm_email(db, token)
    return render(request, "accounts/email_verified.html", {"user": user, "account": account})


# --- settings -----------------------------------------------------------------------


@router.post("/settings/email")
def change_email(
    request: Request, user: SessionUser, db: SessionDep, email: FormText = ""
) -> Response:
    try:
        email_service.change_email(db, user, email)
    except AppError as error:
        return _settings_page(
            request,
            db,
            user,
            block="email",
            status_code=error.status,
            email_value=email,
            **_form_error_context(error),
        )
    if is_htmx(request):
        return _settings_page(request, db, user, block="email", saved="email", sent_to=email)
    return see_other("/settings?saved=email#email")


@router.post("/settings/email/resend")
def resend_verification(request: Request, user: SessionUser, db: SessionDep) -> Response:
    email_service.resend_verification(db, user)
    if is_htmx(request):
        return _settings_page(request, db, user, block="email", saved="email")
    return see_other("/settings?saved=email#email")
