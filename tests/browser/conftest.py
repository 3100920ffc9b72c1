"""Browser tests: a live uvicorn server on 127.0.0.1 against its own migrated database,
driven by Debian's Chromium through Playwright.

Data the scenario needs from other volunteers is made through growth.service in the test
process, with real commits, on the same database; the server and the test process get the
same small tree parameters (through the environment and the settings object).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from tests.live_server import live_uvicorn
from tests.ops.databases import create_empty_database, drop_database

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Small trees so that one scenario walks a tree from prompt to ready_for_export.
TREE_SETTINGS: dict[str, Any] = {
    "tree_goal_size": 4,
    "tree_max_children": 2,
    "tree_max_depth": 3,
    "growth_policy": "fixed",
    "reviews_per_message": 1,
    "rankings_per_sibling_set": 1,
}


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if _chromium() is not None:
        return
    # On CI .ci/run installs Chromium, so its absence there is a failure, not a skip.
    if os.environ.get("CI"):
        raise pytest.UsageError("Chromium is missing on CI; the browser tests must run there.")
    skip = pytest.mark.skip(reason="no chromium on this machine")
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_database_url() -> Iterator[str]:
    from hedgerow import migrate

    url = create_empty_database("browser")
    migrate.upgrade(url)
    yield url
    drop_database("browser")


@pytest.fixture(scope="session")
def browser_engine(browser_database_url: str) -> Iterator[Engine]:
    from hedgerow.db import make_engine

    engine = make_engine(browser_database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def live_server(browser_database_url: str) -> Iterator[str]:
    env = {
        **os.environ,
        "DATABASE_URL": browser_database_url,
        "HEDGEROW_ENVIRONMENT": "test",
        **{f"HEDGEROW_{name.upper()}": str(value) for name, value in TREE_SETTINGS.items()},
    }
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"browser-server-{os.environ.get('PYTEST_XDIST_WORKER', 'gw0')}.log"
    with live_uvicorn(env, log_path) as base_url:
        yield base_url


@pytest.fixture
def tree_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.growth.factories import override_settings

    override_settings(monkeypatch, **TREE_SETTINGS)


@pytest.fixture
def live_db(browser_engine: Engine, tree_settings: None) -> Iterator[sessionmaker[Session]]:
    """Committing sessions on the live server's database; every table emptied afterwards."""
    maker = sessionmaker(bind=browser_engine, expire_on_commit=False)
    yield maker
    with browser_engine.begin() as conn:
        tables = conn.scalars(
            text(
                "SELECT quote_ident(tablename) FROM pg_tables "
                "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        ).all()
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


# Per module, not per session: Playwright's sync API keeps an asyncio loop running while it
# is open, and later tests on the same worker that call asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# Reports each Content-Security-Policy violation to the test. Playwright adds it before the
# page's own scripts, outside the page's policy.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(
    `${event.effectiveDirective} refused ${event.blockedURI || "inline"} ` +
      `at ${event.sourceFile || document.location.href}:${event.lineNumber}`
  );
});
"""


@pytest.fixture
def csp_violations() -> list[str]:
    """The Content-Security-Policy violations seen on the pages `new_page` opened (any one
    fails the test at teardown)."""
    return []


def _is_csp_violation_message(text: str) -> bool:
    # Chromium's console wording for every directive: "Refused to load the script ...",
    # "Refused to apply inline style ...", "Refused to execute inline script ...".
    return text.startswith("Refused to") or "Content Security Policy" in text


@pytest.fixture
def new_page(
    browser: Any, live_server: str, csp_violations: list[str]
) -> Iterator[Callable[..., Any]]:
    """Opens pages in fresh browser contexts (separate cookie jars: separate people).

    A JavaScript error or a Content-Security-Policy violation on any of them fails the test:
    the violation is reported both by the console (even with JavaScript off) and by the
    securitypolicyviolation event."""
    contexts: list[Any] = []

    def open_page(
        session_token: str | None = None, *, javascript: bool = True, locale: str = "en-US"
    ) -> Any:
        # `locale`: the browser's language (its Accept-Language and navigator.language).
        context = browser.new_context(
            base_url=live_server,
            viewport={"width": 1280, "height": 900},
            java_script_enabled=javascript,
            locale=locale,
        )
        context.set_default_timeout(10_000)
        if session_token is not None:
            from hedgerow.accounts.security import SESSION_COOKIE

            context.add_cookies(
                [{"name": SESSION_COOKIE, "value": session_token, "url": live_server}]
            )
        context.expose_function("reportCspViolation", lambda text: csp_violations.append(text))
        context.add_init_script(REPORT_CSP_VIOLATIONS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                csp_violations.append(message.text)
                if _is_csp_violation_message(message.text)
                else None
            ),
        )
        return page

    errors: list[str] = []
    yield open_page
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not csp_violations, f"Content-Security-Policy violations: {csp_violations}"


def screenshot(page: Any, name: str) -> None:
    """The page at desktop and phone widths, saved under test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size(size)
