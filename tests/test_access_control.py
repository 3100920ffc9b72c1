"""Every route of the app, for every role, gets the outcome this table expects.

Roles: anonymous, a volunteer, a newcomer (logged in, Terms not yet accepted), a researcher,
a moderator and an admin.

A route missing from ACCESS fails the suite: a new route cannot ship without someone deciding
who may call it. Anonymous callers of a protected route get 401 (JSON) or a redirect to the
login page (HTML); a logged-in user without the role gets 403; a user with the role gets past
the gate (any answer but 401, 403 or a redirect to the login or Terms page: with made-up ids
and no body that is usually 404 or 422, which is fine; this test is about the gate). A 5xx
fails it too: a request with made-up ids must not crash any route.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from starlette.routing import Mount

from hedgerow.accounts.security import SESSION_COOKIE, create_user_session
from hedgerow.error_handlers import MACHINE_PATHS
from hedgerow.models import Role, User
from tests.factories import csrf_token, make_user

# Who may call a route: anyone; any logged-in user; a logged-in user who accepted the Terms;
# researchers and admins (dataset downloads); moderators and admins; admins only.
PUBLIC, USER, CONTRIBUTOR = "public", "user", "contributor"
RESEARCHER, MODERATOR, ADMIN = "researcher", "moderator", "admin"

ACCESS: dict[tuple[str, str], str] = {
    # ops, docs, static files
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): ADMIN,  # or the HEDGEROW_METRICS_TOKEN scraper
    ("GET", "/api/openapi.json"): PUBLIC,
    ("HEAD", "/api/openapi.json"): PUBLIC,
    ("GET", "/api/docs"): PUBLIC,
    ("GET", "/static"): PUBLIC,
    ("GET", "/static/vendor"): PUBLIC,
    ("GET", "/favicon.ico"): PUBLIC,
    # accounts
    ("GET", "/"): PUBLIC,
    ("GET", "/tos"): PUBLIC,
    ("POST", "/language"): PUBLIC,  # the language switcher (a cookie; a signed-in user's setting)
    ("POST", "/tos"): USER,
    ("GET", "/signup"): PUBLIC,
    ("POST", "/signup"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    ("GET", "/settings"): USER,
    ("POST", "/settings/profile"): USER,
    ("POST", "/settings/password"): USER,
    ("POST", "/settings/email"): USER,
    ("POST", "/settings/email/resend"): USER,
    ("POST", "/settings/identities/{name}/link"): USER,
    ("POST", "/settings/identities/{identity_id}/unlink"): USER,
    # email: the links in the mail carry their own single-use tokens
    ("GET", "/forgot-password"): PUBLIC,
    ("POST", "/forgot-password"): PUBLIC,
    ("GET", "/reset-password"): PUBLIC,
    ("POST", "/reset-password"): PUBLIC,
    ("GET", "/sign-in-link"): PUBLIC,
    ("POST", "/sign-in-link"): PUBLIC,
    ("GET", "/sign-in"): PUBLIC,
    ("POST", "/sign-in"): PUBLIC,
    ("GET", "/verify-email"): PUBLIC,
    # sign-in providers: the flow is bound to the browser by its signed cookie
    ("GET", "/auth/{name}/start"): PUBLIC,
    ("GET", "/auth/{name}/callback"): PUBLIC,
    ("GET", "/auth/complete"): PUBLIC,
    ("POST", "/auth/complete"): PUBLIC,
    # the development mailbox (404 outside development)
    ("GET", "/dev/mail"): PUBLIC,
    ("GET", "/dev/mail/{name}"): PUBLIC,
    ("GET", "/dev/mail/{name}/html"): PUBLIC,
    ("POST", "/settings/sessions/log-out-others"): USER,
    ("POST", "/settings/api-keys"): USER,
    ("POST", "/settings/api-keys/{key_id}/revoke"): USER,
    ("POST", "/settings/delete-account"): USER,
    ("GET", "/api/v1/me"): USER,
    ("PATCH", "/api/v1/me"): USER,
    ("POST", "/api/v1/me/tos"): USER,
    ("GET", "/api/v1/me/api-keys"): USER,
    ("POST", "/api/v1/me/api-keys"): USER,
    ("DELETE", "/api/v1/me/api-keys/{key_id}"): USER,
    # admin
    ("GET", "/admin"): MODERATOR,
    ("GET", "/admin/users"): ADMIN,
    ("POST", "/admin/users/{user_id}/role"): ADMIN,
    ("POST", "/admin/users/{user_id}/anonymise"): ADMIN,
    ("GET", "/api/v1/admin/users"): ADMIN,
    ("POST", "/api/v1/admin/users/{user_id}/role"): ADMIN,
    ("POST", "/api/v1/admin/users/{user_id}/anonymise"): ADMIN,
    # volunteer tasks (JSON)
    ("GET", "/api/v1/tasks/available"): CONTRIBUTOR,
    ("POST", "/api/v1/tasks"): CONTRIBUTOR,
    ("POST", "/api/v1/tasks/{task_id}/submit"): CONTRIBUTOR,
    ("POST", "/api/v1/tasks/{task_id}/skip"): CONTRIBUTOR,
    ("POST", "/api/v1/tasks/{task_id}/draft"): CONTRIBUTOR,
    ("GET", "/api/v1/labels"): PUBLIC,
    ("POST", "/api/v1/messages/{message_id}/red-flag"): CONTRIBUTOR,
    # volunteer pages
    ("GET", "/dashboard"): CONTRIBUTOR,
    ("POST", "/tasks"): CONTRIBUTOR,
    ("GET", "/tasks/{task_id}"): CONTRIBUTOR,
    ("POST", "/tasks/{task_id}/submit"): CONTRIBUTOR,
    ("POST", "/tasks/{task_id}/skip"): CONTRIBUTOR,
    ("POST", "/tasks/{task_id}/report/{message_id}"): CONTRIBUTOR,
    ("POST", "/tasks/preview"): CONTRIBUTOR,
    ("POST", "/tasks/language-check"): CONTRIBUTOR,
    ("GET", "/guidelines"): PUBLIC,
    ("GET", "/guidelines/{name}"): PUBLIC,
    ("GET", "/trees/{tree_id}"): CONTRIBUTOR,
    ("GET", "/me/contributions"): USER,
    # stats
    ("GET", "/leaderboard"): USER,
    ("POST", "/leaderboard/visibility"): USER,
    ("GET", "/stats"): USER,
    # datasets
    ("GET", "/datasets"): RESEARCHER,
    ("GET", "/api/v1/datasets"): RESEARCHER,
    ("GET", "/api/v1/datasets/{release_id}"): RESEARCHER,
    ("GET", "/api/v1/datasets/{release_id}/files/{name}"): RESEARCHER,
    ("POST", "/api/v1/datasets/{release_id}/pin"): ADMIN,
    ("POST", "/api/v1/datasets/{release_id}/unpin"): ADMIN,
    ("GET", "/admin/exports"): ADMIN,
    ("POST", "/admin/exports"): ADMIN,
    # training
    ("GET", "/admin/training"): ADMIN,
    ("POST", "/admin/training"): ADMIN,
    ("GET", "/admin/training/versions/{version_id}"): ADMIN,
    ("POST", "/admin/training/versions/{version_id}/promote"): ADMIN,
    ("POST", "/admin/training/serving/{name}/rollback"): ADMIN,
    ("GET", "/admin/training/compare"): ADMIN,
    ("GET", "/api/v1/models"): ADMIN,
    ("POST", "/api/v1/models"): ADMIN,
    ("GET", "/api/v1/models/{version_id}"): ADMIN,
    ("POST", "/api/v1/models/{version_id}/promote"): ADMIN,
    ("POST", "/api/v1/models/serving/{name}/rollback"): ADMIN,
    # reporting
    ("GET", "/messages/{message_id}/report"): CONTRIBUTOR,
    ("POST", "/messages/{message_id}/report"): CONTRIBUTOR,
    ("POST", "/api/v1/messages/{message_id}/report"): CONTRIBUTOR,
    # reactions
    ("POST", "/messages/{message_id}/reactions"): CONTRIBUTOR,
    ("GET", "/api/v1/messages/{message_id}/reactions"): CONTRIBUTOR,
    ("POST", "/api/v1/messages/{message_id}/reactions"): CONTRIBUTOR,
    # moderation pages
    ("GET", "/moderation"): MODERATOR,
    ("GET", "/moderation/queue"): MODERATOR,
    ("GET", "/moderation/messages/{message_id}"): MODERATOR,
    ("POST", "/moderation/messages/{message_id}/dismiss"): MODERATOR,
    ("GET", "/moderation/messages/{message_id}/delete"): MODERATOR,
    ("POST", "/moderation/messages/{message_id}/delete"): MODERATOR,
    ("POST", "/moderation/messages/{message_id}/undelete"): MODERATOR,
    ("POST", "/moderation/messages/{message_id}/edit"): MODERATOR,
    ("POST", "/moderation/trees/{tree_id}/halt"): MODERATOR,
    ("POST", "/moderation/trees/{tree_id}/resume"): MODERATOR,
    ("POST", "/moderation/bulk"): MODERATOR,
    ("GET", "/moderation/users/{user_id}"): MODERATOR,
    ("POST", "/moderation/users/{user_id}/disable"): MODERATOR,
    ("POST", "/moderation/users/{user_id}/enable"): MODERATOR,
    ("POST", "/moderation/users/{user_id}/notes"): MODERATOR,
    ("GET", "/moderation/trollboard"): MODERATOR,
    ("GET", "/moderation/audit"): MODERATOR,
    ("GET", "/moderation/status"): MODERATOR,
    # moderation JSON
    ("GET", "/api/v1/moderation/queue"): MODERATOR,
    ("POST", "/api/v1/moderation/messages/{message_id}/dismiss"): MODERATOR,
    ("POST", "/api/v1/moderation/messages/{message_id}/delete"): MODERATOR,
    ("POST", "/api/v1/moderation/messages/{message_id}/undelete"): MODERATOR,
    ("POST", "/api/v1/moderation/messages/{message_id}/edit"): MODERATOR,
    ("POST", "/api/v1/moderation/trees/{tree_id}/halt"): MODERATOR,
    ("POST", "/api/v1/moderation/trees/{tree_id}/resume"): MODERATOR,
    ("POST", "/api/v1/moderation/users/{user_id}/disable"): MODERATOR,
    ("POST", "/api/v1/moderation/users/{user_id}/enable"): MODERATOR,
    ("POST", "/api/v1/moderation/users/{user_id}/notes"): MODERATOR,
    ("POST", "/api/v1/moderation/bulk"): MODERATOR,
    ("GET", "/api/v1/moderation/audit"): MODERATOR,
    # chat with the served model
    ("GET", "/api/v1/chat-models"): CONTRIBUTOR,
    ("GET", "/api/v1/chats"): CONTRIBUTOR,
    ("POST", "/api/v1/chats"): CONTRIBUTOR,
    ("GET", "/api/v1/chats/{chat_id}"): CONTRIBUTOR,
    ("PATCH", "/api/v1/chats/{chat_id}"): CONTRIBUTOR,
    ("DELETE", "/api/v1/chats/{chat_id}"): CONTRIBUTOR,
    ("POST", "/api/v1/chats/{chat_id}/messages"): CONTRIBUTOR,
    ("POST", "/api/v1/chats/{chat_id}/messages/{message_id}/regenerate"): CONTRIBUTOR,
    ("GET", "/api/v1/chats/{chat_id}/messages/{message_id}/stream"): CONTRIBUTOR,
    ("POST", "/api/v1/chats/{chat_id}/messages/{message_id}/stop"): CONTRIBUTOR,
    ("POST", "/api/v1/chats/{chat_id}/messages/{message_id}/thumbs"): CONTRIBUTOR,
    ("POST", "/api/v1/chats/{chat_id}/messages/{message_id}/report"): CONTRIBUTOR,
    ("GET", "/chat"): CONTRIBUTOR,
    ("POST", "/chat"): CONTRIBUTOR,
    ("GET", "/chat/{chat_id}"): CONTRIBUTOR,
    ("POST", "/chat/{chat_id}/messages"): CONTRIBUTOR,
    ("POST", "/chat/{chat_id}/messages/{message_id}/regenerate"): CONTRIBUTOR,
    ("POST", "/chat/{chat_id}/messages/{message_id}/thumbs"): CONTRIBUTOR,
    ("POST", "/chat/{chat_id}/messages/{message_id}/report"): CONTRIBUTOR,
    ("POST", "/chat/{chat_id}/settings"): CONTRIBUTOR,
    ("POST", "/chat/{chat_id}/delete"): CONTRIBUTOR,
    ("POST", "/chat/{chat_id}/messages/{message_id}/to-lottery"): CONTRIBUTOR,
    ("POST", "/api/v1/chats/{chat_id}/messages/{message_id}/to-lottery"): CONTRIBUTOR,
    ("GET", "/arena"): CONTRIBUTOR,
    ("POST", "/arena"): CONTRIBUTOR,
    ("GET", "/arena/leaderboard"): PUBLIC,
    ("GET", "/arena/{battle_id}"): CONTRIBUTOR,
    ("POST", "/arena/{battle_id}/vote"): CONTRIBUTOR,
}

ROLES: dict[str, Role | None] = {
    "anonymous": None,
    "volunteer": Role.volunteer,
    # Logged in but has not accepted the Terms: may not contribute yet.
    "newcomer": Role.volunteer,
    "researcher": Role.researcher,
    "moderator": Role.moderator,
    "admin": Role.admin,
}
ALLOWED_ROLES = {
    PUBLIC: {"anonymous", "volunteer", "newcomer", "researcher", "moderator", "admin"},
    USER: {"volunteer", "newcomer", "researcher", "moderator", "admin"},
    CONTRIBUTOR: {"volunteer", "researcher", "moderator", "admin"},
    RESEARCHER: {"researcher", "admin"},
    MODERATOR: {"moderator", "admin"},
    ADMIN: {"admin"},
}
# Ids that exist nowhere: an allowed caller reaches the handler and gets a 404, not a change.
MISSING_ID = "987654321"


def app_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, Mount):
            yield "GET", str(context.path)
            continue
        for method in sorted(context.methods or ()):
            yield method, str(context.path)


def concrete(path: str) -> str:
    path = re.sub(r"\{[a-z_]*id\}", MISSING_ID, path)
    return re.sub(r"\{[a-z_]+\}", "missing", path)


def test_every_route_is_in_the_access_table(app: FastAPI) -> None:
    routes = set(app_routes(app))
    missing = sorted(routes - ACCESS.keys())
    assert not missing, (
        "These routes are not in tests/test_access_control.py ACCESS; add each with who may "
        f"call it (public, user, contributor, researcher, moderator, admin): {missing}"
    )
    stale = sorted(ACCESS.keys() - routes)
    assert not stale, f"ACCESS names routes that no longer exist; remove them: {stale}"


def _is_gate(response_status: int, location: str) -> bool:
    """Whether the request was stopped for who is asking."""
    if response_status in (401, 403):
        return True
    return response_status in (302, 303, 307) and location.startswith(("/login", "/tos"))


def test_every_route_lets_in_exactly_the_roles_the_table_allows(
    app: FastAPI, client: TestClient, db: Session
) -> None:
    users: dict[str, User] = {
        name: make_user(db, role=role, tos=name != "newcomer")
        for name, role in ROLES.items()
        if role is not None
    }
    token = csrf_token(client)
    problems: list[str] = []
    for method, path in sorted(set(app_routes(app))):
        rule = ACCESS.get((method, path))
        if rule is None:
            continue  # reported by test_every_route_is_in_the_access_table
        url = concrete(path)
        if (method, path) in {("GET", "/static"), ("GET", "/static/vendor")}:
            url = f"{path}/no-such-file.txt"
        for role_name in ROLES:
            client.cookies.delete(SESSION_COOKIE)
            if role_name == "newcomer":
                # POST /tos and /api/v1/me/tos, which a newcomer may call, accept the Terms.
                users["newcomer"].tos_accepted_at = None
                db.flush()
            if role_name in users:
                # A fresh session per request: POST /logout ends the one it is sent with.
                client.cookies.set(
                    SESSION_COOKIE, create_user_session(db, users[role_name], "access-test")
                )
            response = client.request(
                method, url, headers={"X-CSRF-Token": token}, follow_redirects=False
            )
            stopped = _is_gate(response.status_code, response.headers.get("location", ""))
            allowed = role_name in ALLOWED_ROLES[rule]
            if response.status_code >= 500:
                problems.append(f"{method} {path} as {role_name}: {response.status_code} (a bug)")
            if allowed and stopped:
                problems.append(f"{method} {path} as {role_name}: {response.status_code}, want in")
            elif not allowed:
                wanted = _expected_refusal(path, role_name, rule)
                got = response.status_code
                if not stopped or got not in wanted:
                    problems.append(f"{method} {path} as {role_name}: {got}, want one of {wanted}")
    assert not problems, "Access control differs from the table:\n" + "\n".join(problems)


def _expected_refusal(path: str, role_name: str, rule: str) -> set[int]:
    is_api = path.startswith(MACHINE_PATHS)  # answered in JSON, whoever asks
    if role_name == "anonymous":
        # JSON callers are told to authenticate; browsers are sent to the login page.
        return {401} if is_api else {303}
    if role_name == "newcomer" and rule == CONTRIBUTOR:
        # tos_required: a 403 for JSON callers; browsers are sent to the Terms page.
        return {403} if is_api else {303}
    return {403}
