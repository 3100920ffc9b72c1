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
from hedgerow.models import Message, Role, Tree, User
from tests.i18n import account_pages, pages_b
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
    monkeypatch: pytest.MonkeyPatch
    made: dict[str, int] = field(default_factory=dict)


Builder = Callable[[World], str]


def fixed(url: str) -> Builder:
    return lambda _world: url


# --- builders of pages with path parameters -------------------------------------------


def _rich_tree(world: World) -> tuple[Tree, Message, list[Message]]:
    """A growing tree by someone else: a prompt, three ranked assistant replies (one with
    a prompter reply below it, one deleted for moderators to see), reactions on one."""
    from hedgerow.models import ReactionKind
    from hedgerow.reactions.service import toggle_reaction
    from tests.factories import make_user
    from tests.growth.factories import add_reply, make_tree

    db = world.db
    author = make_user(db)
    tree, root = make_tree(db, author, goal_size=12)
    tree.category = "open_qa"
    replies = [add_reply(db, tree, root, make_user(db)) for _ in range(3)]
    for rank, reply in enumerate(replies):
        reply.consensus_rank = rank
    add_reply(db, tree, replies[0], make_user(db))
    replies[2].deleted = True
    replies[1].edited = True
    db.flush()
    toggle_reaction(db, world.users["volunteer"], replies[0].id, ReactionKind.heart)
    db.flush()
    return tree, root, replies


def tree_page(world: World) -> str:
    tree, _root, replies = _rich_tree(world)
    return f"/trees/{tree.id}?message={replies[0].id}"


def guideline_page(_world: World) -> str:
    return "/guidelines/review"


def _start_task(world: World, kind: str) -> str:
    from tests.factories import csrf_token
    from tests.page_helpers import log_in_as

    client = world.client
    log_in_as(client, world.db, world.users["volunteer"])
    response = client.post(
        "/tasks",
        data={"csrf_token": csrf_token(client), "kind": kind},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/tasks/"), location
    return location


def write_prompt_task(world: World) -> str:
    return _start_task(world, "write_prompt")


def assistant_reply_task(world: World) -> str:
    from tests.factories import make_user
    from tests.growth.factories import make_tree

    make_tree(world.db, make_user(world.db))
    return _start_task(world, "reply_assistant")


def prompter_reply_task(world: World) -> str:
    from tests.factories import make_user
    from tests.growth.factories import add_reply, make_tree

    tree, root = make_tree(world.db, make_user(world.db))
    add_reply(world.db, tree, root, make_user(world.db))
    return _start_task(world, "reply_prompter")


def review_task(world: World) -> str:
    from hedgerow.models import ReviewState
    from tests.factories import make_user
    from tests.growth.factories import add_reply, make_tree

    tree, root = make_tree(world.db, make_user(world.db))
    add_reply(world.db, tree, root, make_user(world.db), review_state=ReviewState.pending)
    # The full mode: every label, flags and scales.
    return _start_task(world, "review_assistant_reply") + "?mode=full"


def ranking_task(world: World) -> str:
    from hedgerow.growth.flags import refresh_open_flags
    from hedgerow.models import TreeState
    from tests.factories import make_user
    from tests.growth.factories import add_reply, make_tree, override_settings

    db = world.db
    override_settings(world.monkeypatch, growth_policy="fixed", rankings_per_sibling_set=1)
    tree, root = make_tree(db, make_user(db), rankings_per_sibling_set=1)
    replies = [add_reply(db, tree, root, make_user(db)) for _ in range(3)]
    replies[0].text = "A long reply. " * 40  # longer than the preview: the full text folds
    tree.state = TreeState.ranking
    db.flush()
    refresh_open_flags(root, tree)
    tree.open_ranking_sets = 1
    db.flush()
    return _start_task(world, "rank_assistant_replies")


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
    "/guidelines/{name}": (None, guideline_page),
    # A task is seen only by the volunteer who holds it; one entry per kind of task page
    # ("#..." keys are extra cases of the same route).
    "/tasks/{task_id}": ("task holder", write_prompt_task),
    "/tasks/{task_id}#reply_assistant": ("task holder", assistant_reply_task),
    "/tasks/{task_id}#reply_prompter": ("task holder", prompter_reply_task),
    "/tasks/{task_id}#review": ("task holder", review_task),
    "/tasks/{task_id}#ranking": ("task holder", ranking_task),
    "/trees/{tree_id}": ("volunteer", tree_page),
    # stats
    "/leaderboard": ("volunteer", fixed("/leaderboard")),
    "/stats": ("volunteer", fixed("/stats")),
    # datasets, admin, training
    "/datasets": ("researcher", pages_b.releases_page("/datasets")),
    "/admin": ("moderator", pages_b.moderation_page("/admin")),
    "/admin/users": ("admin", pages_b.moderation_page("/admin/users")),
    "/admin/exports": ("admin", pages_b.releases_page("/admin/exports")),
    "/admin/training": ("admin", pages_b.releases_page("/admin/training")),
    "/admin/training/compare": ("admin", pages_b.training_compare),
    "/admin/training/versions/{version_id}": ("admin", pages_b.training_version),
    # moderation
    "/messages/{message_id}/report": ("volunteer", pages_b.report_message),
    "/moderation": ("moderator", pages_b.moderation_page("/moderation")),
    "/moderation/queue": ("moderator", pages_b.moderation_page("/moderation/queue")),
    "/moderation/trollboard": (
        "moderator",
        pages_b.moderation_page("/moderation/trollboard?window=all"),
    ),
    "/moderation/audit": ("moderator", pages_b.moderation_page("/moderation/audit")),
    "/moderation/status": ("moderator", pages_b.moderation_page("/moderation/status")),
    "/moderation/messages/{message_id}": ("moderator", pages_b.moderation_message),
    "/moderation/messages/{message_id}/delete": ("moderator", pages_b.moderation_delete),
    "/moderation/users/{user_id}": ("moderator", pages_b.moderation_user),
    # chat and arena
    "/chat": ("volunteer", pages_b.chats_page("/chat")),
    "/chat/{chat_id}": ("volunteer", pages_b.chat_page),
    "/arena": ("volunteer", fixed("/arena")),
    "/arena/{battle_id}": ("volunteer", pages_b.battle_page),
    "/arena/leaderboard": (None, pages_b.chats_page("/arena/leaderboard")),
}

# GET routes that are not our pages, and why.
NOT_PAGES = {
    "/api/docs": "Swagger UI in our frame: the API reference it shows is English, as the API is",
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
    # "/route#case": another case of the same route, built differently.
    listed = {key.split("#", 1)[0] for key in PAGES} | NOT_PAGES.keys()
    missing = sorted(pages - listed)
    assert not missing, f"add these pages to PAGES in {__file__}: {missing}"
    stale = sorted(listed - pages)
    assert not stale, f"PAGES names routes that no longer exist: {stale}"


ROLES: dict[str, Role] = {
    "volunteer": Role.volunteer,
    "researcher": Role.researcher,
    "moderator": Role.moderator,
    "admin": Role.admin,
}
# Who sees each page: every role that may (each role's navigation and controls differ). A
# task page only for the volunteer who holds it.
VIEWERS = {
    None: [None, "volunteer", "researcher", "moderator", "admin"],
    "volunteer": ["volunteer", "researcher", "moderator", "admin"],
    "researcher": ["researcher", "admin"],
    "moderator": ["moderator", "admin"],
    "admin": ["admin"],
    "task holder": ["volunteer"],
}
# Pages only their owner sees (a chat, an arena battle): the least role's viewer made them.
OWNERS_ONLY = {"/chat/{chat_id}", "/arena/{battle_id}"}


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
def world(db: Session, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    from tests.factories import make_user

    users = {
        name: make_user(db, role=role, username=f"pseudo_{name}") for name, role in ROLES.items()
    }
    yield World(db=db, client=client, users=users, monkeypatch=monkeypatch)


@pytest.mark.parametrize("route", sorted(PAGES))
def test_every_page_speaks_only_from_the_catalog(
    route: str, world: World, pseudo_locale: None
) -> None:
    least_role, build = PAGES[route]
    url = build(world)
    viewers = VIEWERS.get(least_role, [least_role, "admin"])
    for viewer in [least_role] if route in OWNERS_ONLY else viewers:
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
