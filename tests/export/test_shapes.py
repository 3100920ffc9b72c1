"""The pure parts of the export: paths for SFT, preference pairs and their margins."""

from __future__ import annotations

from typing import Any

from hedgerow.export import shapes
from hedgerow.export.shapes import MessageIds, Node, Pseudonyms


def _node(
    id: int,
    parent: Node | None,
    role: str,
    *,
    rank: int | None = None,
    review_state: str = "accepted",
    deleted: bool = False,
    rankings: list[list[Any]] | None = None,
) -> Node:
    node = Node(
        id=id,
        parent_id=parent.id if parent else None,
        author_id=id,
        role=role,
        text=f"text {id}",
        language="en",
        depth=0 if parent is None else 1,
        category=None,
        context=None,
        review_state=review_state,
        review_count=1,
        rank=rank,
        synthetic=False,
        model_name=None,
        deleted=deleted,
        created_at="2026-01-02 03:04:05.12+00",
        labels=[],
        reactions={},
        rankings=rankings or [],
    )
    if parent is not None:
        parent.children.append(node)
        parent.children.sort(key=Node.sort_key)
    return node


def _texts(path: list[Node]) -> list[str]:
    return [node.text for node in path]


def test_sft_paths_end_at_assistant_leaves_and_skip_unusable_messages() -> None:
    prompt = _node(1, None, "prompter")
    best = _node(2, prompt, "assistant", rank=0)
    worse = _node(3, prompt, "assistant", rank=1)
    follow_up = _node(4, best, "prompter")  # unanswered: the path ends at `best`
    _node(5, worse, "prompter", review_state="rejected")
    deleted = _node(6, prompt, "assistant", deleted=True)
    _node(7, deleted, "prompter")

    paths = [_texts(path) for path in shapes.sft_paths(prompt)]
    assert sorted(paths) == [["text 1", "text 2"], ["text 1", "text 3"]]
    assert follow_up.text not in {text for path in paths for text in path}
    best_path = shapes.best_path(prompt)
    assert best_path is not None
    assert _texts(best_path) == ["text 1", "text 2"]


def test_sft_paths_continue_through_answered_follow_ups() -> None:
    prompt = _node(1, None, "prompter")
    reply = _node(2, prompt, "assistant")
    follow_up = _node(3, reply, "prompter")
    _node(4, follow_up, "assistant")
    assert [_texts(path) for path in shapes.sft_paths(prompt)] == [
        ["text 1", "text 2", "text 3", "text 4"]
    ]


def test_a_rejected_prompt_yields_no_training_rows() -> None:
    prompt = _node(1, None, "prompter", review_state="rejected")
    _node(2, prompt, "assistant", rank=0)
    _node(3, prompt, "assistant", rank=1)
    assert shapes.sft_paths(prompt) == []
    assert shapes.best_path(prompt) is None
    assert shapes.preference_pairs(prompt) == []


def test_preference_margin_sums_the_grades_between_the_pair() -> None:
    rankings = [
        # user, order, grades, not_rankable, before_edit, created_at
        [1, [2, 3, 4], ["much_better", "slightly_better"], False, False, ""],
        [2, [3, 2, 4], ["about_same", "better"], False, False, ""],
        [3, [4, 3, 2], None, True, False, ""],  # not rankable: ignored
        [4, [4, 3, 2], None, False, True, ""],  # before an edit: ignored
    ]
    prompt = _node(1, None, "prompter", rankings=rankings)
    first = _node(2, prompt, "assistant", rank=0)
    second = _node(3, prompt, "assistant", rank=1)
    third = _node(4, prompt, "assistant", rank=2)
    pairs = {
        (chosen.id, rejected.id): margin
        for _, chosen, rejected, margin in shapes.preference_pairs(prompt)
    }
    # 2 over 3: ranker 1 says much better (+3), ranker 2 puts 3 first, about the same (0)
    assert pairs[(first.id, second.id)] == 1.5
    # 2 over 4: ranker 1 much + slightly (4), ranker 2 better (2)
    assert pairs[(first.id, third.id)] == 3.0
    # 3 over 4: ranker 1 slightly (1), ranker 2 about the same + better (2)
    assert pairs[(second.id, third.id)] == 1.5
    assert len(pairs) == 3


def test_margin_without_rankings_is_the_consensus_rank_gap() -> None:
    prompt = _node(1, None, "prompter")
    first = _node(2, prompt, "assistant", rank=0)
    third = _node(3, prompt, "assistant", rank=2)
    assert shapes.graded_margin(prompt, first, third) == 2.0


def test_pseudonyms_are_keyed_per_secret_and_never_the_raw_id() -> None:
    one, other = Pseudonyms(b"a" * 32), Pseudonyms(b"b" * 32)
    assert one.user(42) == one.user(42)
    assert one.user(42) != other.user(42)
    assert one.user(42) != one.user(43)
    assert one.user(None) is None


def test_public_message_ids_are_stable_and_opaque() -> None:
    ids = MessageIds("installation secret")
    assert ids.public(7) == MessageIds("installation secret").public(7)
    assert ids.public(7) != MessageIds("another installation").public(7)
    assert len(ids.public(7)) == 36


def test_split_is_seeded_and_close_to_the_share() -> None:
    ids = MessageIds("s")
    splits = [shapes.split_of(ids.public(n), 42, 0.05) for n in range(4000)]
    assert splits == [shapes.split_of(ids.public(n), 42, 0.05) for n in range(4000)]
    share = splits.count("validation") / len(splits)
    assert 0.03 < share < 0.07
    assert splits != [shapes.split_of(ids.public(n), 43, 0.05) for n in range(4000)]
