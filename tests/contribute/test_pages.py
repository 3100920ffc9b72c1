"""Task pages: every kind through plain HTML forms, errors keep the input, htmx fragments."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.models import Label, Message, Ranking, Task, TaskState, Tree, TreeState, User
from tests.factories import csrf_token, make_user
from tests.growth.factories import (
    add_reply,
    count_rows,
    give_track_record,
    make_tree,
    override_settings,
    reload,
)
from tests.page_helpers import form_defaults, log_in_as

HTMX = {"HX-Request": "true"}


def post(client: TestClient, url: str, data: dict[str, str], **kwargs: object):  # type: ignore[no-untyped-def]
    return client.post(
        url, data={"csrf_token": csrf_token(client), **data}, follow_redirects=False, **kwargs
    )


def start(client: TestClient, kind: str) -> int:
    response = post(client, "/tasks", {"kind": kind})
    assert response.status_code == 303, response.text
    match = re.match(r"/tasks/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


@pytest.fixture
def volunteer(db: Session, client: TestClient) -> User:
    user = make_user(db)
    log_in_as(client, db, user)
    return user


def test_dashboard_counts_tasks_per_kind(db: Session, client: TestClient, volunteer: User) -> None:
    author = make_user(db)
    make_tree(db, author, state=TreeState.prompt_review)
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert 'data-count-for="review_prompt">1<' in page.text
    assert 'data-count-for="reply_assistant">0<' in page.text


def test_a_prompt_written_through_the_form_starts_a_tree(
    db: Session, client: TestClient, volunteer: User
) -> None:
    task_id = start(client, "write_prompt")
    page = client.get(f"/tasks/{task_id}")
    assert "Write a prompt" in page.text and 'name="category"' in page.text
    assert "/guidelines/write_prompt" in page.text

    text = "How do hedgehogs find enough food before they hibernate in autumn?"
    response = post(client, f"/tasks/{task_id}/submit", {"text": text, "category": "open_qa"})

    assert response.status_code == 303
    root = db.scalar(select(Message).where(Message.author_id == volunteer.id))
    assert root is not None and root.text == text and root.category == "open_qa"
    assert reload(db, db.get(Task, task_id)).state == TaskState.done


def test_an_error_keeps_the_text_and_changes_nothing(
    db: Session, client: TestClient, volunteer: User
) -> None:
    task_id = start(client, "write_prompt")
    text = "A prompt with a context passage that its category does not allow <b>here</b>"
    response = post(
        client, f"/tasks/{task_id}/submit", {"text": text, "category": "coding", "context": "x"}
    )
    assert response.status_code == 422
    assert 'data-code="context_not_allowed"' in response.text
    assert "that its category does not allow &lt;b&gt;here&lt;/b&gt;</textarea>" in response.text
    assert count_rows(db, Tree) == 0
    assert reload(db, db.get(Task, task_id)).state == TaskState.leased


def test_htmx_submit_swaps_the_next_task_in_place(
    db: Session, client: TestClient, volunteer: User
) -> None:
    author = make_user(db)
    make_tree(db, author, state=TreeState.prompt_review)
    task_id = start(client, "write_prompt")
    response = post(
        client,
        f"/tasks/{task_id}/submit",
        {"text": "What is the kindest way to help a hedgehog in my garden?", "next_kind": "any"},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="task-panel"')
    assert "<html" not in response.text
    assert re.match(r"/tasks/\d+", response.headers["HX-Push-Url"])
    assert "Thank you, that was saved" in response.text


def test_htmx_error_retargets_the_panel(db: Session, client: TestClient, volunteer: User) -> None:
    task_id = start(client, "write_prompt")
    response = post(client, f"/tasks/{task_id}/submit", {"text": "   "}, headers=HTMX)
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#task-panel"


def test_review_through_the_form_records_labels_with_the_guideline_version(
    db: Session, client: TestClient, volunteer: User
) -> None:
    author = make_user(db)
    make_tree(db, author, state=TreeState.prompt_review)
    task_id = start(client, "review_prompt")
    page = client.get(f"/tasks/{task_id}")
    assert 'name="label.spam"' in page.text and 'name="label.quality"' in page.text

    missing = post(client, f"/tasks/{task_id}/submit", {"mode": "full", "label.spam": "0"})
    assert missing.status_code == 422 and "Please answer" in missing.text
    assert 'value="0" checked' in missing.text  # what was chosen is still chosen

    response = post(
        client,
        f"/tasks/{task_id}/submit",
        {"mode": "full", "label.spam": "0", "label.quality": "3", "label.pii": "1"},
    )
    assert response.status_code == 303
    label = db.scalar(select(Label).where(Label.user_id == volunteer.id))
    assert label is not None
    assert label.values["quality"] == 0.75 and label.values["pii"] == 1.0
    from hedgerow.contribute.guidelines import get_guideline

    assert label.guideline_version == get_guideline("review").version


def test_quick_review_mode_asks_fewer_labels(
    db: Session, client: TestClient, volunteer: User
) -> None:
    make_tree(db, make_user(db), state=TreeState.prompt_review)
    response = post(client, "/tasks", {"kind": "review_prompt", "review_mode": "quick"})
    page = client.get(response.headers["location"])
    assert 'name="label.quality"' in page.text
    assert 'name="label.creativity"' not in page.text


def ranking_setup(db: Session, monkeypatch: pytest.MonkeyPatch) -> tuple[Tree, list[Message]]:
    override_settings(monkeypatch, growth_policy="fixed", rankings_per_sibling_set=1)
    author = make_user(db)
    tree, root = make_tree(db, author, state=TreeState.growing, rankings_per_sibling_set=1)
    replies = [add_reply(db, tree, root, make_user(db)) for _ in range(3)]
    tree.state = TreeState.ranking
    db.flush()
    from hedgerow.growth.flags import refresh_open_flags

    refresh_open_flags(root, tree)
    tree.open_ranking_sets = 1
    db.flush()
    return tree, replies


def test_ranking_through_position_fields(
    db: Session, client: TestClient, volunteer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree, replies = ranking_setup(db, monkeypatch)
    task_id = start(client, "rank_assistant_replies")
    page = client.get(f"/tasks/{task_id}")
    assert page.text.count('class="rank-item"') == 3

    a, b, c = (reply.id for reply in replies)
    same = post(
        client,
        f"/tasks/{task_id}/submit",
        {f"position.{a}": "1", f"position.{b}": "1", f"position.{c}": "2"},
    )
    assert same.status_code == 422 and 'data-code="invalid_ranking"' in same.text

    response = post(
        client,
        f"/tasks/{task_id}/submit",
        {
            f"position.{a}": "3",
            f"position.{b}": "1",
            f"position.{c}": "2",
            "grade.1": "better",
            "grade.2": "about_same",
        },
    )
    assert response.status_code in (303,), response.text
    ranking = db.scalar(select(Ranking).where(Ranking.user_id == volunteer.id))
    assert ranking is not None
    assert ranking.ordered_message_ids == [b, c, a]
    assert ranking.grades == ["better", "about_same"]


def test_ranking_submitted_untouched_without_javascript_keeps_the_shown_order(
    db: Session, client: TestClient, volunteer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each reply's position field starts at its own place in the list, so a volunteer
    without JavaScript who agrees with the order shown just submits."""
    _tree, replies = ranking_setup(db, monkeypatch)
    task_id = start(client, "rank_assistant_replies")
    page = client.get(f"/tasks/{task_id}")
    shown = [
        int(found)
        for found in re.findall(r'class="rank-item"[^>]*data-message-id="(\d+)"', page.text)
    ]
    assert sorted(shown) == sorted(reply.id for reply in replies)

    fields = form_defaults(page.text, "task-form")
    positions = {name: value for name, value in fields if name.startswith("position.")}
    assert positions == {f"position.{message_id}": str(n) for n, message_id in enumerate(shown, 1)}

    response = client.post(f"/tasks/{task_id}/submit", data=dict(fields), follow_redirects=False)
    assert response.status_code == 303, response.text
    ranking = db.scalar(select(Ranking).where(Ranking.user_id == volunteer.id))
    assert ranking is not None and ranking.ordered_message_ids == shown


def test_skip_with_a_reason(db: Session, client: TestClient, volunteer: User) -> None:
    make_tree(db, make_user(db), state=TreeState.prompt_review)
    task_id = start(client, "review_prompt")
    response = post(
        client, f"/tasks/{task_id}/skip", {"reason": "unclear", "next_kind": "review_prompt"}
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/dashboard")
    task = reload(db, db.get(Task, task_id))
    assert (task.state, task.skip_reason) == (TaskState.skipped, "unclear")


def test_a_saved_draft_is_shown_again(db: Session, client: TestClient, volunteer: User) -> None:
    task_id = start(client, "write_prompt")
    saved = client.post(
        f"/api/v1/tasks/{task_id}/draft",
        json={"draft": {"text": "Half a thought about <hedgehogs>", "category": "coding"}},
        headers={"X-CSRF-Token": csrf_token(client)},
    )
    assert saved.status_code == 200
    page = client.get(f"/tasks/{task_id}")
    assert "Half a thought about &lt;hedgehogs&gt;</textarea>" in page.text
    assert '<option value="coding" selected>' in page.text


def test_late_submission_after_lease_expiry_is_accepted(
    db: Session, client: TestClient, volunteer: User
) -> None:
    task_id = start(client, "write_prompt")
    task = db.get(Task, task_id)
    assert task is not None
    task.lease_expires_at = datetime.now(UTC) - timedelta(minutes=5)
    db.flush()
    page = client.get(f"/tasks/{task_id}")
    assert 'data-testid="lease-expired"' in page.text
    response = post(client, f"/tasks/{task_id}/submit", {"text": "Written slowly, but written."})
    assert response.status_code == 303
    assert db.scalar(select(Message.text).where(Message.author_id == volunteer.id)) == (
        "Written slowly, but written."
    )


def test_someone_elses_task_is_not_found(db: Session, client: TestClient, volunteer: User) -> None:
    other = make_user(db)
    task = Task(
        user_id=other.id,
        kind="write_prompt",
        language="en",
        lease_expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    db.add(task)
    db.flush()
    assert client.get(f"/tasks/{task.id}").status_code == 404
    assert post(client, f"/tasks/{task.id}/submit", {"text": "mine now?"}).status_code == 404


def test_language_warning_and_preview_fragments(
    db: Session, client: TestClient, volunteer: User
) -> None:
    german = "Der Igel schläft im Winter unter einem Laubhaufen und wacht im Frühling wieder auf."
    warning = post(
        client, "/tasks/language-check", {"text": german, "language": "en"}, headers=HTMX
    )
    assert 'data-detected="de"' in warning.text and "Deutsch" in warning.text
    fine = post(client, "/tasks/language-check", {"text": german, "language": "de"}, headers=HTMX)
    assert 'data-detected=""' in fine.text

    preview = post(
        client,
        "/tasks/preview",
        {"text": "**bold** <script>x()</script> [a](javascript:x())"},
        headers=HTMX,
    )
    assert "<strong>bold</strong>" in preview.text
    assert "<script>" not in preview.text and 'href="javascript' not in preview.text


def test_pages_need_the_terms(db: Session, client: TestClient) -> None:
    log_in_as(client, db, make_user(db, tos=False))
    response = client.get("/dashboard", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/tos")


def test_dashboard_links_the_task_in_progress(
    db: Session, client: TestClient, volunteer: User
) -> None:
    task_id = start(client, "write_prompt")
    page = client.get("/dashboard")
    assert f'href="/tasks/{task_id}"' in page.text and 'data-testid="current-task"' in page.text


def test_report_a_reply_from_inside_a_ranking(
    db: Session, client: TestClient, volunteer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree, replies = ranking_setup(db, monkeypatch)
    # A volunteer with a track record: the ranking task showed them the reply, so the
    # flag counts toward deleting it.
    give_track_record(db, volunteer)
    task_id = start(client, "rank_assistant_replies")
    response = post(client, f"/tasks/{task_id}/report/{replies[0].id}", {}, headers=HTMX)
    assert response.status_code == 200
    assert "reported to the moderators" in response.text
    assert reload(db, replies[0]).red_flag_count == 1
    # Only replies of this task can be reported through it.
    root_id = replies[0].parent_id
    assert post(client, f"/tasks/{task_id}/report/{root_id}", {}).status_code == 404


def test_an_oversized_form_is_refused_before_parsing(
    db: Session, client: TestClient, volunteer: User
) -> None:
    task_id = start(client, "write_prompt")
    response = post(client, f"/tasks/{task_id}/submit", {"text": "x" * 300_000})
    assert response.status_code == 413
    assert reload(db, db.get(Task, task_id)).state == TaskState.leased


def test_asking_for_another_kind_while_holding_a_task_says_so_and_offers_finish_or_skip(
    db: Session, client: TestClient, volunteer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    ranking_setup(db, monkeypatch)
    held_id = start(client, "rank_assistant_replies")

    # The dashboard's "Write a prompt" button, without JavaScript.
    response = post(client, "/tasks", {"kind": "write_prompt"})
    assert response.status_code == 303
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    notice = page.text.split('data-testid="task-in-progress"', 1)[1].split("<header", 1)[0]
    assert "You have a task in progress" in notice and "Rank assistant replies" in notice
    assert "Write a prompt" in notice
    # Finish it (the task is on the page, its form leads on to the kind asked for) ...
    assert f'action="/tasks/{held_id}/submit"' in page.text
    assert 'name="next_kind" value="write_prompt"' in page.text
    # ... or skip it and get the kind asked for.
    assert f'action="/tasks/{held_id}/skip"' in notice
    skipped = post(client, f"/tasks/{held_id}/skip", {"next_kind": "write_prompt"})
    assert reload(db, db.get(Task, held_id)).state == TaskState.skipped
    new_page = client.get(skipped.headers["location"])
    assert "<h1>Write a prompt</h1>" in new_page.text

    # htmx gets the same notice in the panel.
    held_again = start(client, "write_prompt")
    swapped = post(client, "/tasks", {"kind": "review_prompt"}, headers=HTMX)
    assert 'data-testid="task-in-progress"' in swapped.text
    assert f'data-task-id="{held_again}"' in swapped.text


def test_asking_for_the_kind_already_held_just_resumes_it(
    db: Session, client: TestClient, volunteer: User
) -> None:
    held_id = start(client, "write_prompt")
    response = post(client, "/tasks", {"kind": "write_prompt"})
    page = client.get(response.headers["location"])
    assert f'data-task-id="{held_id}"' in page.text
    assert 'data-testid="task-in-progress"' not in page.text


def test_a_text_over_the_limit_is_kept_whole_with_the_counter_in_error(
    db: Session, client: TestClient, volunteer: User
) -> None:
    task_id = start(client, "write_prompt")
    page = client.get(f"/tasks/{task_id}")
    # No maxlength: a browser would silently cut a longer paste to the limit.
    text_area = re.search(r'<textarea id="f-text"[^>]*>', page.text)
    context_area = re.search(r'<textarea id="f-context"[^>]*>', page.text)
    assert text_area and context_area
    assert "maxlength" not in text_area.group(0) and "maxlength" not in context_area.group(0)
    assert 'data-max-length="10000"' in text_area.group(0)

    too_long = "Hedgehogs " * 1_005  # 10,050 characters
    response = post(client, f"/tasks/{task_id}/submit", {"text": too_long})
    assert response.status_code == 422
    assert 'data-code="text_too_long"' in response.text
    assert f">{too_long}</textarea>" in response.text
    counter = re.search(r'<p id="text-counter"[^>]*>([^<]*)</p>', response.text)
    assert counter and "field-error" in counter.group(0)
    assert "10050 / 10000 characters" in counter.group(1) and "50 over" in counter.group(1)
    assert reload(db, db.get(Task, task_id)).state == TaskState.leased


def report_links(html: str) -> dict[int, str]:
    """Message id -> where its report page returns to, for each "Report" link."""
    return {
        int(message_id): unquote(next_url)
        for message_id, next_url in re.findall(r'href="/messages/(\d+)/report\?next=([^"]+)"', html)
    }


def skip_to(client: TestClient, task_id: int, kind: str) -> int:
    """Skip a task; the next one is of `kind`."""
    response = post(client, f"/tasks/{task_id}/skip", {"next_kind": kind})
    match = re.match(r"/tasks/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


def test_every_task_kind_offers_report_on_each_message_of_the_conversation(
    db: Session, client: TestClient, volunteer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    author = make_user(db)
    _tree, review_root = make_tree(db, author, state=TreeState.prompt_review)
    growing, prompt = make_tree(db, author)
    answer = add_reply(db, growing, prompt, make_user(db))

    review_id = start(client, "review_prompt")
    assert report_links(client.get(f"/tasks/{review_id}").text) == {
        review_root.id: f"/tasks/{review_id}"
    }
    reply_id = skip_to(client, review_id, "reply_prompter")
    page = client.get(f"/tasks/{reply_id}").text
    assert report_links(page) == {prompt.id: f"/tasks/{reply_id}", answer.id: f"/tasks/{reply_id}"}
    _ranked, replies = ranking_setup(db, monkeypatch)
    rank_id = skip_to(client, reply_id, "rank_assistant_replies")
    page = client.get(f"/tasks/{rank_id}").text
    assert report_links(page) == {replies[0].parent_id: f"/tasks/{rank_id}"}
    # The replies being ranked keep their in-task report (a red flag, the ranking stays).
    assert page.count('class="link report-button"') == len(replies)


def test_no_report_action_on_your_own_message_in_a_task(
    db: Session, client: TestClient, volunteer: User
) -> None:
    tree, prompt = make_tree(db, volunteer)
    add_reply(db, tree, prompt, make_user(db))
    task_id = start(client, "reply_prompter")
    links = report_links(client.get(f"/tasks/{task_id}").text)
    assert prompt.id not in links and len(links) == 1
