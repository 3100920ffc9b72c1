"""The volunteer task API (/api/v1): auth, every error code, and a tree's whole life."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.accounts.security import SESSION_COOKIE, create_user_session
from hedgerow.growth import service
from hedgerow.models import Label, Message, Ranking, Task, TaskState, Tree, TreeState, User
from tests.factories import api_headers, csrf_token, make_api_key, make_user
from tests.growth.factories import (
    count_rows,
    make_tree,
    make_trusted_viewer,
    override_settings,
    reload,
)

QUICK_LABELS = {"spam": 0, "lang_mismatch": 0, "quality": 0.75}


def headers_for(db: Session, user: User) -> dict[str, str]:
    return api_headers(make_api_key(db, user))


def volunteer(db: Session) -> tuple[User, dict[str, str]]:
    user = make_user(db)
    return user, headers_for(db, user)


def take(client: TestClient, headers: dict[str, str], kind: str = "any") -> dict:
    response = client.post("/api/v1/tasks", json={"kind": kind, "language": "en"}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def error_code(response) -> str:  # type: ignore[no-untyped-def]
    return response.json()["error"]["code"]


# --- auth ---------------------------------------------------------------------------


def test_the_task_api_needs_a_login_or_an_api_key(client: TestClient) -> None:
    response = client.get("/api/v1/tasks/available?language=en")
    assert (response.status_code, error_code(response)) == (401, "not_authenticated")
    response = client.post(
        "/api/v1/tasks", json={"kind": "any"}, headers={"Authorization": "Bearer hr_x_y"}
    )
    assert response.status_code == 401


def test_a_request_with_no_credentials_at_all_is_told_to_authenticate(
    client: TestClient, db: Session
) -> None:
    """No session cookie and no API key: nothing for a forged request to ride on, so the
    answer is 401 not_authenticated, not 403 csrf_failed (no CSRF token was sent)."""
    client.cookies.clear()
    for method, url in [
        ("POST", "/api/v1/tasks"),
        ("POST", "/api/v1/tasks/1/submit"),
        ("PATCH", "/api/v1/me"),
        ("DELETE", "/api/v1/me/api-keys/1"),
    ]:
        response = client.request(method, url, json={"kind": "any"})
        assert (response.status_code, error_code(response)) == (401, "not_authenticated"), url
    # A browser form with no session goes to the login page, not to "the form expired".
    form = client.post("/tasks", data={"kind": "any"}, follow_redirects=False)
    assert form.status_code == 303 and form.headers["location"].startswith("/login")
    assert count_rows(db, Task) == 0


def test_a_session_cookie_without_the_csrf_token_is_still_refused(
    client: TestClient, db: Session
) -> None:
    client.cookies.set(SESSION_COOKIE, "whatever-it-is")
    response = client.post("/api/v1/tasks", json={"kind": "any"})
    assert (response.status_code, error_code(response)) == (403, "csrf_failed")


def test_a_user_who_has_not_accepted_the_terms_cannot_contribute(
    client: TestClient, db: Session
) -> None:
    user = make_user(db, tos=False)
    response = client.post("/api/v1/tasks", json={"kind": "any"}, headers=headers_for(db, user))
    assert (response.status_code, error_code(response)) == (403, "tos_required")
    assert count_rows(db, Task) == 0


def test_a_browser_session_works_with_its_csrf_token(client: TestClient, db: Session) -> None:
    author = make_user(db)
    make_tree(db, author)
    user = make_user(db)
    client.cookies.set(SESSION_COOKIE, create_user_session(db, user, "test"))
    body = {"kind": "reply_assistant", "language": "en"}
    refused = client.post("/api/v1/tasks", json=body)
    assert (refused.status_code, error_code(refused)) == (403, "csrf_failed")
    response = client.post("/api/v1/tasks", json=body, headers={"X-CSRF-Token": csrf_token(client)})
    assert response.status_code == 200
    assert response.json()["kind"] == "reply_assistant"


# --- reading ------------------------------------------------------------------------


def test_labels_are_served_with_their_descriptions(client: TestClient, db: Session) -> None:
    _, headers = volunteer(db)
    body = client.get("/api/v1/labels", headers=headers).json()
    by_name = {label["name"]: label for label in body["labels"]}
    assert body["guideline_version"]
    assert by_name["fails_task"]["roles"] == ["assistant"]
    assert by_name["spam"]["in_quick_mode"] and by_name["spam"]["required"]
    assert by_name["quality"]["kind"] == "scale"
    assert set(by_name) >= {"lang_mismatch", "pii", "helpfulness", "violence", "humor"}


def test_available_counts_per_kind(client: TestClient, db: Session) -> None:
    make_tree(db, make_user(db), state=TreeState.prompt_review)
    _, headers = volunteer(db)
    body = client.get("/api/v1/tasks/available?language=en", headers=headers).json()
    assert body["language"] == "en"
    assert body["counts"]["review_prompt"] == 1
    assert body["counts"]["reply_assistant"] == 0


def test_a_review_task_carries_the_conversation_and_the_labels(
    client: TestClient, db: Session
) -> None:
    _tree, root = make_tree(db, make_user(db), state=TreeState.prompt_review)
    _, headers = volunteer(db)
    response = client.post(
        "/api/v1/tasks",
        json={"kind": "review_prompt", "language": "en", "review_mode": "quick"},
        headers=headers,
    )
    task = response.json()
    assert task["conversation"] == [
        {"id": root.id, "role": "prompter", "text": root.text, "depth": 0, "by_you": False}
    ]
    assert [label["name"] for label in task["labels"]] == ["spam", "lang_mismatch", "quality"]
    assert task["resumed"] is False and task["lease_expires_at"]


# --- errors, each changing nothing --------------------------------------------------


def test_no_task_available(client: TestClient, db: Session) -> None:
    _, headers = volunteer(db)
    response = client.post(
        "/api/v1/tasks", json={"kind": "reply_assistant", "language": "en"}, headers=headers
    )
    assert (response.status_code, error_code(response)) == (404, "no_task_available")
    assert count_rows(db, Task) == 0


@pytest.mark.parametrize(
    ("text", "status", "code"),
    [
        ("   \n\t ", 422, "empty_text"),
        ("x" * 10_001, 422, "text_too_long"),
        ("bell \x07 inside", 422, "invalid_text"),
        ("nul \x00 inside", 422, "invalid_text"),
    ],
)
def test_bad_reply_text_is_refused_and_changes_nothing(
    client: TestClient, db: Session, text: str, status: int, code: str
) -> None:
    _tree, root = make_tree(db, make_user(db))
    _, headers = volunteer(db)
    task = take(client, headers, "reply_assistant")
    messages = count_rows(db, Message)
    response = client.post(
        f"/api/v1/tasks/{task['id']}/submit", json={"text": text}, headers=headers
    )
    assert (response.status_code, error_code(response)) == (status, code)
    assert count_rows(db, Message) == messages
    assert reload(db, root).child_count == 0
    assert db.get(Task, task["id"]).state == TaskState.leased  # type: ignore[union-attr]


def test_text_is_nfc_normalised_and_newlines_and_tabs_are_kept(
    client: TestClient, db: Session
) -> None:
    make_tree(db, make_user(db))
    _, headers = volunteer(db)
    task = take(client, headers, "reply_assistant")
    decomposed = "Cafe\u0301 au lait:\n\tstrong"
    response = client.post(
        f"/api/v1/tasks/{task['id']}/submit", json={"text": decomposed}, headers=headers
    )
    message = db.get(Message, response.json()["message_id"])
    assert message is not None and message.text == "Caf\u00e9 au lait:\n\tstrong"


def test_duplicate_text_is_refused(client: TestClient, db: Session) -> None:
    _tree, root = make_tree(db, make_user(db))
    _, headers = volunteer(db)
    task = take(client, headers, "reply_assistant")
    messages = count_rows(db, Message)
    response = client.post(
        f"/api/v1/tasks/{task['id']}/submit", json={"text": root.text}, headers=headers
    )
    assert (response.status_code, error_code(response)) == (409, "duplicate_text")
    assert count_rows(db, Message) == messages


@pytest.mark.parametrize(
    "labels",
    [
        {"spam": 0, "quality": 0.5, "humor": 0.3},  # not a scale point
        {"spam": 0.5, "quality": 0.5},  # yes/no must be 0 or 1
        {"quality": 0.5},  # spam is required
        {"spam": 0, "quality": 0.5, "fails_task": 0},  # assistant-only label on a prompt
        {"spam": 0, "quality": 0.5, "made_up": 1},
    ],
)
def test_invalid_labels_are_refused(client: TestClient, db: Session, labels: dict) -> None:
    _tree, root = make_tree(db, make_user(db), state=TreeState.prompt_review)
    _, headers = volunteer(db)
    task = take(client, headers, "review_prompt")
    response = client.post(
        f"/api/v1/tasks/{task['id']}/submit", json={"labels": labels}, headers=headers
    )
    assert (response.status_code, error_code(response)) == (422, "invalid_labels")
    assert count_rows(db, Label) == 0
    assert reload(db, root).review_count == 0


def _ranking_tree(db: Session) -> tuple[Tree, Message, list[Message]]:
    from hedgerow.growth.tree_state import start_ranking
    from tests.growth.factories import add_reply

    tree, root = make_tree(db, make_user(db), goal_size=4)
    replies = [add_reply(db, tree, root, make_user(db)) for _ in range(3)]
    start_ranking(db, tree, now=tree.created_at)
    return tree, root, replies


@pytest.mark.parametrize(
    "body",
    [
        {"ranking": []},
        {"ranking": "first-two"},
        {"not_rankable": True, "ranking": "all"},
        {"ranking": "all", "grades": ["better"]},
        {"ranking": "all", "grades": ["better", "way_better"]},
        {"ranking": "duplicate"},
    ],
)
def test_invalid_rankings_are_refused(client: TestClient, db: Session, body: dict) -> None:
    _tree, root, replies = _ranking_tree(db)
    ids = [r.id for r in replies]
    orders = {"all": ids, "first-two": ids[:2], "duplicate": [ids[0], ids[0], ids[1]]}
    payload = dict(body)
    if isinstance(payload.get("ranking"), str):
        payload["ranking"] = orders[payload["ranking"]]
    _, headers = volunteer(db)
    task = take(client, headers, "rank_assistant_replies")
    response = client.post(f"/api/v1/tasks/{task['id']}/submit", json=payload, headers=headers)
    assert (response.status_code, error_code(response)) == (422, "invalid_ranking")
    assert count_rows(db, Ranking) == 0
    assert reload(db, root).ranking_count == 0


def test_someone_elses_task_does_not_leak(client: TestClient, db: Session) -> None:
    make_tree(db, make_user(db))
    _, owner_headers = volunteer(db)
    _, intruder_headers = volunteer(db)
    task = take(client, owner_headers, "reply_assistant")
    for path, body in (
        ("submit", {"text": "hijack"}),
        ("skip", {"reason": "x"}),
        ("draft", {"draft": {"text": "x"}}),
    ):
        response = client.post(
            f"/api/v1/tasks/{task['id']}/{path}", json=body, headers=intruder_headers
        )
        assert (response.status_code, error_code(response)) == (404, "not_your_task")
    missing = client.post("/api/v1/tasks/999999/submit", json={"text": "x"}, headers=owner_headers)
    assert (missing.status_code, error_code(missing)) == (404, "not_your_task")
    assert db.get(Task, task["id"]).state == TaskState.leased  # type: ignore[union-attr]


def test_a_skipped_task_cannot_be_submitted(client: TestClient, db: Session) -> None:
    _tree, root = make_tree(db, make_user(db))
    _, headers = volunteer(db)
    task = take(client, headers, "reply_assistant")
    skipped = client.post(
        f"/api/v1/tasks/{task['id']}/skip", json={"reason": "busy"}, headers=headers
    )
    assert skipped.json() == {"task_id": task["id"], "state": "skipped"}
    response = client.post(
        f"/api/v1/tasks/{task['id']}/submit", json={"text": "now"}, headers=headers
    )
    assert (response.status_code, error_code(response)) == (409, "task_skipped")
    assert reload(db, root).child_count == 0


def test_a_tree_halted_meanwhile_is_not_accepting(client: TestClient, db: Session) -> None:
    tree, _root = make_tree(db, make_user(db))
    _, headers = volunteer(db)
    task = take(client, headers, "reply_assistant")
    from hedgerow.growth.tree_state import halt_tree

    halt_tree(db, tree, reason="moderator", now=tree.created_at)
    messages = count_rows(db, Message)
    response = client.post(
        f"/api/v1/tasks/{task['id']}/submit", json={"text": "hello"}, headers=headers
    )
    assert (response.status_code, error_code(response)) == (409, "tree_not_accepting")
    assert response.json()["error"]["details"]["submission"] == {"text": "hello"}
    assert count_rows(db, Message) == messages


def test_late_submission_with_the_slot_taken_returns_the_text(
    client: TestClient, db: Session
) -> None:
    from datetime import UTC, datetime, timedelta

    _tree, _root = make_tree(db, make_user(db), max_children=1)
    _late_user, headers = volunteer(db)
    task = take(client, headers, "reply_assistant")
    service.expire_leases(db, datetime.now(UTC) + timedelta(hours=2))
    take(client, volunteer(db)[1], "reply_assistant")
    messages = count_rows(db, Message)
    response = client.post(
        f"/api/v1/tasks/{task['id']}/submit", json={"text": "keep me"}, headers=headers
    )
    assert (response.status_code, error_code(response)) == (409, "lease_expired_slot_taken")
    assert response.json()["error"]["details"]["text"] == "keep me"
    assert count_rows(db, Message) == messages


def test_oversized_bodies_are_refused(client: TestClient, db: Session) -> None:
    make_tree(db, make_user(db))
    _, headers = volunteer(db)
    task = take(client, headers, "reply_assistant")
    response = client.post(
        f"/api/v1/tasks/{task['id']}/submit", json={"text": "x" * 300_000}, headers=headers
    )
    assert (response.status_code, error_code(response)) == (413, "payload_too_large")
    assert count_rows(db, Message) == 1


def test_submitting_twice_through_the_api_is_idempotent(client: TestClient, db: Session) -> None:
    make_tree(db, make_user(db))
    _, headers = volunteer(db)
    task = take(client, headers, "reply_assistant")
    first = client.post(
        f"/api/v1/tasks/{task['id']}/submit", json={"text": "once"}, headers=headers
    )
    second = client.post(
        f"/api/v1/tasks/{task['id']}/submit", json={"text": "once"}, headers=headers
    )
    assert first.status_code == second.status_code == 200
    assert first.json()["message_id"] == second.json()["message_id"]
    assert (first.json()["replayed"], second.json()["replayed"]) == (False, True)
    assert count_rows(db, Message) == 2


def test_a_second_submission_with_other_content_is_refused_and_changes_nothing(
    client: TestClient, db: Session
) -> None:
    make_tree(db, make_user(db))
    _, headers = volunteer(db)
    task = take(client, headers, "reply_assistant")
    url = f"/api/v1/tasks/{task['id']}/submit"
    first = client.post(url, json={"text": "my first answer"}, headers=headers)
    assert first.status_code == 200
    other = client.post(url, json={"text": "a different answer"}, headers=headers)
    assert other.status_code == 409
    error = other.json()["error"]
    assert error["code"] == "replay_differs"
    assert error["details"]["submission"]["text"] == "a different answer"  # nothing is lost
    reply = db.get(Message, first.json()["message_id"])
    assert reply is not None and reply.text == "my first answer"
    assert count_rows(db, Message) == 2
    # The same content again, with a default spelled out, is still an idempotent replay.
    same = client.post(url, json={"text": "my first answer", "mode": "full"}, headers=headers)
    assert same.status_code == 200 and same.json()["replayed"] is True


def test_red_flag_endpoint(client: TestClient, db: Session) -> None:
    _tree, root = make_tree(db, make_user(db))
    trusted = make_trusted_viewer(db, root)
    response = client.post(f"/api/v1/messages/{root.id}/red-flag", headers=headers_for(db, trusted))
    assert response.json() == {
        "message_id": root.id,
        "red_flag_count": 1,
        "newly_flagged": True,
        "deleted": False,
        "counted": True,
    }
    # A newcomer's flag reaches the moderators as a report and does not count.
    _, headers = volunteer(db)
    response = client.post(f"/api/v1/messages/{root.id}/red-flag", headers=headers)
    assert response.json() == {
        "message_id": root.id,
        "red_flag_count": 1,
        "newly_flagged": True,
        "deleted": False,
        "counted": False,
    }
    missing = client.post("/api/v1/messages/999999/red-flag", headers=headers)
    assert missing.status_code == 404


# --- a whole tree -------------------------------------------------------------------


def test_a_tree_grows_ranks_and_becomes_ready_for_export_through_the_api(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(
        monkeypatch,
        tree_goal_size=4,
        tree_max_children=3,
        growth_policy="fixed",
        reviews_per_message=2,
        rankings_per_sibling_set=2,
        growing_trees_per_language=1,
    )
    _author, author_headers = volunteer(db)
    prompt = take(client, author_headers, "write_prompt")
    assert "summarization" in prompt["categories"]
    created = client.post(
        f"/api/v1/tasks/{prompt['id']}/submit",
        json={
            "text": "Summarise this in one line.",
            "category": "summarization",
            "context": "Hedgerows shelter birds, insects and small mammals.",
        },
        headers=author_headers,
    ).json()
    tree = db.get(Tree, created["tree_id"])
    assert tree is not None

    def do(kind: str, body_for) -> None:  # type: ignore[no-untyped-def]
        _, headers = volunteer(db)
        task = take(client, headers, kind)
        response = client.post(
            f"/api/v1/tasks/{task['id']}/submit", json=body_for(task), headers=headers
        )
        assert response.status_code == 200, response.text

    for _ in range(2):
        do("review_prompt", lambda task: {"labels": QUICK_LABELS, "mode": "quick"})
    # Accepted with a growing slot free: drawn in the same transaction.
    assert reload(db, tree).state == TreeState.growing

    for n in range(3):
        do("reply_assistant", lambda task, n=n: {"text": f"Answer number {n}"})
    # The goal (4 = the prompt and 3 replies) is reached in leases: no more reply work.
    _, spare = volunteer(db)
    assert (
        client.post(
            "/api/v1/tasks", json={"kind": "reply_assistant", "language": "en"}, headers=spare
        ).status_code
        == 404
    )
    for _ in range(6):
        do(
            "review_assistant_reply",
            lambda task: {
                "labels": {**QUICK_LABELS, "fails_task": 0, "helpfulness": 1},
                "mode": "full",
            },
        )
    reload(db, tree)
    assert (tree.state, tree.accepted_count, tree.open_ranking_sets) == (TreeState.ranking, 4, 1)

    for _ in range(2):
        do(
            "rank_assistant_replies",
            lambda task: {
                "ranking": sorted(reply["id"] for reply in task["replies"]),
                "grades": ["better", "slightly_better"],
            },
        )
    reload(db, tree)
    assert tree.state == TreeState.ready_for_export
    ranks = db.scalars(
        select(Message.consensus_rank)
        .where(Message.tree_id == tree.id, Message.depth == 1)
        .order_by(Message.id)
    ).all()
    assert ranks == [0, 1, 2]
