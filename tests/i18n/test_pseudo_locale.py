"""Every page of the route table, rendered in a pseudo-locale for the roles that see it,
shows no text that did not come from the catalog (data marked `translate="no"` excepted):
a new English string that skips the catalog fails here.

Each page has a builder that makes what the page shows (a tree, a task, a chat...) and
returns its URL; a GET page missing from PAGES fails the suite, as in
tests/test_access_control.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from hedgerow.i18n import translation
from hedgerow.models import Role, User
from tests.i18n import account_pages
from tests.i18n.pseudo import pseudo_translations, untranslated_text
from tests.i18n.test_catalogs import source_messages as source_messages
from tests.page_helpers import log_in_as
from tests.test_access_control import app_routes


@dataclass
class World:
    """The people of the pages, and what builders made (ids by name), shared by builders."""

    db: Session
    client: TestClient
    users: dict[str, User]
    made: dict[str, int] = field(default_factory=dict)


Builder = Callable[[World], str]


def fixed(url: str) -> Builder:
    return lambda _world: url


# Route path -> (the least role that sees it, None for a visitor; how to reach it).
PAGES: dict[str, tuple[str | None, Builder]] = {
    # accounts and pages anyone sees
    "/": (None, fixed("/")),
    "/tos": (None, fixed("/tos")),
    "/signup": (None, fixed("/signup")),
    "/login": (None, fixed("/login")),
    "/settings": ("volunteer", account_pages.settings_page),
    "/forgot-password": (None, fixed("/forgot-password")),
    "/sign-in-link": (None, fixed("/sign-in-link")),
    "/reset-password": (None, account_pages.reset_password_page),
    "/sign-in": (None, account_pages.sign_in_link_page),
    # contributing
    "/dashboard": ("volunteer", fixed("/dashboard")),
    "/guidelines": (None, fixed("/guidelines")),
    "/me/contributions": ("volunteer", fixed("/me/contributions")),
    # stats
    "/leaderboard": ("volunteer", fixed("/leaderboard")),
    "/stats": ("volunteer", fixed("/stats")),
    # datasets, admin, training
    "/datasets": ("researcher", fixed("/datasets")),
    "/admin": ("moderator", fixed("/admin")),
    "/admin/users": ("admin", fixed("/admin/users")),
    "/admin/exports": ("admin", fixed("/admin/exports")),
    "/admin/training": ("admin", fixed("/admin/training")),
    "/admin/training/compare": ("admin", fixed("/admin/training/compare")),
    # moderation
    "/moderation": ("moderator", fixed("/moderation")),
    "/moderation/queue": ("moderator", fixed("/moderation/queue")),
    "/moderation/trollboard": ("moderator", fixed("/moderation/trollboard")),
    "/moderation/audit": ("moderator", fixed("/moderation/audit")),
    "/moderation/status": ("moderator", fixed("/moderation/status")),
    # chat and arena
    "/chat": ("volunteer", fixed("/chat")),
    "/arena": ("volunteer", fixed("/arena")),
    "/arena/leaderboard": (None, fixed("/arena/leaderboard")),
}

# GET routes that are not our pages, and why.
NOT_PAGES = {
    "/api/docs": "Swagger UI's own page, in English like the API reference it shows",
    "/docs/oauth2-redirect": "Swagger UI's helper",
    "/favicon.ico": "an icon",
    "/healthz": "for machines",
    "/readyz": "for machines",
    "/metrics": "for machines",
    "/static": "files",
    "/static/vendor": "files",
    "/auth/{name}/start": "a redirect to the sign-in provider",
    "/auth/{name}/callback": "a redirect back from the sign-in provider (its errors are "
    "the error page)",
    "/verify-email": "its link works once: tests/i18n/test_pseudo_accounts.py checks it, "
    "for a visitor and for a signed-in user",
    "/auth/complete": "needs the provider's sign-in cookie: tests/i18n/test_pseudo_accounts.py "
    "checks it",
    "/dev/mail": "the development mailbox, for developers only (404 outside development)",
    "/dev/mail/{name}": "the development mailbox, for developers only",
    "/dev/mail/{name}/html": "a mail's HTML body as it was sent, in its own language",
}


def html_page_routes(app: FastAPI) -> set[str]:
    return {
        path
        for method, path in app_routes(app)
        if method == "GET" and not path.startswith("/api/v1/") and path != "/api/openapi.json"
    }


def test_every_page_is_in_the_table(app: FastAPI) -> None:
    pages = html_page_routes(app)
    missing = sorted(pages - PAGES.keys() - NOT_PAGES.keys())
    assert not missing, f"add these pages to PAGES in {__file__}: {missing}"
    stale = sorted((PAGES.keys() | NOT_PAGES.keys()) - pages)
    assert not stale, f"PAGES names routes that no longer exist: {stale}"


ROLES: dict[str, Role] = {
    "volunteer": Role.volunteer,
    "researcher": Role.researcher,
    "moderator": Role.moderator,
    "admin": Role.admin,
}
# Who sees each page: its least role and the admin, whose navigation shows every link.
VIEWERS = {None: [None, "admin"], "volunteer": ["volunteer", "admin"]}


@pytest.fixture
def pseudo_locale(
    monkeypatch: pytest.MonkeyPatch,
    source_messages: set[str],
) -> None:
    plural_ids = _plural_message_ids()
    catalog = pseudo_translations({*source_messages, *plural_ids})
    monkeypatch.setattr(translation, "translations", lambda _code: catalog)


def _plural_message_ids() -> set[tuple[str, str]]:
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    from hedgerow.config import REPO_ROOT

    with (REPO_ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    return {
        (message_id[0], message_id[1])
        for _f, _l, message_id, _c, _x in extract_from_dir(
            str(REPO_ROOT), method_map, options_map, keywords=DEFAULT_KEYWORDS
        )
        if isinstance(message_id, tuple)
    }


@pytest.fixture
def world(db: Session, client: TestClient) -> Iterator[World]:
    from tests.factories import make_user

    users = {
        name: make_user(db, role=role, username=f"pseudo_{name}") for name, role in ROLES.items()
    }
    yield World(db=db, client=client, users=users)


@pytest.mark.parametrize("route", sorted(PAGES))
def test_every_page_speaks_only_from_the_catalog(
    route: str, world: World, pseudo_locale: None
) -> None:
    least_role, build = PAGES[route]
    url = build(world)
    for viewer in VIEWERS.get(least_role, [least_role, "admin"]):
        world.client.cookies.clear()
        if viewer is not None:
            log_in_as(world.client, world.db, world.users[viewer])
        response = world.client.get(url)
        assert response.status_code == 200, f"{url} as {viewer}: {response.status_code}"
        leftovers = untranslated_text(response.text)
        assert not leftovers, f"{url} as {viewer or 'a visitor'} shows untranslated: {leftovers}"


def test_an_error_page_speaks_only_from_the_catalog(world: World, pseudo_locale: None) -> None:
    response = world.client.get("/no-such-page")
    assert response.status_code == 404
    assert not untranslated_text(response.text)


def test_the_pseudo_locale_notices_english() -> None:
    """The check itself: English outside the markers is found, data marked as such is not."""
    html = (
        "<body><p>⟦Ŕéplý⟧</p><p>Reply</p><span translate='no'>alice</span>"
        "<time>3 Dec</time><p>42 %</p><button aria-label='Close'>&times;</button></body>"
    )
    assert untranslated_text(html) == ["Reply", "Close"]
