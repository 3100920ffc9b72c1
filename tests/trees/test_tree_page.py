"""The tree viewer: what volunteers and moderators see of a tree."""

from __future__ import annotations

import re
from urllib.parse import unquote

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from hedgerow.models import Message, Role, Tree, TreeState, User
from tests.factories import make_user
from tests.growth.factories import add_reply, make_tree
from tests.page_helpers import log_in_as


def reply(db: Session, tree: Tree, parent: Message, author: User, text: str) -> Message:
    message = add_reply(db, tree, parent, author)
    message.text = text
    db.flush()
    return message


def test_volunteer_sees_the_tree_without_deleted_messages(db: Session, client: TestClient) -> None:
    author = make_user(db)
    tree, root = make_tree(db, author)
    kept = reply(db, tree, root, author, "Kept **reply**")
    gone = reply(db, tree, root, author, "Deleted reply")
    below_gone = reply(db, tree, gone, author, "Under it")
    gone.deleted = True
    below_gone.deleted = True
    kept.consensus_rank = 0  # stored 0 = best, shown as rank 1
    db.flush()

    log_in_as(client, db, make_user(db))
    page = client.get(f"/trees/{tree.id}?message={kept.id}")

    assert page.status_code == 200
    assert f'id="m{kept.id}"' in page.text
    assert "Kept <strong>reply</strong>" in page.text
    assert "Deleted reply" not in page.text
    assert "Under it" not in page.text
    assert 'aria-current="true"' in page.text
    assert "rank 1" in page.text


def test_moderator_sees_deleted_messages_marked(db: Session, client: TestClient) -> None:
    author = make_user(db)
    tree, root = make_tree(db, author)
    gone = reply(db, tree, root, author, "Deleted reply")
    gone.deleted = True
    db.flush()

    log_in_as(client, db, make_user(db, role=Role.moderator))
    page = client.get(f"/trees/{tree.id}")

    assert "Deleted reply" in page.text
    assert "tree-node role-assistant deleted" in page.text


def test_script_in_a_message_is_shown_as_text(db: Session, client: TestClient) -> None:
    author = make_user(db)
    tree, root = make_tree(db, author)
    reply(db, tree, root, author, "<script>alert(1)</script>")
    log_in_as(client, db, author)

    page = client.get(f"/trees/{tree.id}")

    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_unknown_tree_is_404_and_anonymous_goes_to_login(db: Session, client: TestClient) -> None:
    assert client.get("/trees/1", follow_redirects=False).status_code == 303
    log_in_as(client, db, make_user(db))
    assert client.get("/trees/999999").status_code == 404


def test_the_tree_viewer_needs_the_terms(db: Session, client: TestClient) -> None:
    tree, _ = make_tree(db, make_user(db))
    log_in_as(client, db, make_user(db, tos=False))

    page = client.get(f"/trees/{tree.id}", follow_redirects=False)

    assert page.status_code == 303
    assert page.headers["location"].startswith("/tos")


def test_a_halted_tree_is_hidden_from_volunteers_but_not_from_moderators(
    db: Session, client: TestClient
) -> None:
    author = make_user(db)
    tree, root = make_tree(db, author)
    root.text = "A prompt in a halted tree"
    tree.state = TreeState.halted
    db.flush()

    for viewer in (make_user(db), author):
        log_in_as(client, db, viewer)
        hidden = client.get(f"/trees/{tree.id}")
        assert hidden.status_code == 404
        assert "A prompt in a halted tree" not in hidden.text
        assert hidden.text.count("does not exist") == client.get("/trees/999999").text.count(
            "does not exist"
        )

    log_in_as(client, db, make_user(db, role=Role.moderator))
    assert "A prompt in a halted tree" in client.get(f"/trees/{tree.id}").text


def test_every_message_but_your_own_has_one_report_action(db: Session, client: TestClient) -> None:
    author, viewer = make_user(db), make_user(db)
    tree, root = make_tree(db, author)
    theirs = reply(db, tree, root, author, "Their reply")
    mine = reply(db, tree, theirs, viewer, "My reply")
    log_in_as(client, db, viewer)

    page = client.get(f"/trees/{tree.id}").text

    links = dict(re.findall(r'href="/messages/(\d+)/report\?next=([^"]+)"', page))
    assert set(links) == {str(root.id), str(theirs.id)}
    assert str(mine.id) not in links
    back = unquote(links[str(theirs.id)])
    assert back == f"/trees/{tree.id}?message={theirs.id}#m{theirs.id}"
    # The link opens the report form at once; with htmx only the form comes, for the slot
    # under the message.
    report = client.get(f"/messages/{theirs.id}/report?next={links[str(theirs.id)]}")
    assert report.status_code == 200
    # The form itself, not a toggle that hides it.
    assert re.search(r'class="report-form"[^>]*>\s*<form', report.text), report.text
    assert f'href="{back}"' in report.text.replace("&amp;", "&")
    fragment = client.get(f"/messages/{theirs.id}/report", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and f'id="report-{theirs.id}"' in fragment.text
    assert f'id="report-slot-{theirs.id}"' in page
