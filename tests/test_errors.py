"""Errors are plain values: raising one needs no web framework (the growth engine, jobs and
the CLI raise them); error_handlers.py is where they meet FastAPI."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

import hedgerow
from hedgerow.accounts.security import SESSION_COOKIE, create_user_session
from hedgerow.errors import NotFound
from hedgerow.i18n import translation
from hedgerow.i18n.translation import begin_request
from tests.factories import make_user
from tests.fresh_python import fresh_python_output
from tests.i18n.pseudo import pseudo, pseudo_translations


def test_the_error_values_import_no_web_framework() -> None:
    loaded = fresh_python_output(
        "import sys, hedgerow.errors; "
        "print(sorted(m for m in ('fastapi', 'starlette') if m in sys.modules))"
    )
    assert loaded == "[]"


# --- error pages know who is asking ---------------------------------------------------


@pytest.fixture
def live_app_client(committing_sessionmaker: sessionmaker[Session]) -> Iterator[TestClient]:
    """The app as served: its own sessions, with real commits (no per-test override)."""
    from hedgerow.app import create_app

    with TestClient(create_app()) as client:
        yield client


def _nav(page: str) -> str:
    return page.split('aria-label="Main"', 1)[1].split("</nav>", 1)[0]


@pytest.mark.parametrize(
    "url",
    [
        "/no/such/page",  # no route: no dependency ran
        "/trees/987654321",  # a route that resolved the user, then raised NotFound
    ],
)
def test_an_error_page_shows_the_logged_in_users_navigation(
    live_app_client: TestClient, committing_sessionmaker: sessionmaker[Session], url: str
) -> None:
    with committing_sessionmaker.begin() as db:
        user = make_user(db, username="wanderer")
        token = create_user_session(db, user, "pytest")
    live_app_client.cookies.set(SESSION_COOKIE, token)

    page = live_app_client.get(url)

    assert page.status_code == 404
    nav = _nav(page.text)
    assert 'href="/dashboard"' in nav and "Wanderer" in nav and "Log out" in nav
    assert 'href="/login"' not in nav and 'href="/signup"' not in nav


def test_an_error_page_for_a_stranger_or_a_stale_session_offers_to_log_in(
    live_app_client: TestClient,
) -> None:
    assert 'href="/login"' in _nav(live_app_client.get("/no/such/page").text)
    live_app_client.cookies.set(SESSION_COOKIE, "not-a-session")
    page = live_app_client.get("/no/such/page")
    assert page.status_code == 404 and 'href="/login"' in _nav(page.text)


def _not_found_arguments() -> list[tuple[str, str]]:
    """Every NotFound(_("...")) sentence in the code base, with where it is."""
    found: list[tuple[str, str]] = []
    package = Path(hedgerow.__file__).parent
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "NotFound"):
                continue
            argument = node.args[0] if node.args else None
            where = f"{path.relative_to(package)}:{node.lineno}"
            if argument is None:
                found.append((where, NotFound().message))
                continue
            # The sentence is translated where it is raised: _("a literal"), so that the
            # catalog has it and this test can read it.
            assert (
                isinstance(argument, ast.Call)
                and getattr(argument.func, "id", None) == "_"
                and len(argument.args) == 1
                and isinstance(argument.args[0], ast.Constant)
            ), f'{path}:{node.lineno}: NotFound takes _("a whole sentence")'
            found.append((where, argument.args[0].value))
    return found


def test_every_not_found_message_is_one_plain_sentence() -> None:
    arguments = _not_found_arguments()
    assert len(arguments) > 10
    problems = []
    for where, argument in arguments:
        message = NotFound(argument).message
        sentence = message[:-1]
        if not (message[0].isupper() and message.endswith(".") and "." not in sentence):
            problems.append(f"{where}: {message!r}")
    assert not problems, "\n".join(problems)


def test_not_found_takes_a_whole_sentence_in_the_current_language(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert NotFound().message == "That page does not exist."
    assert NotFound("No such dataset release.").message == "No such dataset release."
    assert NotFound("No such dataset release.").status == 404
    catalog = pseudo_translations({"That page does not exist."})
    monkeypatch.setattr(translation, "translations", lambda _code: catalog)
    begin_request("de")
    try:
        assert NotFound().message == pseudo("That page does not exist.")
    finally:
        begin_request("en")
