"""No email, username or internal user id leaves in a release; pseudonyms are per release."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select, update

from hedgerow.config import get_settings
from hedgerow.export.run import run_export
from hedgerow.export.shapes import MessageIds
from hedgerow.models import Label, Message, Ranking, User
from tests.export.conftest import FIRST_USER_ID, Corpus


def _release_text(directory: Path) -> str:
    """Every file of a release as text: gzip opened, parquet decoded to JSON."""
    parts = []
    for path in sorted(directory.iterdir()):
        if path.suffix == ".gz":
            parts.append(gzip.decompress(path.read_bytes()).decode())
        elif path.suffix == ".parquet":
            parts.append(json.dumps(pq.read_table(path).to_pylist()))
        else:
            parts.append(path.read_text(encoding="utf-8"))
    return "\n".join(parts)


def _user_ids_by_text(directory: Path) -> dict[str, str | None]:
    rows = pq.read_table(directory / "messages.parquet").to_pylist()
    return {row["text"]: row["user_id"] for row in rows}


def test_release_holds_no_email_username_or_raw_user_id(corpus: Corpus, releases_dir: Path) -> None:
    outcome = run_export(corpus.maker)
    everything = _release_text(outcome.directory)
    with corpus.maker() as db:
        users = db.scalars(select(User)).all()
    assert users and all(user.id >= FIRST_USER_ID for user in users)
    for user in users:
        assert user.email and user.email not in everything
        assert user.username not in everything
        assert str(user.id) not in everything
    assert "@example.org" not in everything


def test_deleted_users_contributions_carry_no_user_id(corpus: Corpus, releases_dir: Path) -> None:
    outcome = run_export(corpus.maker)
    user_ids = _user_ids_by_text(outcome.directory)
    with corpus.maker() as db:
        authored = db.scalars(
            select(Message.text).where(Message.author_id == corpus.deleted_user_id)
        )
        texts = [text for text in authored if text in user_ids]
        others = db.scalars(select(Message.text).where(Message.author_id != corpus.deleted_user_id))
        other_texts = [text for text in others if text in user_ids]
    assert texts, "the deleted user's replies are still exported"
    assert all(user_ids[text] is None for text in texts)
    assert all(user_ids[text] is not None for text in other_texts)


def test_pseudonyms_are_stable_within_a_release_and_differ_between_releases(
    corpus: Corpus, releases_dir: Path
) -> None:
    first = _user_ids_by_text(run_export(corpus.maker).directory)
    second = _user_ids_by_text(run_export(corpus.maker).directory)
    with corpus.maker() as db:
        rows = db.execute(select(Message.text, Message.author_id)).all()
    pseudonyms_of: dict[int, set[str | None]] = {}
    for text, author_id in rows:
        if text in first and author_id != corpus.deleted_user_id:
            pseudonyms_of.setdefault(author_id, set()).add(first[text])
            assert first[text] != second[text]
    assert all(len(pseudonyms) == 1 for pseudonyms in pseudonyms_of.values())
    # Different people, different pseudonyms.
    assert len({next(iter(p)) for p in pseudonyms_of.values()}) == len(pseudonyms_of)


@pytest.mark.parametrize("name", ["labels.jsonl", "rankings.jsonl"])
def test_raw_labels_and_rankings_are_pseudonymous(
    corpus: Corpus, releases_dir: Path, name: str
) -> None:
    outcome = run_export(corpus.maker)
    rows = [json.loads(line) for line in (outcome.directory / name).read_text().splitlines()]
    assert rows
    messages = _user_ids_by_text(outcome.directory)
    known_pseudonyms = {value for value in messages.values() if value}
    for row in rows:
        assert row["user_id"] is None or len(row["user_id"]) == 36
    # The same person has the same pseudonym in every file of a release.
    assert known_pseudonyms & {row["user_id"] for row in rows}


@pytest.mark.parametrize(
    ("name", "model", "message_key"),
    [("labels.jsonl", Label, "message_id"), ("rankings.jsonl", Ranking, "parent_id")],
)
def test_deleted_users_labels_and_rankings_carry_no_user_id(
    corpus: Corpus, releases_dir: Path, name: str, model: type[Label | Ranking], message_key: str
) -> None:
    public_id = MessageIds(get_settings().secret_key).public
    column = Label.message_id if model is Label else Ranking.parent_message_id
    exported = {
        json.loads(line)[message_key]
        for line in (run_export(corpus.maker).directory / name).read_text().splitlines()
    }
    with corpus.maker.begin() as db:
        # The deleted account made one of the exported reviews (or rankings).
        rows = db.execute(select(model.id, column, model.user_id).order_by(model.id)).all()
        row_id, _, original_user = next(row for row in rows if public_id(row[1]) in exported)
        db.execute(update(model).where(model.id == row_id).values(user_id=corpus.deleted_user_id))
    try:
        outcome = run_export(corpus.maker)
        with corpus.maker() as db:
            by_deleted = db.scalars(
                select(column).where(model.user_id == corpus.deleted_user_id)
            ).all()
    finally:
        with corpus.maker.begin() as db:
            db.execute(update(model).where(model.id == row_id).values(user_id=original_user))
    lines = (outcome.directory / name).read_text().splitlines()
    anonymous = [row for row in map(json.loads, lines) if row["user_id"] is None]
    expected = [message_id for message_id in by_deleted if public_id(message_id) in exported]
    assert len(anonymous) == len(expected) >= 1
