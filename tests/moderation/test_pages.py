"""Moderation pages and JSON API: reporting with and without htmx, the queue's actions,
the boards and logs, user management."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hedgerow.growth import service as growth
from hedgerow.models import (
    AuditEvent,
    Message,
    Reaction,
    ReactionKind,
    Report,
    Role,
    TreeState,
    User,
    UserNote,
    VolunteerReliability,
)
from hedgerow.ops.job_health import record_job_run
from tests.factories import csrf_token, make_user
from tests.growth.factories import add_reply, make_tree, reload
from tests.moderation.helpers import form, json_headers, log_in_as
from tests.page_helpers import form_defaults

HTMX = {"HX-Request": "true"}
NASTY = "<script>alert('x')</script> you are all idiots"


def reported_reply(db: Session) -> tuple[Message, Message]:
    tree, root = make_tree(db, make_user(db))
    reply = add_reply(db, tree, root, make_user(db))
    reply.text = NASTY
    db.flush()
    return root, reply


def report_count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Report)) or 0


def test_report_through_the_json_api_once(client: TestClient, db: Session) -> None:
    _, reply = reported_reply(db)
    log_in_as(client, db, make_user(db))
    url = f"/api/v1/messages/{reply.id}/report"
    created = client.post(
        url, json={"reason": "offensive", "text": "insults"}, headers=json_headers(client)
    )
    assert created.status_code == 201, created.text
    assert created.json()["reason"] == "offensive"
    again = client.post(url, json={"reason": "spam"}, headers=json_headers(client))
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_reported")
    bad = client.post(
        f"/api/v1/messages/{reply.id}/report",
        json={"reason": "boring"},
        headers=json_headers(client),
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_request")
    assert report_count(db) == 1


def test_report_form_without_javascript_redirects_to_a_thank_you(
    client: TestClient, db: Session
) -> None:
    _, reply = reported_reply(db)
    log_in_as(client, db, make_user(db))
    page = client.get(f"/messages/{reply.id}/report?next=/trees/{reply.tree_id}")
    assert page.status_code == 200
    assert NASTY not in page.text and "&lt;script&gt;" in page.text
    response = client.post(
        f"/messages/{reply.id}/report",
        data=form(client, {"reason": "offensive", "text": "", "next": f"/trees/{reply.tree_id}"}),
        follow_redirects=False,
    )
    assert response.status_code == 303
    done = client.get(response.headers["location"])
    assert "Thank you" in done.text and f'href="/trees/{reply.tree_id}"' in done.text
    assert report_count(db) == 1


def test_report_form_with_htmx_swaps_in_its_answer(client: TestClient, db: Session) -> None:
    _, reply = reported_reply(db)
    log_in_as(client, db, make_user(db))
    url = f"/messages/{reply.id}/report"
    ok = client.post(url, data=form(client, {"reason": "spam"}), headers=HTMX)
    assert ok.status_code == 200 and "Thank you" in ok.text and "<html" not in ok.text
    again = client.post(url, data=form(client, {"reason": "spam"}), headers=HTMX)
    assert again.status_code == 409
    assert 'data-code="already_reported"' in again.text
    invalid = client.post(
        f"/messages/{reply.id}/report", data=form(client, {"reason": "nope"}), headers=HTMX
    )
    assert invalid.status_code == 422 and 'data-code="invalid_reason"' in invalid.text
    assert report_count(db) == 1


def test_the_report_page_says_why_it_has_no_form(client: TestClient, db: Session) -> None:
    _, reply = reported_reply(db)
    log_in_as(client, db, make_user(db))
    page = client.get(f"/messages/{reply.id}/report")
    assert 'name="reason"' in page.text
    client.post(f"/messages/{reply.id}/report", data=form(client, {"reason": "spam"}))

    again = client.get(f"/messages/{reply.id}/report")
    assert 'data-code="already_reported"' in again.text and 'name="reason"' not in again.text
    author = db.get_one(User, reply.author_id)
    log_in_as(client, db, author)
    own = client.get(f"/messages/{reply.id}/report")
    assert 'data-code="own_message"' in own.text and 'name="reason"' not in own.text


def test_a_moderator_deletes_from_the_queue_and_undeletes(client: TestClient, db: Session) -> None:
    root, reply = reported_reply(db)
    log_in_as(client, db, make_user(db)).post(
        f"/api/v1/messages/{reply.id}/report",
        json={"reason": "offensive"},
        headers=json_headers(client),
    )
    client.cookies.clear()
    moderator = make_user(db, role=Role.moderator, username="mod_alice")
    log_in_as(client, db, moderator)

    queue = client.get("/moderation/queue")
    assert queue.status_code == 200
    assert "&lt;script&gt;" in queue.text and NASTY not in queue.text
    assert root.text in queue.text  # the tree context

    deleted = client.post(
        f"/moderation/messages/{reply.id}/delete",
        data=form(
            client, {"reason": "insults", "next": "/moderation/queue", "expected_count": "1"}
        ),
        follow_redirects=False,
    )
    assert (deleted.status_code, deleted.headers["location"]) == (303, "/moderation/queue")
    assert reload(db, reply).deleted is True
    assert "No open reports" in client.get("/moderation/queue").text

    audit = client.get("/moderation/audit?action=message.delete_subtree")
    assert "mod_alice" in audit.text and f"message #{reply.id}" in audit.text

    undone = client.post(
        f"/moderation/messages/{reply.id}/undelete", data=form(client), follow_redirects=False
    )
    assert undone.status_code == 303
    assert reload(db, reply).deleted is False
    page = client.get(f"/moderation/messages/{reply.id}")
    assert "message.undelete_subtree" in page.text


def test_delete_with_replies_says_how_many_messages_go_and_needs_a_second_post(
    client: TestClient, db: Session
) -> None:
    """Without JavaScript: the button leads to a confirmation stating the count; only its
    own POST deletes. Afterwards the tree's summary counts what is left."""
    tree, root = make_tree(db, make_user(db))
    doomed = add_reply(db, tree, root, make_user(db))
    below = [add_reply(db, tree, doomed, make_user(db)) for _ in range(2)]
    kept = add_reply(db, tree, root, make_user(db))
    tree.state = TreeState.ready_for_export
    db.flush()
    log_in_as(client, db, make_user(db, role=Role.moderator))
    page_url = f"/moderation/messages/{doomed.id}"
    assert "5 messages" in client.get(page_url).text

    button = re.search(
        r'<form method="(\w+)" action="/moderation/messages/\d+/delete"', client.get(page_url).text
    )
    assert button is not None and button.group(1) == "get"
    confirm = client.get(f"{page_url}/delete", params={"reason": "spam", "next": page_url})
    assert confirm.status_code == 200
    assert "This deletes 3 messages" in confirm.text and "2 replies below it" in confirm.text
    # A POST that skips the confirmation (an old page) is only shown the confirmation.
    unconfirmed = client.post(
        f"{page_url}/delete", data=form(client, {"reason": "spam"}), follow_redirects=False
    )
    assert unconfirmed.status_code == 200 and "This deletes 3 messages" in unconfirmed.text
    assert not reload(db, doomed).deleted

    fields = dict(form_defaults(confirm.text, "confirm-delete"))
    assert (fields["expected_count"], fields["reason"], fields["next"]) == ("3", "spam", page_url)
    done = client.post(f"{page_url}/delete", data=fields, follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, page_url)
    assert all(reload(db, message).deleted for message in (doomed, *below))
    assert not reload(db, kept).deleted

    summary = client.get(page_url).text
    assert re.search(r"ready for export · 2 messages", summary), summary
    viewer = client.get(f"/trees/{tree.id}").text
    assert "2 messages (3 deleted)" in viewer and "ready for export" in viewer


def test_a_confirmation_for_a_subtree_that_grew_asks_again(client: TestClient, db: Session) -> None:
    tree, root = make_tree(db, make_user(db))
    doomed = add_reply(db, tree, root, make_user(db))
    log_in_as(client, db, make_user(db, role=Role.moderator))
    confirm = client.get(f"/moderation/messages/{doomed.id}/delete")
    assert re.search(r"This deletes 1 message\b(?!s)", confirm.text)
    add_reply(db, tree, doomed, make_user(db))  # a reply arrives meanwhile

    stale = client.post(
        f"/moderation/messages/{doomed.id}/delete",
        data=dict(form_defaults(confirm.text, "confirm-delete")),
    )
    assert stale.status_code == 409 and 'data-code="subtree_changed"' in stale.text
    assert "This deletes 2 messages" in stale.text
    assert not reload(db, doomed).deleted
    assert client.get(f"/moderation/messages/{root.id}/delete").status_code == 200
    gone = client.get(f"/moderation/messages/{root.id}/delete?next=//evil.example")
    assert 'href="//evil.example"' not in gone.text


def test_moderation_json_api_actions(client: TestClient, db: Session) -> None:
    root, reply = reported_reply(db)
    author = db.get_one(Message, reply.id).author_id
    log_in_as(client, db, make_user(db, role=Role.moderator))
    headers = json_headers(client)
    edit = client.post(
        f"/api/v1/moderation/messages/{reply.id}/edit",
        json={"text": "You make a fair point.", "reason": "insult removed"},
        headers=headers,
    )
    assert edit.status_code == 200 and edit.json()["text"] == "You make a fair point."
    halt = client.post(
        f"/api/v1/moderation/trees/{reply.tree_id}/halt", json={"reason": "raid"}, headers=headers
    )
    assert halt.json()["state"] == TreeState.halted
    resume = client.post(
        f"/api/v1/moderation/trees/{reply.tree_id}/resume", json={}, headers=headers
    )
    assert resume.json()["state"] == TreeState.growing
    disable = client.post(
        f"/api/v1/moderation/users/{author}/disable", json={"reason": "trolling"}, headers=headers
    )
    assert disable.json() == {"user_id": author, "enabled": False}
    no_reason = client.post(
        f"/api/v1/moderation/users/{author}/enable", json={"extra": 1}, headers=headers
    )
    assert no_reason.status_code == 422
    bulk = client.post(
        "/api/v1/moderation/bulk",
        json={"action": "delete", "message_ids": [reply.id, 10**12]},
        headers=headers,
    )
    assert bulk.json()["outcomes"] == {str(reply.id): "ok", str(10**12): "not_found"}
    events = client.get("/api/v1/moderation/audit", params={"target_type": "tree"}).json()
    assert [event["action"] for event in events] == ["tree.resume", "tree.halt"]
    assert root.id != reply.id


def test_the_boards_and_status_pages_render(client: TestClient, db: Session) -> None:
    reported_reply(db)
    record_job_run("growth.expire_leases", "SUCCESS")
    log_in_as(client, db, make_user(db, role=Role.moderator))
    status = client.get("/moderation/status")
    assert status.status_code == 200
    assert "growth.expire_leases" in status.text and "SUCCESS" in status.text
    assert "never" in status.text  # top_up_lotteries has not run in this test
    assert client.get("/moderation/trollboard?window=all").status_code == 200
    bad_window = client.get("/moderation/trollboard?window=forever")
    assert bad_window.status_code == 422
    home = client.get("/admin")
    assert home.status_code == 200 and "/moderation/queue" in home.text
    assert "/admin/users" not in home.text.split("<main", 1)[1]  # not an admin


def test_user_page_notes_disable_and_anonymise(client: TestClient, db: Session) -> None:
    person = make_user(db, username="troll_bob")
    admin = make_user(db, role=Role.admin)
    log_in_as(client, db, admin)
    assert "troll_bob" in client.get(f"/moderation/users/{person.id}").text
    note = client.post(
        f"/moderation/users/{person.id}/notes",
        data=form(client, {"text": "<b>watch</b>"}),
        follow_redirects=False,
    )
    assert note.status_code == 303
    page = client.get(f"/moderation/users/{person.id}")
    assert "&lt;b&gt;watch&lt;/b&gt;" in page.text and "Delete and anonymise" in page.text
    assert db.scalar(select(func.count()).select_from(UserNote)) == 1
    missing_reason = client.post(f"/moderation/users/{person.id}/disable", data=form(client))
    assert missing_reason.status_code == 422 and reload(db, person).enabled is True
    client.post(f"/admin/users/{person.id}/anonymise", data=form(client, {"reason": "request #4"}))
    assert reload(db, person).deleted_at is not None
    assert reload(db, person).username != "troll_bob"
    actions = db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["user.note", "user.anonymise"]


def test_bulk_form_and_edit_errors_in_the_browser_flow(client: TestClient, db: Session) -> None:
    _, reply = reported_reply(db)
    tree, root = make_tree(db, make_user(db))
    other = add_reply(db, tree, root, make_user(db))
    add_reply(db, tree, other, make_user(db))
    log_in_as(client, db, make_user(db, role=Role.moderator))
    selection = [str(reply.id), str(other.id)]
    confirm = client.post(
        "/moderation/bulk",
        data={**form(client, {"action": "delete", "reason": "raid"}), "message_ids": selection},
    )
    # A bulk delete says first how many messages go, replies included.
    assert confirm.status_code == 200 and "This deletes 3 messages" in confirm.text
    assert not reload(db, reply).deleted
    confirmed = {
        "csrf_token": csrf_token(client),
        "action": "delete",
        "reason": "raid",
        "expected_count": "3",
        "message_ids": selection,
    }
    response = client.post("/moderation/bulk", data=confirmed, follow_redirects=False)
    assert response.status_code == 303
    assert "bulk_done=2" in response.headers["location"]
    assert reload(db, reply).deleted and reload(db, other).deleted
    bad = client.post(
        "/moderation/bulk",
        data={**form(client, {"action": "delete"}), "message_ids": ["1; DROP"]},
        follow_redirects=False,
    )
    assert bad.status_code == 422

    live = add_reply(db, tree, root, make_user(db))
    empty = client.post(
        f"/moderation/messages/{live.id}/edit",
        data=form(client, {"text": "Better words.", "reason": ""}),
        headers=HTMX,
    )
    assert empty.status_code == 422 and 'data-code="reason_required"' in empty.text
    assert "Better words." in empty.text  # what the moderator typed is kept
    assert reload(db, live).edited is False


# --- track records: the user page and the trollboard ---------------------------------


def percent(estimate: float) -> str:
    return f"{estimate * 100:.0f}%"


def card(page: str, card_id: str) -> str:
    """The text of one estimate card on the user page."""
    return page.split(f'id="{card_id}"', 1)[1].split("</div>", 1)[0]


def test_the_user_page_shows_the_track_record_and_the_estimates(
    client: TestClient, db: Session
) -> None:
    veteran, newcomer = make_user(db, username="vic_veteran"), make_user(db)
    db.add(
        VolunteerReliability(
            user_id=veteran.id,
            reviews_settled=16,
            reviews_agreed=4,
            messages_decided=6,
            messages_accepted=6,
        )
    )
    db.flush()
    log_in_as(client, db, make_user(db, role=Role.moderator))

    page = client.get(f"/moderation/users/{veteran.id}")
    assert page.status_code == 200
    record = growth.volunteer_record(db, veteran.id)
    reviews = card(page.text, "review-reliability")
    assert percent(record.review_reliability) in reviews
    assert "4 of 16 reviews agreed with the decision" in reviews
    messages = card(page.text, "author-acceptance")
    assert percent(record.author_acceptance) in messages
    assert "6 of 6 messages accepted" in messages
    assert "starts at a prior" in page.text

    fresh = client.get(f"/moderation/users/{newcomer.id}").text
    prior = growth.volunteer_record(db, newcomer.id)
    reviews = card(fresh, "review-reliability")
    assert percent(prior.review_reliability) in reviews
    assert "No settled reviews yet: at the prior." in reviews
    messages = card(fresh, "author-acceptance")
    assert percent(prior.author_acceptance) in messages
    assert "No decided messages yet: at the prior." in messages


def flagged_users(db: Session) -> tuple[User, User]:
    """Two users on the trollboard: the higher score with a good review record, the lower
    score with a poor one."""
    troll, careless = make_user(db), make_user(db)
    tree, root = make_tree(db, make_user(db))
    for author, kind in ((troll, ReactionKind.red_flag), (careless, ReactionKind.thumbs_down)):
        reply = add_reply(db, tree, root, author)
        db.add(Reaction(message_id=reply.id, user_id=make_user(db).id, kind=kind))
    db.add_all(
        [
            VolunteerReliability(user_id=troll.id, reviews_settled=30, reviews_agreed=29),
            VolunteerReliability(user_id=careless.id, reviews_settled=12, reviews_agreed=3),
        ]
    )
    db.flush()
    return troll, careless


def board_order(page: str) -> list[int]:
    return [int(user_id) for user_id in re.findall(r'data-user-id="(\d+)"', page)]


def test_the_trollboard_sorts_by_reliability_and_keeps_the_window(
    client: TestClient, db: Session
) -> None:
    troll, careless = flagged_users(db)
    log_in_as(client, db, make_user(db, role=Role.moderator))

    default = client.get("/moderation/trollboard?window=all")
    assert default.status_code == 200
    assert board_order(default.text) == [troll.id, careless.id]
    by_score = client.get("/moderation/trollboard?window=all&sort=score")
    assert board_order(by_score.text) == [troll.id, careless.id]

    by_reliability = client.get("/moderation/trollboard?window=all&sort=reliability")
    assert by_reliability.status_code == 200
    assert board_order(by_reliability.text) == [careless.id, troll.id]
    careless_record = growth.volunteer_record(db, careless.id)
    assert f"{percent(careless_record.review_reliability)} <span" in by_reliability.text
    assert "(3 of 12)" in by_reliability.text
    # The header links sort without JavaScript and keep the window.
    links = re.findall(r'<th scope="col"[^>]*>\s*<a href="([^"]+)"', by_reliability.text)
    assert links == [
        "/moderation/trollboard?window=all&amp;sort=score",
        "/moderation/trollboard?window=all&amp;sort=reliability",
    ]
    assert 'aria-sort="ascending"' in by_reliability.text
    assert '<option value="reliability" selected>' in by_reliability.text

    # With htmx (the window and order selects) only the board comes back, in that order.
    fragment = client.get("/moderation/trollboard?window=all&sort=reliability", headers=HTMX)
    assert "<html" not in fragment.text
    assert board_order(fragment.text) == [careless.id, troll.id]


def test_an_unknown_trollboard_sort_is_refused_with_a_code(client: TestClient, db: Session) -> None:
    flagged_users(db)
    log_in_as(client, db, make_user(db, role=Role.moderator))
    bad = client.get("/moderation/trollboard?window=all&sort=username")
    assert bad.status_code == 422
    assert 'data-code="invalid_sort"' in bad.text
    assert 'id="board"' not in bad.text and "data-user-id" not in bad.text
    toast = client.get("/moderation/trollboard?window=all&sort=username", headers=HTMX)
    assert toast.status_code == 422 and 'data-code="invalid_sort"' in toast.text
    assert "data-user-id" not in toast.text


def test_volunteers_still_cannot_see_track_records(client: TestClient, db: Session) -> None:
    person = make_user(db)
    flagged_users(db)
    log_in_as(client, db, make_user(db))
    for url in (
        f"/moderation/users/{person.id}",
        "/moderation/trollboard?window=all&sort=reliability",
        "/moderation/trollboard?sort=username",
    ):
        assert client.get(url).status_code == 403, url
    client.cookies.clear()
    log_in_as(client, db, make_user(db, role=Role.moderator))
    assert client.get("/moderation/users/999999999").status_code == 404
