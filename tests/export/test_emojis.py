"""Reactions given in the app are the `emojis` of a release, named and shaped as
Open-Assistant's oasst1/oasst2: {name: count} in the trees file, a struct of two lists in
messages.parquet. Counted by the database per batch, like labels."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.export.run import run_export
from hedgerow.growth import service as growth
from hedgerow.growth.tree_state import complete_tree
from hedgerow.models import ReactionKind, Role, User
from hedgerow.reactions import service as reactions
from tests.conftest import ALL_TABLES
from tests.factories import make_user
from tests.growth.factories import add_reply, make_tree


@pytest.fixture
def maker(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Committing sessions (the export reads in its own transactions); emptied after."""
    yield sessionmaker(bind=engine, expire_on_commit=False)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {ALL_TABLES} RESTART IDENTITY CASCADE"))


def _tree_with_reactions(maker: sessionmaker[Session]) -> tuple[str, str]:
    """A complete tree whose reply got two +1, a heart and a red flag (its prompt none);
    returns the texts of the prompt and the reply."""
    with maker.begin() as db:
        tree, prompt = make_tree(db, make_user(db))
        reply = add_reply(db, tree, prompt, make_user(db))
        complete_tree(db, tree, now=tree.created_at)
        people: list[User] = [make_user(db) for _ in range(3)]
        for person in people[:2]:
            reactions.toggle_reaction(db, person, reply.id, ReactionKind.thumbs_up)
        reactions.toggle_reaction(db, people[2], reply.id, ReactionKind.thumbs_down)
        reactions.toggle_reaction(db, people[2], reply.id, ReactionKind.heart)
        # Switched their mind: the thumbs down is gone, the thumbs up counts.
        reactions.toggle_reaction(db, people[2], reply.id, ReactionKind.thumbs_up)
        reactions.toggle_reaction(db, people[2], reply.id, ReactionKind.thumbs_up)
        # A red flag counts (and is a reaction) from a moderator or a trusted volunteer
        # who was shown the message; a moderator's here.
        growth.record_red_flag(db, make_user(db, role=Role.moderator), reply.id)
        return prompt.text, reply.text


def test_reactions_are_exported_as_open_assistant_emojis(
    maker: sessionmaker[Session], releases_dir: Path
) -> None:
    prompt_text, reply_text = _tree_with_reactions(maker)
    directory = run_export(maker).directory

    table = pq.read_table(directory / "messages.parquet")
    assert table.schema.field("emojis").type == pa.struct(
        [("name", pa.list_(pa.string())), ("count", pa.list_(pa.int32()))]
    )
    rows = {row["text"]: row["emojis"] for row in table.to_pylist()}
    reply = rows[reply_text]
    assert dict(zip(reply["name"], reply["count"], strict=True)) == {
        "+1": 2,
        "heart": 1,
        "red_flag": 1,
    }
    assert rows[prompt_text] == {"name": [], "count": []}

    with gzip.open(directory / "trees.jsonl.gz", "rt") as trees:
        (tree,) = [json.loads(line) for line in trees]
    prompt = tree["prompt"]
    assert prompt["emojis"] == {}
    assert prompt["replies"][0]["emojis"] == {"+1": 2, "heart": 1, "red_flag": 1}
