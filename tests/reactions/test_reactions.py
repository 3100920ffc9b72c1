"""Reactions on messages: one per person and emoji, toggled, in the tree viewer and beside
a task's conversation, with and without JavaScript, and through the JSON API."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hedgerow.growth import service as growth
from hedgerow.models import Message, Reaction, ReactionKind, Role, Tree, TreeState, User
from tests.factories import csrf_token, make_user
from tests.growth.factories import add_reply, make_tree
from tests.page_helpers import form_defaults, log_in_as

HTMX = {"HX-Request": "true"}


def a_reply(db: Session) -> tuple[Tree, Message]:
    tree, root = make_tree(db, make_user(db))
    return tree, add_reply(db, tree, root, make_user(db))


def toggle(client: TestClient, message_id: int, kind: str):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/messages/{message_id}/reactions",
        json={"kind": kind},
        headers={"X-CSRF-Token": csrf_token(client)},
    )


def counts(response) -> dict[str, tuple[int, bool]]:  # type: ignore[no-untyped-def]
    return {item["name"]: (item["count"], item["mine"]) for item in response.json()["reactions"]}


def reaction_rows(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Reaction)) or 0


def test_a_reaction_is_one_per_person_and_emoji_and_a_second_click_takes_it_back(
    client: TestClient, db: Session
) -> None:
    _, reply = a_reply(db)
    log_in_as(client, db, make_user(db))
    given = toggle(client, reply.id, "heart")
    assert given.status_code == 200, given.text
    assert given.json()["given"] is True and counts(given)["heart"] == (1, True)
    log_in_as(client, db, make_user(db))
    assert counts(toggle(client, reply.id, "heart"))["heart"] == (2, True)
    taken_back = toggle(client, reply.id, "heart")
    assert taken_back.json()["given"] is False and counts(taken_back)["heart"] == (1, False)
    shown = client.get(f"/api/v1/messages/{reply.id}/reactions").json()
    assert [item["name"] for item in shown["reactions"]] == [
        "+1",
        "-1",
        "heart",
        "laugh",
        "confused",
    ]
    assert reaction_rows(db) == 1


def test_a_thumbs_up_takes_back_the_same_persons_thumbs_down(
    client: TestClient, db: Session
) -> None:
    _, reply = a_reply(db)
    log_in_as(client, db, make_user(db))
    toggle(client, reply.id, "thumbs_down")
    switched = toggle(client, reply.id, "thumbs_up")
    assert (counts(switched)["+1"], counts(switched)["-1"]) == ((1, True), (0, False))
    kinds = db.scalars(select(Reaction.kind).where(Reaction.message_id == reply.id)).all()
    assert kinds == [ReactionKind.thumbs_up]


def test_reactions_refused_change_nothing(client: TestClient, db: Session) -> None:
    tree, reply = a_reply(db)
    author = db.get_one(User, reply.author_id)
    log_in_as(client, db, author)
    own = toggle(client, reply.id, "thumbs_up")
    assert (own.status_code, own.json()["error"]["code"]) == (409, "own_message")

    log_in_as(client, db, make_user(db))
    # Red flags come from reporting, not from the bar; unknown emojis are refused.
    for kind in ("red_flag", "rocket", ""):
        refused = toggle(client, reply.id, kind)
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, "invalid_reaction")
    assert toggle(client, 10**12, "thumbs_up").status_code == 404
    reply.deleted = True
    db.flush()
    assert toggle(client, reply.id, "thumbs_up").status_code == 404
    reply.deleted = False
    tree.state = TreeState.halted
    db.flush()
    assert toggle(client, reply.id, "thumbs_up").status_code == 404
    assert reaction_rows(db) == 0


def test_newcomers_and_disabled_users_cannot_react(client: TestClient, db: Session) -> None:
    _, reply = a_reply(db)
    log_in_as(client, db, make_user(db, tos=False))
    newcomer = toggle(client, reply.id, "thumbs_up")
    assert (newcomer.status_code, newcomer.json()["error"]["code"]) == (403, "tos_required")
    form = client.post(
        f"/messages/{reply.id}/reactions",
        data={"csrf_token": csrf_token(client), "kind": "thumbs_up"},
        follow_redirects=False,
    )
    # A page sends the newcomer to the Terms first.
    assert form.status_code == 303 and form.headers["location"].startswith("/tos")
    assert reaction_rows(db) == 0
    log_in_as(client, db, make_user(db, enabled=False))
    disabled = toggle(client, reply.id, "thumbs_up")
    assert (disabled.status_code, disabled.json()["error"]["code"]) == (403, "account_disabled")
    assert reaction_rows(db) == 0


def bar_buttons(html: str, message_id: int) -> dict[str, tuple[str, bool]]:
    """kind -> (the button's text, pressed) in a message's reaction bar."""
    bar = re.search(
        rf'<form class="reaction-bar" id="reactions-{message_id}".*?</form>', html, re.S
    )
    assert bar is not None, f"no reaction bar for message {message_id}"
    found = {}
    for kind, pressed, inner in re.findall(
        r'value="(\w+)"[^>]*aria-pressed="(\w+)"[^>]*>(.*?)</button>', bar.group(0), re.S
    ):
        text = re.sub(r'<span class="visually-hidden">.*?</span>', "", inner)
        text = re.sub(r'<span class="reaction-emoji"[^>]*>.*?</span>', "", text)
        found[kind] = (" ".join(re.sub(r"<[^>]+>", " ", text).split()), pressed == "true")
    return found


def test_the_tree_viewer_bar_toggles_without_javascript_and_reads_as_text(
    client: TestClient, db: Session
) -> None:
    tree, reply = a_reply(db)
    viewer = make_user(db)
    own = add_reply(db, tree, reply, viewer)
    log_in_as(client, db, viewer)
    page = client.get(f"/trees/{tree.id}").text
    assert bar_buttons(page, reply.id)["thumbs_up"] == ("+1 0", False)
    # No buttons on your own message (counts only, and none yet).
    assert f'id="reactions-{own.id}"' not in page

    fields = dict(form_defaults(page, f"reactions-{reply.id}"))
    fields["kind"] = "thumbs_up"  # the button pressed
    done = client.post(f"/messages/{reply.id}/reactions", data=fields, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/trees/{tree.id}?message={reply.id}#m{reply.id}"
    after = client.get(done.headers["location"]).text
    assert bar_buttons(after, reply.id)["thumbs_up"] == ("+1 1", True)

    swapped = client.post(
        f"/messages/{reply.id}/reactions", data={**fields, "kind": "laugh"}, headers=HTMX
    )
    assert swapped.status_code == 200 and "<html" not in swapped.text
    assert bar_buttons(swapped.text, reply.id)["laugh"] == ("laugh 1", True)
    assert bar_buttons(swapped.text, reply.id)["thumbs_up"] == ("+1 1", True)


def test_red_flags_are_not_on_the_bar(client: TestClient, db: Session) -> None:
    tree, reply = a_reply(db)
    growth.record_red_flag(db, make_user(db), reply.id)
    log_in_as(client, db, make_user(db))
    shown = client.get(f"/api/v1/messages/{reply.id}/reactions").json()
    assert all(item["count"] == 0 for item in shown["reactions"])
    assert "red_flag" not in client.get(f"/trees/{tree.id}").text


def test_a_task_shows_the_bar_beside_each_message_of_the_conversation(
    client: TestClient, db: Session
) -> None:
    volunteer = make_user(db)
    tree, prompt = make_tree(db, volunteer)
    answer = add_reply(db, tree, prompt, make_user(db))
    log_in_as(client, db, volunteer)
    started = client.post(
        "/tasks",
        data={"csrf_token": csrf_token(client), "kind": "reply_prompter"},
        follow_redirects=False,
    )
    task_url = started.headers["location"].split("?")[0]
    page = client.get(task_url).text
    assert bar_buttons(page, answer.id)["heart"] == ("heart 0", False)
    assert f'id="reactions-{prompt.id}"' not in page  # the volunteer's own prompt

    fields = {**dict(form_defaults(page, f"reactions-{answer.id}")), "kind": "heart"}
    done = client.post(f"/messages/{answer.id}/reactions", data=fields, follow_redirects=False)
    assert done.headers["location"] == task_url
    assert bar_buttons(client.get(task_url).text, answer.id)["heart"] == ("heart 1", True)


def test_a_moderator_sees_counts_but_no_buttons_in_a_halted_tree(
    client: TestClient, db: Session
) -> None:
    tree, reply = a_reply(db)
    log_in_as(client, db, make_user(db))
    toggle(client, reply.id, "confused")
    tree.state = TreeState.halted
    db.flush()
    log_in_as(client, db, make_user(db, role=Role.moderator))
    page = client.get(f"/trees/{tree.id}").text
    assert f'<form class="reaction-bar" id="reactions-{reply.id}"' not in page
    assert re.search(
        rf'<p class="reaction-bar" id="reactions-{reply.id}".*?confused.*?1', page, re.S
    )
