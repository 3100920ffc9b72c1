"""Accounts in a real browser against a live server of their own, with a real SMTP server
(the development mailbox) receiving the mail and a real OpenID Connect provider on
loopback: sign up with an email, confirm it, forget the password, reset it and log in;
sign in with the provider.

No Celery worker runs here: the test process delivers the queued mail by running the
``mail.send`` job's function (the worker is not what is tested), then follows the link
in the mail as it arrived."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from hedgerow.config import get_settings
from hedgerow.mail.mailbox import DevMailbox
from hedgerow.mail.service import deliver_queued
from tests.browser.conftest import screenshot
from tests.live_server import free_port, live_uvicorn
from tests.mail_server import Inbox
from tests.oidc_provider import LoopbackProvider
from tests.ops import databases
from tests.servers import redis_url_for

NEW_PASSWORD = "a fresh passphrase for tests"


@dataclass
class Site:
    base_url: str
    engine: Engine
    inbox: Inbox
    provider: LoopbackProvider

    def deliver_mail(self) -> None:
        settings = get_settings().model_copy(update={"smtp_url": self.inbox.mailbox.url})
        with Session(self.engine) as db, db.begin():
            deliver_queued(db, settings)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from hedgerow import migrate
    from hedgerow.db import make_engine

    database_url = databases.create_empty_database("browser_accounts")
    migrate.upgrade(database_url)
    folder = tmp_path_factory.mktemp("accounts-site")
    port = free_port()
    provider = LoopbackProvider()
    provider.start()
    engine = make_engine(database_url)
    try:
        with DevMailbox(folder / "mail") as mailbox:
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                # A Redis db of its own, away from the in-process tests' flushes.
                "REDIS_URL": redis_url_for(
                    (int(os.environ.get("HEDGEROW_TEST_REDIS_DB", "1")) + 9) % 16
                ),
                "HEDGEROW_ENVIRONMENT": "test",
                "HEDGEROW_BASE_URL": f"http://127.0.0.1:{port}",
                "HEDGEROW_SMTP_URL": mailbox.url,
                **{
                    f"HEDGEROW_{name.upper()}": value for name, value in provider.settings().items()
                },
            }
            with live_uvicorn(env, folder / "server.log", port=port) as base_url:
                yield Site(base_url, engine, Inbox(mailbox), provider)
    finally:
        engine.dispose()
        provider.stop()
        databases.drop_database("browser_accounts")


@pytest.fixture
def open_page(browser: Any, site: Site) -> Iterator[Any]:
    """Pages in fresh browser contexts on this module's server (the shared browser)."""
    contexts: list[Any] = []
    errors: list[str] = []

    def new_page() -> Any:
        context = browser.new_context(
            base_url=site.base_url, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield new_page
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_sign_up_with_email_verify_forget_the_password_reset_it_and_log_in(
    site: Site, open_page: Any
) -> None:
    from playwright.sync_api import expect

    page = open_page()
    page.goto("/signup")
    page.get_by_label("Username").fill("hazel")
    page.get_by_label("Email address (optional)").fill("hazel@example.org")
    page.get_by_label("Password").fill("the first password I chose")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/tos**")

    site.deliver_mail()
    page.goto(site.inbox.link("hazel@example.org", "/verify-email"))
    expect(page.get_by_role("heading", name="Email address confirmed")).to_be_visible()
    page.goto("/settings")
    expect(page.locator('[data-email-state="verified"]')).to_be_visible()

    # Another browser, where the password is forgotten.
    forgetful = open_page()
    forgetful.goto("/login")
    forgetful.get_by_role("link", name="Forgot your password?").click()
    forgetful.get_by_label("Username or email address").fill("hazel@example.org")
    forgetful.get_by_role("button", name="Email me a reset link").click()
    expect(forgetful.get_by_role("heading", name="Check your email")).to_be_visible()
    screenshot(forgetful, "accounts-mail-sent")

    site.deliver_mail()
    forgetful.goto(site.inbox.link("hazel@example.org", "/reset-password"))
    forgetful.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    forgetful.get_by_label("New password again").fill(NEW_PASSWORD)
    forgetful.get_by_role("button", name="Set the new password").click()
    forgetful.wait_for_url("**/login?reset=done")
    expect(forgetful.get_by_text("Your password was changed")).to_be_visible()
    forgetful.get_by_label("Username").fill("hazel")
    forgetful.get_by_label("Password").fill(NEW_PASSWORD)
    forgetful.get_by_role("button", name="Log in").click()
    forgetful.wait_for_url(lambda url: "/login" not in url)

    # The first browser's session ended with the reset.
    page.goto("/settings")
    page.wait_for_url("**/login**")


def test_sign_in_with_the_test_provider(site: Site, open_page: Any) -> None:
    from playwright.sync_api import expect

    site.provider.next_user = {
        "sub": "browser-subject",
        "email": "rowan@idp.example",
        "email_verified": True,
        "preferred_username": "rowan",
        "name": "Rowan",
    }
    page = open_page()
    page.goto("/login")
    page.get_by_role("link", name="Test Provider").click()
    page.wait_for_url("**/auth/complete")
    expect(page.get_by_label("Username")).to_have_value("rowan")
    page.get_by_label("I accept the Terms of Service").check()
    page.get_by_role("button", name="Create my account").click()
    page.wait_for_url(lambda url: "/auth/" not in url)
    page.goto("/settings")
    expect(page.locator('[data-identity="oidc"]')).to_contain_text("Test Provider")
    expect(page.locator('[data-email-state="verified"]')).to_be_visible()
    screenshot(page, "accounts-settings-provider")

    again = open_page()
    again.goto("/login")
    again.get_by_role("link", name="Test Provider").click()
    again.wait_for_url(lambda url: "/auth/" not in url and "/login" not in url)
    again.goto("/settings")
    expect(again.get_by_text("Signed in as")).to_contain_text("rowan")


def test_no_script_or_style_attributes_in_the_new_pages(site: Site, open_page: Any) -> None:
    """The coming Content-Security-Policy allows no inline scripts or styles."""
    page = open_page()
    for path in ("/login", "/signup", "/forgot-password", "/sign-in-link"):
        page.goto(path)
        html = page.content()
        assert "style=" not in html and " onclick=" not in html, path
        assert page.locator("script:not([src])").count() == 0, path
