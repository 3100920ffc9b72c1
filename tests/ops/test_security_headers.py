"""Every page carries the Content-Security-Policy and the other security headers, and no
template carries what that policy would refuse."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from hedgerow.accounts.security import SESSION_COOKIE, create_user_session
from hedgerow.models import Role
from hedgerow.ops.security_headers import CONTENT_SECURITY_POLICY
from hedgerow.templating import TEMPLATE_DIR
from tests.factories import csrf_token, make_user
from tests.test_access_control import app_routes, concrete

EXPECTED = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def _missing_headers(headers: dict[str, str] | object) -> list[str]:
    assert hasattr(headers, "get")
    return [name for name, value in EXPECTED.items() if headers.get(name) != value]


def test_the_policy_allows_nothing_inline_and_no_framing() -> None:
    directives = dict(
        (part.split(" ", 1)[0], part.split(" ", 1)[1])
        for part in CONTENT_SECURITY_POLICY.split("; ")
    )
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    # It would refuse the redirect of the OAuth sign-in form to the provider.
    assert "form-action" not in directives


def test_every_page_of_the_route_table_carries_the_security_headers(
    app: FastAPI, client: TestClient, db: Session
) -> None:
    admin = make_user(db, role=Role.admin)
    client.cookies.set(SESSION_COOKIE, create_user_session(db, admin, "headers-test"))
    pages: list[str] = []
    problems: list[str] = []
    for method, path in sorted(set(app_routes(app))):
        if method != "GET":
            continue
        url = concrete(path)
        if path in {"/static", "/static/vendor"}:
            url = (
                "/static/css/app.css"
                if path == "/static"
                else ("/static/vendor/htmx.org/dist/htmx.min.js")
            )
        response = client.get(url, follow_redirects=False)
        if response.headers.get("content-type", "").startswith("text/html"):
            pages.append(f"{path} ({response.status_code})")
        missing = _missing_headers(response.headers)
        if missing:
            problems.append(f"GET {url} ({response.status_code}) lacks {missing}")
    assert not problems, "\n".join(problems)
    # The admin reaches every page, so most are HTML; ids that exist nowhere give HTML 404s.
    assert len(pages) > 25, pages


def test_answers_refused_before_the_app_runs_carry_the_headers_too(client: TestClient) -> None:
    token = csrf_token(client)
    response = client.post(
        "/login",
        content=b"x" * (4 * 1024 * 1024),
        headers={"X-CSRF-Token": token, "content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert not _missing_headers(response.headers)


INLINE = [
    (re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.IGNORECASE), "an inline <script>"),
    (re.compile(r"<style[\s>]", re.IGNORECASE), "an inline <style>"),
    (re.compile(r"\sstyle\s*=", re.IGNORECASE), "a style= attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.IGNORECASE), "an on*= handler"),
    (re.compile(r"\shx-on[:-]", re.IGNORECASE), "an hx-on handler (eval)"),
    (re.compile(r"=\s*[\"']\s*(javascript|js):", re.IGNORECASE), "a javascript: or js: value"),
]


def test_no_template_carries_what_the_policy_refuses() -> None:
    problems = []
    for template in sorted(TEMPLATE_DIR.rglob("*.html")):
        source = template.read_text()
        for pattern, what in INLINE:
            for match in pattern.finditer(source):
                line = source.count("\n", 0, match.start()) + 1
                problems.append(f"{template.relative_to(TEMPLATE_DIR)}:{line}: {what}")
    assert not problems, "\n".join(problems)
