"""Account pages: landing, sign up, log in/out, Terms of Service, settings.

Every form works without JavaScript (POST, then 303); htmx requests get the named block
of the same template. Form errors re-render the form with the message next to the field
and what the person typed kept.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from hedgerow.accounts import email_service, queries, ratelimit, service
from hedgerow.accounts.identities import identities_of
from hedgerow.accounts.oauth import configured_providers
from hedgerow.accounts.security import (
    SESSION_COOKIE,
    CurrentUser,
    OptionalUser,
    SessionUser,
    clear_session_cookie,
    create_user_session,
    delete_user_session,
    safe_next,
    session_token_hash,
    set_session_cookie,
)
from hedgerow.config import get_settings
from hedgerow.db import SessionDep
from hedgerow.error_handlers import wants_json
from hedgerow.errors import AppError
from hedgerow.i18n import current_locale, ngettext
from hedgerow.i18n import gettext as _
from hedgerow.i18n.locales import INTERFACE_LANGUAGES
from hedgerow.i18n.translation import use_user_language
from hedgerow.inputs import Id, Text
from hedgerow.languages import language_choices
from hedgerow.mail.service import delivery_delayed, mail_log
from hedgerow.models import User
from hedgerow.templating import is_htmx, render

router = APIRouter(include_in_schema=False)

# Unknown user and wrong password read exactly the same, so the form does not reveal
# which usernames exist.


def invalid_credentials() -> AppError:
    return AppError(
        "invalid_credentials", _("That username and password do not match an account."), 400
    )


FormText = Annotated[str, Form()]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def _form_error_context(error: AppError) -> dict[str, Any]:
    """Each problem next to its field; several get a summary above the form too."""
    problems = error.details.get("problems") or [
        {"field": error.details.get("field"), "message": error.message}
    ]
    errors = {problem["field"]: problem["message"] for problem in problems if problem["field"]}
    if not errors:
        return {"form_error": error.message, "error_code": error.code}
    context: dict[str, Any] = {"errors": errors, "error_code": error.code}
    if len(problems) > 1:
        context["form_error"] = ngettext(
            "Please fix the %(num)d problem below.",
            "Please fix the %(num)d problems below.",
            len(problems),
        )
    return context


# --- landing and Terms --------------------------------------------------------------


@router.get("/")
def landing(request: Request, user: OptionalUser) -> Response:
    return render(request, "pages/landing.html", {"user": user})


@router.get("/tos")
def terms(request: Request, user: OptionalUser, next: Text = "/") -> Response:
    return render(request, "accounts/tos.html", {"user": user, "next": safe_next(next)})


@router.post("/tos")
def accept_terms(user: CurrentUser, db: SessionDep, next: FormText = "/") -> Response:
    service.accept_tos(db, user)
    return see_other(safe_next(next))


# --- sign up ------------------------------------------------------------------------


def _signup_page(
    request: Request, *, values: dict[str, str], status_code: int = 200, **extra: Any
) -> Response:
    context = {"values": values, "languages": language_choices(), **extra}
    return render(request, "accounts/signup.html", context, status_code=status_code)


@router.get("/signup")
def signup_form(request: Request, user: OptionalUser, next: Text = "/") -> Response:
    if user is not None:
        return see_other(safe_next(next))
    values = {"language": _default_contribution_language(), "next": safe_next(next)}
    return _signup_page(request, values=values)


def _default_contribution_language() -> str:
    """The language the page speaks (the browser's, or the switcher's) when volunteers may
    write in it here: someone reading Spanish most likely writes Spanish too."""
    settings = get_settings()
    interface = current_locale()
    return interface if interface in settings.languages else settings.default_language


@router.post("/signup")
def signup(
    request: Request,
    db: SessionDep,
    username: FormText = "",
    password: FormText = "",
    display_name: FormText = "",
    email: FormText = "",
    language: FormText = "",
    next: FormText = "/",
) -> Response:
    values = {
        "username": username,
        "display_name": display_name,
        "email": email,
        "language": language,
        "next": safe_next(next),
    }
    ip = client_ip(request)
    try:
        if not get_settings().signup_open:
            raise AppError("signup_closed", _("Sign-up is closed on this server."), 403)
        ratelimit.check_signup_allowed(ip)
        user = service.create_user(
            db,
            username=username,
            password=password,
            display_name=display_name.strip() or None,
            email=email,
            language=language or get_settings().default_language,
        )
        if user.email is not None:
            email_service.send_verification(db, user, user.email)
    except AppError as error:
        if wants_json(request):
            raise  # the JSON error, with every problem and its field in details
        response = _signup_page(
            request, values=values, status_code=error.status, **_form_error_context(error)
        )
        response.headers.update(error.headers)
        return response
    ratelimit.record_signup(ip)
    response = see_other("/tos?" + urlencode({"next": safe_next(next)}))
    set_session_cookie(response, create_user_session(db, user, request.headers.get("user-agent")))
    return response


# --- log in and out -----------------------------------------------------------------


def _login_page(
    request: Request, *, values: dict[str, str], status_code: int = 200, **extra: Any
) -> Response:
    return render(
        request, "accounts/login.html", {"values": values, **extra}, status_code=status_code
    )


@router.get("/login")
def login_form(request: Request, user: OptionalUser, next: Text = "/") -> Response:
    if user is not None:
        return see_other(safe_next(next))
    return _login_page(request, values={"next": safe_next(next)})


@router.post("/login")
def login(
    request: Request,
    db: SessionDep,
    username: FormText = "",
    password: FormText = "",
    next: FormText = "/",
) -> Response:
    values = {"username": username, "next": safe_next(next)}
    ip = client_ip(request)
    try:
        ratelimit.check_login_allowed(ip, username)
        user = service.authenticate(db, username=username, password=password)
        if user is None:
            ratelimit.record_failed_login(ip, username)
            raise invalid_credentials()
        if not user.enabled:
            # Only after the password matched, so this reveals nothing to a guesser.
            raise AppError(
                "account_disabled", _("This account has been disabled by a moderator."), 403
            )
    except AppError as error:
        response = _login_page(
            request,
            values=values,
            status_code=error.status,
            form_error=error.message,
            error_code=error.code,
        )
        response.headers.update(error.headers)
        return response
    ratelimit.clear_failures(ip, username)
    queries.delete_expired_sessions(db, user.id)
    response = see_other(safe_next(next))
    set_session_cookie(response, create_user_session(db, user, request.headers.get("user-agent")))
    return response


@router.post("/logout")
def logout(request: Request, db: SessionDep) -> Response:
    if token := request.cookies.get(SESSION_COOKIE):
        delete_user_session(db, token)
    response = see_other("/")
    clear_session_cookie(response)
    return response


# --- settings -----------------------------------------------------------------------


def _settings_page(
    request: Request,
    db: SessionDep,
    user: User,
    *,
    block: str | None = None,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    context = {
        "user": user,
        "languages": language_choices(),
        "api_keys": service.list_api_keys(db, user),
        "sessions": service.live_sessions(db, user),
        "this_session": session_token_hash(request),
        "session_days": get_settings().session_days,
        "values": values
        or {
            "display_name": user.display_name,
            "language": user.language,
            "interface_language": user.interface_language or "",
        },
        "interface_languages": INTERFACE_LANGUAGES,
        "saved": request.query_params.get("saved"),
        "mail_log": mail_log(db, user.id),
        "identities": identities_of(db, user.id),
        "provider_titles": {provider.name: provider.title for provider in configured_providers()},
        "mail_delayed": delivery_delayed(db),
        **extra,
    }
    return render(request, "accounts/settings.html", context, block=block, status_code=status_code)


@router.get("/settings")
def settings_page(request: Request, user: CurrentUser, db: SessionDep) -> Response:
    return _settings_page(request, db, user)


@router.post("/settings/profile")
def update_profile(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    display_name: FormText = "",
    language: FormText = "",
    # "": the same as the contribution language (FastAPI reads an empty field as absent,
    # so the profile form always says which it is).
    interface_language: FormText = "",
) -> Response:
    values = {
        "display_name": display_name,
        "language": language,
        "interface_language": interface_language,
    }
    try:
        service.update_profile(
            db,
            user,
            display_name=display_name,
            language=language,
            interface_language=interface_language,
        )
    except AppError as error:
        return _settings_page(
            request,
            db,
            user,
            block="profile",
            status_code=error.status,
            values=values,
            **_form_error_context(error),
        )
    # The answer already speaks the language just chosen.
    use_user_language(user)
    if is_htmx(request):
        return _settings_page(request, db, user, block="profile", saved="profile")
    return see_other("/settings?saved=profile")


@router.post("/settings/password")
def change_password(
    request: Request,
    user: SessionUser,
    db: SessionDep,
    current_password: FormText = "",
    new_password: FormText = "",
    new_password_again: FormText = "",
) -> Response:
    """A new password; every other session is logged out, this one stays."""
    try:
        service.change_password(
            db,
            user,
            current_password=current_password,
            new_password=new_password,
            new_password_again=new_password_again,
            keep_token_hash=session_token_hash(request),
        )
    except AppError as error:
        return _settings_page(
            request,
            db,
            user,
            block="password",
            status_code=error.status,
            **_form_error_context(error),
        )
    if is_htmx(request):
        return _settings_page(request, db, user, block="password", saved="password")
    return see_other("/settings?saved=password#password")


@router.post("/settings/sessions/log-out-others")
def log_out_other_sessions(request: Request, user: SessionUser, db: SessionDep) -> Response:
    service.log_out_other_sessions(db, user, keep_token_hash=session_token_hash(request))
    if is_htmx(request):
        return _settings_page(request, db, user, block="sessions", saved="sessions")
    return see_other("/settings?saved=sessions#sessions")


@router.post("/settings/api-keys")
def create_api_key(
    request: Request, user: SessionUser, db: SessionDep, name: FormText = ""
) -> Response:
    try:
        key, raw_key = service.create_api_key(db, user, name=name)
    except AppError as error:
        return _settings_page(
            request,
            db,
            user,
            block="api_keys",
            status_code=error.status,
            key_name=name,
            **_form_error_context(error),
        )
    # Rendered in the POST's own response instead of redirecting: the full key is shown
    # exactly once and is never stored anywhere, not even for a redirect.
    response = _settings_page(
        request, db, user, block="api_keys", new_key=raw_key, new_key_id=key.id
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/settings/api-keys/{key_id}/revoke")
def revoke_api_key(request: Request, key_id: Id, user: CurrentUser, db: SessionDep) -> Response:
    service.revoke_api_key(db, user, key_id)
    if is_htmx(request):
        return _settings_page(request, db, user, block="api_keys", saved="revoked")
    return see_other("/settings?saved=revoked#api-keys")


@router.post("/settings/delete-account")
def delete_account(
    request: Request, user: CurrentUser, db: SessionDep, password: FormText = ""
) -> Response:
    """Delete my account: contributions stay, anonymised; I am logged out everywhere."""
    try:
        service.delete_own_account(db, user, password=password)
    except AppError as error:
        return _settings_page(
            request,
            db,
            user,
            block="delete_account",
            status_code=error.status,
            delete_error=error.message,
        )
    response: Response = see_other("/?account=deleted")
    if is_htmx(request):
        response = Response(status_code=200, headers={"HX-Redirect": "/?account=deleted"})
    clear_session_cookie(response)
    return response
