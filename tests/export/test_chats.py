"""chats.jsonl: shared chats only, as trees with score and report events, answers synthetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.export.run import run_export
from hedgerow.export.writers import CHATS_FILE
from hedgerow.models import Chat, ChatMessage, User
from tests.factories import make_user
from tests.growth.factories import override_settings


def _chat(db: Session, owner: User, prompt: str, *, shared: bool) -> Chat:
    chat = Chat(owner_id=owner.id, title=prompt, model_name="hedgerow-chat", allow_data_use=shared)
    db.add(chat)
    db.flush()
    question = ChatMessage(chat_id=chat.id, role="user", text=prompt)
    db.add(question)
    db.flush()
    for text, thumbs in (("First answer.", -1), ("Second answer.", 1)):
        db.add(
            ChatMessage(
                chat_id=chat.id,
                parent_id=question.id,
                role="assistant",
                text=text,
                status="complete",
                model_name="hedgerow-chat",
                model_version="hedgerow-chat@7",
                sampling={"temperature": 0.7, "top_p": 0.95, "max_tokens": 64},
                thumbs=thumbs,
            )
        )
    db.add(
        ChatMessage(
            chat_id=chat.id, parent_id=question.id, role="assistant", status="failed", error="down"
        )
    )
    db.flush()
    return chat


def test_only_shared_chats_are_released_with_their_feedback(
    committing_sessionmaker: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    override_settings(monkeypatch, releases_dir=tmp_path)
    with committing_sessionmaker.begin() as db:
        owner = make_user(db)
        _chat(db, owner, "Shared question", shared=True)
        _chat(db, owner, "Private question", shared=False)
        deleted = _chat(db, owner, "Deleted question", shared=True)
        deleted.deleted_at = deleted.created_at
        reported = db.query(ChatMessage).filter_by(text="First answer.").first()
        assert reported is not None
        reported.report_reason = "wrong"
        reported.reported_at = reported.created_at
        owner_id = owner.id
    outcome = run_export(committing_sessionmaker)
    lines = (outcome.directory / CHATS_FILE).read_text().splitlines()
    chats = [json.loads(line) for line in lines]
    assert [c["messages"][0]["text"] for c in chats] == ["Shared question"]
    chat = chats[0]
    # A pseudonym, not the account id.
    assert isinstance(chat["user"], str) and len(chat["user"]) > 8
    assert chat["user"] != str(owner_id)
    prompt, first, second = chat["messages"]  # the failed answer is left out
    assert prompt["synthetic"] is False and prompt["parent_id"] is None
    assert first["parent_id"] == prompt["message_id"] == second["parent_id"]
    assert first["synthetic"] is True and first["model_version"] == "hedgerow-chat@7"
    assert first["events"] == [
        {"type": "score", "value": -1},
        {"type": "report", "reason": "wrong"},
    ]
    assert second["events"] == [{"type": "score", "value": 1}]
    manifest = json.loads((outcome.directory / "manifest.json").read_text())
    assert CHATS_FILE in {f["name"] for f in manifest["files"]}
