"""One tree in memory, and the public shapes it is written in.

The export streams rows grouped by tree; each tree becomes `Node`s, and this module turns
them into the Open-Assistant message-tree node, the parquet row, SFT conversations and
preference pairs. Everything here is pure (no I/O), so it is tested on its own.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

# Reaction kinds as Open-Assistant names its emojis.
EMOJI_NAMES = {"thumbs_up": "+1", "thumbs_down": "-1", "red_flag": "red_flag"}
# How far apart adjacent replies are for each ranking grade (grades[i] compares ranked
# reply i with i+1).
GRADE_STEPS = {"much_better": 3, "better": 2, "slightly_better": 1, "about_same": 0}
# The values of MessageRole and ReviewState as plain strings: export worker processes do not
# import the models (SQLAlchemy costs each of them ~40 MB), and comparing with an enum
# member costs an attribute lookup, measurable at several comparisons per message.
# tests/export/test_shapes.py checks that they match the enums.
PROMPTER = "prompter"
ASSISTANT = "assistant"
ACCEPTED = "accepted"
PENDING = "pending"
CHAT_ROLES = {PROMPTER: "user", ASSISTANT: "assistant"}


class Pseudonyms:
    """User ids as HMAC-SHA256 under a secret made for one release and then forgotten,
    so nobody (us included) can link a pseudonym to an account or across releases."""

    # Bounded, so memory stays flat however many people contributed: past this many
    # people the cache starts over.
    CACHE_SIZE = 50_000

    def __init__(self, secret: bytes, anonymous: frozenset[int] = frozenset()) -> None:
        self._secret = secret
        # Deleted accounts: their contributions carry no user id at all.
        self._anonymous = anonymous
        self._cache: dict[int, str] = {}
        self._json_cache: dict[int | None, str] = {}

    def user_json(self, user_id: int | None) -> str:
        """The pseudonym as JSON (a string, or null), for lines joined from pieces."""
        found = self._json_cache.get(user_id)
        if found is None:
            if len(self._json_cache) >= self.CACHE_SIZE:
                self._json_cache.clear()
            found = self._json_cache[user_id] = orjson.dumps(self.user(user_id)).decode()
        return found

    def user(self, user_id: int | None) -> str | None:
        # None: a deleted account, anonymised rather than pseudonymised.
        if user_id is None or user_id in self._anonymous:
            return None
        cached = self._cache.get(user_id)
        if cached is not None:
            return cached
        digest = hmac.new(self._secret, b"user:%d" % user_id, hashlib.sha256).hexdigest()
        pseudonym = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        if len(self._cache) >= self.CACHE_SIZE:
            self._cache.clear()
        self._cache[user_id] = pseudonym
        return pseudonym


class MessageIds:
    """Public message ids: UUIDs keyed on the installation secret, stable from one release
    to the next (researchers diff releases) but not the internal row ids.

    Keyed BLAKE2b is a MAC like HMAC and several times faster, which matters at two ids per
    message; user pseudonyms, computed once per person, keep HMAC-SHA256.
    """

    def __init__(self, installation_secret: str) -> None:
        key = hashlib.sha256(b"hedgerow-export:" + installation_secret.encode()).digest()
        # Keyed BLAKE2b hashes the key as a first block: done once, and copied per id.
        self._keyed = hashlib.blake2b(key=key, digest_size=16)

    def public(self, message_id: int) -> str:
        hashed = self._keyed.copy()
        hashed.update(b"%d" % message_id)
        digest = hashed.hexdigest()
        return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:]}"


def iso_timestamp(text: str) -> str:
    """What `datetime.isoformat()` gives for a timestamptz that PostgreSQL printed as `text`
    (DateStyle ISO: "2026-11-29 17:55:46.5+00"), in the same session time zone, as psycopg
    would have loaded it: a "T" between date and time, microseconds as six digits (PostgreSQL
    drops trailing zeros), the offset as "+HH:MM"."""
    if text[-3] in "+-" and len(text) in (22, 29):
        # Whole seconds or six digits, and a whole-hour offset: nearly every time at nearly
        # every place.
        return f"{text[:10]}T{text[11:]}:00"
    return datetime.fromisoformat(text).isoformat()


@functools.lru_cache(maxsize=8)
def _seeded_hash(seed: int) -> Any:
    return hashlib.sha256(f"{seed}:".encode())


def split_of(public_tree_id: str, seed: int, validation_share: float) -> str:
    """train or validation, decided per tree by a seeded hash: stable and reproducible."""
    # sha256(f"{seed}:{id}"), from a copy of the hash of the seed's part: making a new
    # OpenSSL hash object looks its algorithm up each time, which cost more than hashing.
    hashed = _seeded_hash(seed).copy()
    hashed.update(public_tree_id.encode())
    digest = hashed.digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    return "validation" if draw < validation_share else "train"


@dataclass(slots=True)
class Node:
    id: int
    parent_id: int | None
    author_id: int | None
    role: str
    text: str
    language: str
    depth: int
    category: str | None
    context: str | None
    review_state: str
    review_count: int
    rank: int | None
    synthetic: bool
    model_name: str | None
    deleted: bool
    # As PostgreSQL prints it (see iso_timestamp).
    created_at: str
    # Per label, a row of the labels query: (message_id, label id, user_id, values as JSON
    # text, mode, guideline_version, before_edit, created_date as JSON).
    labels: list[Any]
    reactions: dict[str, int]
    # (user_id, ordered_message_ids, grades, not_rankable, before_edit, created_date)
    rankings: list[Any]
    # The posterior probability of the review decision (None while the message is pending).
    review_confidence: float | None = None
    public_id: str = ""
    children: list[Node] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: Any, labels: Any, reactions: Any, rankings: Any) -> Node:
        """From a row of the messages query (`queries.part_queries`) and the message's
        labels, reactions and rankings (empty when it has none), unpacked by position: a hot
        line of the export."""
        (
            id_, _tree_id, parent_id, author_id, role, text, language, depth, category, context,
            review_state, review_count, review_confidence, rank, synthetic, model_name, deleted,
            created_at, _tree_state,
        ) = row  # fmt: skip
        return cls(
            id_, parent_id, author_id, role, text, language, depth, category, context,
            review_state, review_count, rank, synthetic, model_name, deleted, created_at,
            labels, reactions, rankings, review_confidence, "", [],
        )  # fmt: skip

    @property
    def usable_for_training(self) -> bool:
        return self.review_state == ACCEPTED and not self.deleted

    def sort_key(self) -> tuple[bool, int, int]:
        # Best rank first; unranked replies after the ranked ones, oldest first.
        return (self.rank is None, self.rank or 0, self.id)


NOTHING: dict[Any, Any] = {}
NONE: tuple[Any, ...] = ()


def build_tree(
    rows: list[Any],
    labels: dict[int, list[Any]] = NOTHING,
    reactions: dict[int, dict[str, int]] = NOTHING,
    rankings: dict[int, list[Any]] = NOTHING,
) -> tuple[Node, list[Node]] | None:
    """Link one tree's rows (parents before children), each with its labels, reactions and
    rankings by message id. A message whose parent was filtered out is dropped with its
    subtree; a tree without its prompt is dropped whole."""
    by_id: dict[int, Node] = {}
    ordered: list[Node] = []
    root: Node | None = None
    for row in rows:
        message_id = row[0]
        node = Node.from_row(
            row,
            labels.get(message_id, NONE),
            reactions.get(message_id, NOTHING),
            rankings.get(message_id, NONE),
        )
        if node.parent_id is None:
            root = node
        else:
            parent = by_id.get(node.parent_id)
            if parent is None:
                continue
            parent.children.append(node)
        by_id[node.id] = node
        ordered.append(node)
    if root is None:
        return None
    for node in ordered:
        if len(node.children) > 1:
            node.children.sort(key=Node.sort_key)
    return root, ordered


def label_summary(node: Node) -> dict[str, tuple[float, int]]:
    """Mean value and count per label name; labels given before a moderator's edit judged
    another text and are left out."""
    if not node.labels:
        return {}
    values: dict[str, list[float]] = {}
    for label in node.labels:
        if label[6]:
            continue
        for name, value in label[3].items():
            values.setdefault(name, []).append(float(value))
    return {name: (sum(found) / len(found), len(found)) for name, found in sorted(values.items())}


def emojis(node: Node) -> dict[str, int]:
    if not node.reactions:
        return {}
    return {EMOJI_NAMES.get(kind, kind): count for kind, count in sorted(node.reactions.items())}


def review_result(node: Node) -> bool | None:
    if node.review_state == PENDING:
        return None
    return node.review_state == ACCEPTED


def chat_message(node: Node) -> dict[str, str]:
    return {"role": CHAT_ROLES[node.role], "content": node.text}


def sft_paths(root: Node) -> list[list[Node]]:
    """Every root-to-assistant-leaf path of accepted, non-deleted messages (a trailing
    prompter turn with no answer is not a leaf: the path ends at the assistant before it)."""
    paths: list[list[Node]] = []
    if root.usable_for_training:
        _walk_sft_paths(root, [root], paths)
    return paths


def _walk_sft_paths(node: Node, path: list[Node], paths: list[list[Node]]) -> bool:
    """Adds to `paths` those that end at or below `node` (the end of `path`); whether any
    does. A module function rather than a closure: a closure that calls itself is a
    reference cycle, which would keep each tree's nodes until the garbage collector ran."""
    below = False
    for child in node.children:
        # usable_for_training, inlined: the walks below are the export's hottest loops.
        if child.review_state == ACCEPTED and not child.deleted:
            if child.children:
                path.append(child)
                below = _walk_sft_paths(child, path, paths) or below
                path.pop()
            elif child.role == ASSISTANT:
                # A leaf, without a call of its own (most messages are leaves).
                paths.append([*path, child])
                below = True
    if not below and node.role == ASSISTANT:
        paths.append(list(path))
        below = True
    return below


def best_path(root: Node) -> list[Node] | None:
    """The path that follows the best-ranked usable reply at every step."""
    if not root.usable_for_training:
        return None
    path = [root]
    node = root
    while True:
        usable = [
            child for child in node.children if child.review_state == ACCEPTED and not child.deleted
        ]
        if not usable:
            break
        node = usable[0]
        path.append(node)
    while path and path[-1].role != ASSISTANT:
        path.pop()
    return path or None


def graded_margin(parent: Node, chosen: Node, rejected: Node) -> float:
    """How much better `chosen` is than `rejected`: the mean over rankers of the graded
    distance between them (about_same 0, slightly_better 1, better 2, much_better 3 per
    step; plain position steps where a ranker gave no grades), negative where a ranker
    disagreed with the consensus. Without usable rankings: the consensus rank gap."""
    return _graded_margin(_ranking_steps(parent), chosen, rejected)


# Per usable ranking of a parent: each message's position in it (its first, as
# list.index finds), and the running sums of its grades' steps (None without grades).
RankingSteps = list[tuple[dict[int, int], list[int] | None]]


def _ranking_steps(parent: Node) -> RankingSteps:
    """The parent's usable rankings, read once for all the pairs among its replies."""
    found: RankingSteps = []
    for ranking in parent.rankings:
        order, grades, not_rankable, before_edit = ranking[1], ranking[2], ranking[3], ranking[4]
        if not_rankable or before_edit:
            continue
        positions: dict[int, int] = {}
        for position in range(len(order) - 1, -1, -1):
            positions[order[position]] = position
        steps: list[int] | None = None
        if grades:
            steps = [0]
            for grade in grades:
                steps.append(steps[-1] + GRADE_STEPS.get(grade, 1))
        found.append((positions, steps))
    return found


def _graded_margin(rankings: RankingSteps, chosen: Node, rejected: Node) -> float:
    margins: list[float] = []
    chosen_id, rejected_id = chosen.id, rejected.id
    for positions, steps in rankings:
        chosen_at, rejected_at = positions.get(chosen_id), positions.get(rejected_id)
        if chosen_at is None or rejected_at is None:
            continue
        low, high = min(chosen_at, rejected_at), max(chosen_at, rejected_at)
        # The grades between the two, summed: grades[i] compares ranked reply i with i+1.
        if steps is not None and len(steps) > high:
            distance = float(steps[high] - steps[low])
        else:
            distance = float(high - low)
        margins.append(distance if chosen_at < rejected_at else -distance)
    if margins:
        # statistics.fmean, without its overhead: the correctly rounded sum over the count.
        return round(math.fsum(margins) / len(margins), 3)
    return float((rejected.rank or 0) - (chosen.rank or 0))


def preference_pairs(root: Node) -> list[tuple[list[Node], Node, Node, float]]:
    """(conversation so far, chosen reply, rejected reply, margin) for every pair of
    ranked, usable assistant replies to the same message, better one by consensus first."""
    pairs: list[tuple[list[Node], Node, Node, float]] = []
    if root.usable_for_training:
        _walk_preference_pairs(root, [root], pairs)
    return pairs


def _walk_preference_pairs(
    node: Node, path: list[Node], pairs: list[tuple[list[Node], Node, Node, float]]
) -> None:
    """Adds the pairs among replies to `node` (the end of `path`) and below it. Leaves (most
    messages) have no pairs and are not visited."""
    usable = [
        child for child in node.children if child.review_state == ACCEPTED and not child.deleted
    ]
    if len(usable) > 1:
        ranked = [child for child in usable if child.role == ASSISTANT and child.rank is not None]
    else:
        ranked = []
    if len(ranked) > 1:
        # The pairs of one sibling set share their conversation (one list, not one each).
        conversation = list(path)
        rankings = _ranking_steps(node)
        for better_index, better in enumerate(ranked):
            for worse in ranked[better_index + 1 :]:
                pairs.append((conversation, better, worse, _graded_margin(rankings, better, worse)))
    for child in usable:
        if child.children:
            path.append(child)
            _walk_preference_pairs(child, path, pairs)
            path.pop()
