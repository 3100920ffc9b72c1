"""A release grown by the simulated crowd loads with Hugging Face `datasets` and rebuilds
exactly the trees in the database."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from hedgerow.export.run import run_export
from hedgerow.export.writers import DATA_FILES
from hedgerow.growth.labels import GUIDELINE_VERSION
from hedgerow.models import Message, Release, ReleaseState, ReviewState, Tree, TreeState
from tests.export.conftest import Corpus


def _exportable_messages(corpus: Corpus) -> list[Message]:
    """What the default filters should export: messages of ready trees that are neither
    deleted nor rejected, whose ancestors are all exported too."""
    with corpus.maker() as db:
        rows = db.scalars(
            select(Message)
            .join(Tree, Tree.id == Message.tree_id)
            .where(Tree.state == TreeState.ready_for_export)
            .order_by(Message.depth, Message.id)
        ).all()
    kept: dict[int, Message] = {}
    for message in rows:
        visible = not message.deleted and message.review_state != ReviewState.rejected
        if visible and (message.parent_id is None or message.parent_id in kept):
            kept[message.id] = message
    return list(kept.values())


@pytest.fixture(scope="module")
def release(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.MonkeyPatch.context() as monkeypatch:
        from tests.growth.factories import override_settings

        override_settings(monkeypatch, releases_dir=tmp_path_factory.mktemp("releases"))
        outcome = run_export(corpus.maker)
    return outcome.directory


def test_messages_parquet_rebuilds_the_database_trees(corpus: Corpus, release: Path) -> None:
    messages = datasets.load_dataset(
        "parquet", data_files=str(release / "messages.parquet"), split="train"
    )
    expected = _exportable_messages(corpus)
    assert len(messages) == len(expected) > 0

    # Rebuild the trees from the rows alone (texts are unique) and compare edge by edge.
    by_public_id = {row["message_id"]: row for row in messages}
    exported_edges = {
        (by_public_id[row["parent_id"]]["text"] if row["parent_id"] else None, row["text"])
        for row in messages
    }
    text_of = {message.id: message.text for message in expected}
    database_edges = {
        (text_of[message.parent_id] if message.parent_id else None, message.text)
        for message in expected
    }
    assert exported_edges == database_edges

    # Every row of a tree names the same tree (its prompt) and the same split.
    trees: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for row in messages:
        trees[row["message_tree_id"]].add((row["tree_state"], row["split"]))
        root = row
        while root["parent_id"]:
            root = by_public_id[root["parent_id"]]
        assert root["message_id"] == row["message_tree_id"]
    assert all(len(states) == 1 for states in trees.values())
    with corpus.maker() as db:
        ready = db.scalars(select(Tree).where(Tree.state == TreeState.ready_for_export)).all()
    assert len(trees) == len(ready)

    roles = {row["role"] for row in messages}
    assert roles == {"prompter", "assistant"}
    first = messages[0]
    assert set(first["labels"]) == {"name", "value", "count"}
    assert set(first["emojis"]) == {"name", "count"}
    assert all(row["review_result"] is True for row in messages)


def test_decided_messages_carry_the_confidence_of_their_review_in_both_files(
    corpus: Corpus, release: Path
) -> None:
    table = pq.read_table(release / "messages.parquet")
    names = table.schema.names
    assert names[names.index("review_result") + 1] == "review_confidence"
    assert table.schema.field("review_confidence").type == pa.float64()
    expected = {message.text: message.review_confidence for message in _exportable_messages(corpus)}
    # The simulated crowd's reviews decided every message of a ready tree.
    assert expected and all(confidence is not None for confidence in expected.values())

    rows = table.to_pylist()
    assert {row["text"]: row["review_confidence"] for row in rows} == expected
    # A probability (under the fixed policy, the threshold rule may decide against the odds).
    assert all(0.0 <= row["review_confidence"] <= 1.0 for row in rows)

    in_trees: dict[str, float | None] = {}

    def walk(node: dict[str, Any]) -> None:
        in_trees[node["text"]] = node["review_confidence"]
        for reply in node["replies"]:
            walk(reply)

    with gzip.open(release / "trees.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            walk(json.loads(line)["prompt"])
    assert in_trees == expected


# oasst1's messages, exactly as its parquet files type them (the `dataset_info` of
# OpenAssistant/oasst1; `sequence` of fields is a struct of lists in Arrow).
OASST1_DETOXIFY = pa.struct(
    [
        ("toxicity", pa.float64()),
        ("severe_toxicity", pa.float64()),
        ("obscene", pa.float64()),
        ("identity_attack", pa.float64()),
        ("insult", pa.float64()),
        ("threat", pa.float64()),
        ("sexual_explicit", pa.float64()),
    ]
)
OASST1_SCHEMA = pa.schema(
    [
        ("message_id", pa.string()),
        ("parent_id", pa.string()),
        ("user_id", pa.string()),
        ("created_date", pa.string()),
        ("text", pa.string()),
        ("role", pa.string()),
        ("lang", pa.string()),
        ("review_count", pa.int32()),
        ("review_result", pa.bool_()),
        ("deleted", pa.bool_()),
        ("rank", pa.int32()),
        ("synthetic", pa.bool_()),
        ("model_name", pa.string()),
        ("detoxify", OASST1_DETOXIFY),
        ("message_tree_id", pa.string()),
        ("tree_state", pa.string()),
        ("emojis", pa.struct([("name", pa.list_(pa.string())), ("count", pa.list_(pa.int32()))])),
        (
            "labels",
            pa.struct(
                [
                    ("name", pa.list_(pa.string())),
                    ("value", pa.list_(pa.float64())),
                    ("count", pa.list_(pa.int32())),
                ]
            ),
        ),
    ]
)


def _oasst1_row() -> dict[str, Any]:
    return {
        "message_id": "6ab24d72-0181-4594-a9cd-deaf170242fb",
        "parent_id": None,
        "user_id": "c3fe8c76-fc30-4fa7-b7f8-c492f5967d18",
        "created_date": "2023-02-05T14:23:50.983374+00:00",
        "text": "Can you write a short introduction about hedgerows?",
        "role": "prompter",
        "lang": "en",
        "review_count": 3,
        "review_result": True,
        "deleted": False,
        "rank": None,
        "synthetic": False,
        "model_name": None,
        "detoxify": dict.fromkeys(OASST1_DETOXIFY.names, 0.001),
        "message_tree_id": "6ab24d72-0181-4594-a9cd-deaf170242fb",
        "tree_state": "ready_for_export",
        "emojis": {"name": ["+1"], "count": [10]},
        "labels": {"name": ["spam"], "value": [0.0], "count": [3]},
    }


def test_messages_parquet_concatenates_with_oasst1_as_it_is(release: Path) -> None:
    table = pq.read_table(release / "messages.parquet")
    oasst1 = pa.Table.from_pylist([_oasst1_row()], schema=OASST1_SCHEMA)

    # Hedgerow's extra columns (review_confidence, category, context, split) are left out;
    # oasst1's are taken as they are: no cast, no promotion of types.
    ours = table.select(OASST1_SCHEMA.names)
    combined = pa.concat_tables([oasst1, ours])

    assert ours.schema.equals(OASST1_SCHEMA)
    assert combined.num_rows == table.num_rows + 1 > 1
    # No toxicity model ran: every row's detoxify is null, as oasst1's are where none did.
    assert ours.column("detoxify").null_count == table.num_rows
    # The tree nodes carry the field too, as oasst1's trees do.
    with gzip.open(release / "trees.jsonl.gz", "rt", encoding="utf-8") as handle:
        prompt = json.loads(handle.readline())["prompt"]
    assert "detoxify" in prompt and prompt["detoxify"] is None
    # An addition a loader may notice: the minor schema version says so.
    assert json.loads((release / "manifest.json").read_text())["schema_version"] == "1.2"
    card = (release / "README.md").read_text(encoding="utf-8")
    assert "Schema version 1.2" in card and "`detoxify` is null" in card


def test_tree_file_nests_replies_best_rank_first(corpus: Corpus, release: Path) -> None:
    with gzip.open(release / "trees.jsonl.gz", "rt", encoding="utf-8") as handle:
        trees = [json.loads(line) for line in handle]
    expected = _exportable_messages(corpus)

    def walk(node: dict[str, Any]) -> int:
        ranks = [reply["rank"] for reply in node["replies"]]
        ranked = [rank for rank in ranks if rank is not None]
        assert ranked == sorted(ranked)
        assert ranks[: len(ranked)] == ranked, "unranked replies come after ranked ones"
        for reply in node["replies"]:
            assert reply["parent_id"] == node["message_id"]
        return 1 + sum(walk(reply) for reply in node["replies"])

    assert sum(walk(tree["prompt"]) for tree in trees) == len(expected)
    for tree in trees:
        assert tree["message_tree_id"] == tree["prompt"]["message_id"]
        assert tree["tree_state"] == "ready_for_export"
        assert tree["prompt"]["role"] == "prompter"
        assert tree["prompt"]["category"] == "open_qa"


def test_sft_conversations_are_accepted_paths_ending_with_the_assistant(
    corpus: Corpus, release: Path
) -> None:
    sft = datasets.load_dataset("json", data_files=str(release / "sft.jsonl"), split="train")
    best = datasets.load_dataset("json", data_files=str(release / "sft_best.jsonl"), split="train")
    expected = _exportable_messages(corpus)
    parent_text = {
        message.text: next((m.text for m in expected if m.id == message.parent_id), None)
        for message in expected
    }
    has_child = {m.parent_id for m in expected}
    assistant_leaves = {m.text for m in expected if m.role == "assistant" and m.id not in has_child}
    assert len(sft) >= len(assistant_leaves) > 0
    endings = set()
    for row in [*sft, *best]:
        turns = row["messages"]
        assert [turn["role"] for turn in turns] == ["user", "assistant"] * (len(turns) // 2)
        assert parent_text[turns[0]["content"]] is None
        for earlier, later in itertools.pairwise(turns):
            assert parent_text[later["content"]] == earlier["content"]
        endings.add(turns[-1]["content"])
    assert assistant_leaves <= endings
    # One best path per tree that has an assistant reply.
    assert len(best) == len({row["message_tree_id"] for row in sft})


def test_preferences_pair_siblings_by_consensus_rank(corpus: Corpus, release: Path) -> None:
    lines = (release / "preferences.jsonl").read_text(encoding="utf-8").splitlines()
    pairs = [json.loads(line) for line in lines]
    assert pairs, "the simulated crowd ranks sibling replies"
    rank_of = {m.text: m.consensus_rank for m in _exportable_messages(corpus)}
    for pair in pairs:
        chosen, rejected = pair["chosen"][0]["content"], pair["rejected"][0]["content"]
        assert rank_of[chosen] < rank_of[rejected]
        assert pair["prompt"][-1]["role"] == "user"
        assert isinstance(pair["margin"], float)


def test_manifest_lists_every_file_with_its_sha256_and_row_count(
    corpus: Corpus, release: Path
) -> None:
    manifest = json.loads((release / "manifest.json").read_text())
    listed = {entry["name"]: entry for entry in manifest["files"]}
    assert set(listed) == {*DATA_FILES, "README.md"}
    for name, entry in listed.items():
        content = (release / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(content).hexdigest()
        assert entry["size"] == len(content)
    for name in ("sft.jsonl", "sft_best.jsonl", "preferences.jsonl", "labels.jsonl"):
        lines = (release / name).read_text(encoding="utf-8").count("\n")
        assert manifest["row_counts"].get(name, 0) == lines
    assert manifest["messages"] == len(_exportable_messages(corpus))
    assert manifest["filters"]["states"] == ["ready_for_export"]

    with corpus.maker() as db:
        row = db.scalars(select(Release).where(Release.name == release.name)).one()
    assert row.state == ReleaseState.published
    assert {entry["name"] for entry in row.files or []} == {*listed, "manifest.json"}
    assert row.messages_done == row.messages_total == manifest["messages"]


def test_dataset_card_reports_counts_license_and_process(release: Path) -> None:
    card = (release / "README.md").read_text(encoding="utf-8")
    manifest = json.loads((release / "manifest.json").read_text())
    assert card.startswith("---\nlicense: cc-by-4.0\n")
    assert "language:\n- en\n---" in card
    assert f"{manifest['trees']} trees, {manifest['messages']} messages" in card
    assert f"{manifest['contributors']} contributors" in card
    assert "| ready_for_export |" in card
    assert f"guideline\nversion {GUIDELINE_VERSION}" in card
    assert "Known limitations" in card
