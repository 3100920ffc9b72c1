"""The release files of one part of the export, written one tree at a time.

A part is a run of consecutive trees; `PartWriters` writes its share of every release file
into part files that `assemble` later joins in order: JSON Lines as they are, trees as a
raw deflate stream (one gzip member once joined), messages as Arrow IPC record batches
that become the parquet row groups. Every buffer is bounded; nothing grows with the number
of trees except the small counters kept for the dataset card.

This module runs in the export's worker processes: it imports neither SQLAlchemy nor the
models, to keep each worker's memory small.
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
from isal import isal_zlib

from hedgerow.export import shapes
from hedgerow.export.agreement import AgreementTally, LabelUnitCounter
from hedgerow.export.labels import LABEL_VALUES_CACHE, NO_LABELS, LabelSummary, LabelValues
from hedgerow.export.message_rows import MESSAGES_SCHEMA, message_batch
from hedgerow.export.shapes import ACCEPTED, PENDING, MessageIds, Node, Pseudonyms

TREES_FILE = "trees.jsonl.gz"
MESSAGES_FILE = "messages.parquet"
SFT_FILE = "sft.jsonl"
SFT_BEST_FILE = "sft_best.jsonl"
PREFERENCES_FILE = "preferences.jsonl"
RANKINGS_FILE = "rankings.jsonl"
LABELS_FILE = "labels.jsonl"
# Written by hedgerow.export.chats: chats whose owners share them.
CHATS_FILE = "chats.jsonl"
CARD_FILE = "README.md"
MANIFEST_FILE = "manifest.json"
DATA_FILES = (
    TREES_FILE,
    MESSAGES_FILE,
    SFT_FILE,
    SFT_BEST_FILE,
    PREFERENCES_FILE,
    RANKINGS_FILE,
    LABELS_FILE,
    CHATS_FILE,
)
# The JSON Lines files a part writes as they are published.
TEXT_FILES = (SFT_FILE, SFT_BEST_FILE, PREFERENCES_FILE, RANKINGS_FILE, LABELS_FILE)

# Row groups of 10k messages: a few MB with long texts, large enough for fast scans.
PARQUET_BATCH_ROWS = 10_000
# Messages per Arrow record batch in a part: their node dicts wait in memory until then
# (the assembler joins batches into row groups of PARQUET_BATCH_ROWS).
ARROW_BATCH_ROWS = 2_000
WRITE_BUFFER_BYTES = 1 << 20
# ISA-L's deflate at its level 1 is ~6x faster than zlib's level 1 (which was the largest
# single cost of the export) and compresses our trees ~15% better.
GZIP_LEVEL = 1
# Uncompressed tree lines gathered before each deflate call.
DEFLATE_CHUNK_BYTES = 1 << 20


_ROLE_OF = attrgetter("role")
_REVIEW_COUNT_OF = itemgetter("review_count")


def _json_line(value: Any) -> bytes:
    # orjson: UTF-8 as is (no \u escapes), compact, and about 5x the stdlib's speed.
    return orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE)


def part_file(directory: Path, index: int, name: str) -> Path:
    """Where part `index` keeps its share of the release file `name`."""
    return directory / f"part-{index:05d}.{name}"


@dataclass
class ReleaseStats:
    """What the dataset card reports; counters over small domains only."""

    trees: int = 0
    messages: int = 0
    trees_by_state: Counter[str] = field(default_factory=Counter)
    trees_by_language: Counter[str] = field(default_factory=Counter)
    trees_by_category: Counter[str] = field(default_factory=Counter)
    messages_by_role: Counter[str] = field(default_factory=Counter)
    messages_by_split: Counter[str] = field(default_factory=Counter)
    label_sums: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    label_counts: Counter[str] = field(default_factory=Counter)
    rows: Counter[str] = field(default_factory=Counter)
    agreement: AgreementTally = field(default_factory=AgreementTally)

    def add(self, other: ReleaseStats) -> None:
        """Count a later part in (parts are added in tree order)."""
        self.trees += other.trees
        self.messages += other.messages
        for mine, theirs in (
            (self.trees_by_state, other.trees_by_state),
            (self.trees_by_language, other.trees_by_language),
            (self.trees_by_category, other.trees_by_category),
            (self.messages_by_role, other.messages_by_role),
            (self.messages_by_split, other.messages_by_split),
            (self.label_counts, other.label_counts),
            (self.rows, other.rows),
        ):
            mine.update(theirs)
        for name, total in other.label_sums.items():
            self.label_sums[name] += total
        self.agreement.add(other.agreement)


@dataclass
class PartOutcome:
    """What a finished part tells the assembler: its counts, and the checksum and length
    of its uncompressed trees, from which the joined gzip member's trailer is made."""

    index: int
    stats: ReleaseStats
    trees_crc32: int
    trees_length: int


class PartWriters:
    """Writes part `index` of a release into `directory` (a scratch folder inside the
    release's partial directory)."""

    def __init__(
        self,
        directory: Path,
        index: int,
        *,
        pseudonyms: Pseudonyms,
        message_ids: MessageIds,
        split_seed: int,
        validation_share: float,
    ) -> None:
        self.index = index
        self.pseudonyms = pseudonyms
        self.ids = message_ids
        self.split_seed = split_seed
        self.validation_share = validation_share
        self.stats = ReleaseStats()
        self.label_values = LabelValues()
        self._label_units = LabelUnitCounter(self.stats.agreement)
        self._label_middles: dict[tuple[str, str, str, bool], str] = {}
        self._files: list[IO[bytes]] = []
        self._trees = self._open(part_file(directory, index, TREES_FILE))
        self._deflate = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
        self._tree_lines: list[bytes] = []
        self._tree_bytes = 0
        self._trees_crc = isal_zlib.crc32(b"")
        self._trees_length = 0
        self._sft = self._open(part_file(directory, index, SFT_FILE))
        self._sft_best = self._open(part_file(directory, index, SFT_BEST_FILE))
        self._preferences = self._open(part_file(directory, index, PREFERENCES_FILE))
        self._rankings = self._open(part_file(directory, index, RANKINGS_FILE))
        self._labels = self._open(part_file(directory, index, LABELS_FILE))
        self._messages_sink = self._open(part_file(directory, index, MESSAGES_FILE))
        self._messages = pa.ipc.new_stream(self._messages_sink, MESSAGES_SCHEMA)
        # Rows of the next record batch: the node dicts, and per tree its id, state, split
        # and number of messages.
        self._rows: list[dict[str, Any]] = []
        self._row_labels: list[LabelSummary] = []
        self._row_trees: list[tuple[str, str, str, int]] = []

    def _open(self, path: Path) -> IO[bytes]:
        handle = open(path, "wb", buffering=WRITE_BUFFER_BYTES)  # noqa: SIM115 - closed in close()
        self._files.append(handle)
        return handle

    # --- one tree -------------------------------------------------------------------

    def write_tree(
        self,
        tree_state: str,
        rows: list[Any],
        labels: dict[int, list[Any]],
        reactions: dict[int, dict[str, int]],
        rankings: dict[int, list[Any]],
    ) -> int:
        """Append one tree to every file; returns how many messages it exported."""
        built = shapes.build_tree(rows, labels, reactions, rankings)
        if built is None:
            return 0
        root, nodes = built
        public_of = self.ids.public
        public_ids: dict[int, str] = {}
        for node in nodes:
            node.public_id = public_ids[node.id] = public_of(node.id)
        tree_id = root.public_id
        split = shapes.split_of(tree_id, self.split_seed, self.validation_share)
        public = self._public_nodes(nodes, public_ids)
        self._add_tree_line(
            _json_line({"message_tree_id": tree_id, "tree_state": tree_state, "prompt": public[0]})
        )
        self._count_tree(root, tree_state, split, nodes)
        self._rows.extend(public)
        self._row_trees.append((tree_id, tree_state, split, len(nodes)))
        self._write_labels(nodes, tree_id)
        for node in nodes:
            if node.rankings:
                self._write_rankings(node, tree_id, public_ids)
                self.stats.agreement.add_sibling_set(root.language, node.rankings)
        self._write_training_files(root, tree_id, split)
        if len(self._rows) >= ARROW_BATCH_ROWS:
            self._flush_messages()
        return len(nodes)

    def _public_nodes(self, nodes: list[Node], public_ids: dict[int, str]) -> list[dict[str, Any]]:
        """Each node's dict, in the order of `nodes` (the root first): its line in the trees
        file (children nested under "replies", best rank first) and its row in
        messages.parquet. One loop with everything it calls at hand: at a few dozen
        operations per message, calls and attribute lookups were a large share."""
        user_of = self.pseudonyms.user
        iso_timestamp = shapes.iso_timestamp
        label_summary = self.label_values.summary
        label_sums, label_counts = self.stats.label_sums, self.stats.label_counts
        row_labels = self._row_labels
        by_id: dict[int, dict[str, Any]] = {}
        public = []
        for node in nodes:
            if node.labels:
                summary = label_summary(node.labels)
                # Counted into the card's label statistics.
                for name, total, count in summary.totals:
                    label_sums[name] += total
                    label_counts[name] += count
            else:
                summary = NO_LABELS
            row_labels.append(summary)
            parent_id = node.parent_id
            review_state = node.review_state
            found = by_id[node.id] = {
                "message_id": node.public_id,
                "parent_id": public_ids[parent_id] if parent_id is not None else None,
                "user_id": user_of(node.author_id),
                "created_date": iso_timestamp(node.created_at),
                "text": node.text,
                "role": node.role,
                "lang": node.language,
                "review_count": node.review_count,
                # shapes.review_result, inlined.
                "review_result": None if review_state == PENDING else review_state == ACCEPTED,
                "review_confidence": node.review_confidence,
                "deleted": node.deleted,
                "rank": node.rank,
                "synthetic": node.synthetic,
                "model_name": node.model_name,
                # oasst1's toxicity scores: no toxicity model runs here.
                "detoxify": None,
                "emojis": shapes.emojis(node) if node.reactions else {},
                "labels": summary.by_name,
                "category": node.category,
                "context": node.context,
                "replies": [],
            }
            public.append(found)
        for node in nodes:
            if node.children:
                by_id[node.id]["replies"] = [by_id[child.id] for child in node.children]
        return public

    def _add_tree_line(self, line: bytes) -> None:
        self._tree_lines.append(line)
        self._tree_bytes += len(line)
        if self._tree_bytes >= DEFLATE_CHUNK_BYTES:
            self._deflate_tree_lines()

    def _deflate_tree_lines(self) -> None:
        chunk = b"".join(self._tree_lines)
        self._tree_lines.clear()
        self._tree_bytes = 0
        self._trees_crc = isal_zlib.crc32(chunk, self._trees_crc)
        self._trees_length += len(chunk)
        self._trees.write(self._deflate.compress(chunk))

    def _count_tree(self, root: Node, tree_state: str, split: str, nodes: list[Node]) -> None:
        stats = self.stats
        size = len(nodes)
        stats.trees += 1
        stats.messages += size
        stats.trees_by_state[tree_state] += 1
        stats.trees_by_language[root.language] += 1
        stats.trees_by_category[root.category or "none"] += 1
        stats.messages_by_split[split] += size
        stats.messages_by_role.update(map(_ROLE_OF, nodes))
        stats.rows[TREES_FILE] += 1
        stats.rows[MESSAGES_FILE] += size

    def _write_labels(self, nodes: list[Node], tree_id: str) -> None:
        """One line per label of the tree's `nodes`. The line is the orjson dump of
        {"message_id", "message_tree_id", "user_id", "labels", "mode", "guideline_version",
        "before_edit", "created_date"}, joined from pieces dumped once each (the message's
        ids, a person's pseudonym, each distinct values/mode/guideline/before-edit
        combination) and the creation time, which the server gives as JSON: labels.jsonl is
        most of a release's bytes. tests/export/test_parts.py checks the joining against a
        plain dump."""
        users, middles = self.pseudonyms.user_json, self._label_middles
        lines = []
        for node in nodes:
            if not node.labels:
                continue
            # Public ids are UUIDs in hex: nothing in them to escape.
            head = f'{{"message_id":"{node.public_id}","message_tree_id":"{tree_id}","user_id":'
            for label in node.labels:
                _, _, user_id, values_text, mode, guideline_version, before_edit, created = label
                key = (values_text, mode, guideline_version, before_edit)
                middle = middles.get(key)
                if middle is None:
                    middle = self._label_middle(key)
                lines.append(f"{head}{users(user_id)}{middle}{created}}}\n")
        if lines:
            self._labels.write("".join(lines).encode())
            self.stats.rows[LABELS_FILE] += len(lines)

    def _label_middle(self, key: tuple[str, str, str, bool]) -> str:
        """',"labels":...,"mode":...,"guideline_version":...,"before_edit":...,"created_date":'"""
        values_text, mode, guideline_version, before_edit = key
        dumped = orjson.dumps(
            {
                "labels": self.label_values.parse(values_text),
                "mode": mode,
                "guideline_version": guideline_version,
                "before_edit": before_edit,
                "created_date": None,
            }
        )
        middle = "," + dumped[1 : -len(b"null}")].decode()
        if len(self._label_middles) >= LABEL_VALUES_CACHE:
            self._label_middles.clear()
        self._label_middles[key] = middle
        return middle

    def _write_rankings(self, node: Node, tree_id: str, public_ids: dict[int, str]) -> None:
        parent_id = node.public_id
        for user_id, ordered, grades, not_rankable, before_edit, created in node.rankings:
            self._rankings.write(
                _json_line(
                    {
                        "parent_id": parent_id,
                        "message_tree_id": tree_id,
                        "user_id": self.pseudonyms.user(user_id),
                        "ranking": [
                            public_ids.get(message_id) or self.ids.public(message_id)
                            for message_id in ordered
                        ],
                        "grades": grades,
                        "not_rankable": not_rankable,
                        "before_edit": before_edit,
                        "created_date": created,
                    }
                )
            )
        self.stats.rows[RANKINGS_FILE] += len(node.rankings)

    def _write_training_files(self, root: Node, tree_id: str, split: str) -> None:
        """SFT paths, the best path and preference pairs. A message sits in many paths and
        pairs: its {"role", "content"} is dumped once per tree and the lines are joined from
        those pieces, exactly as orjson dumps {"messages": [...], "message_tree_id", "lang",
        "split"} and {"prompt", "chosen", "rejected", "margin", ...}."""
        if not root.usable_for_training:
            return
        # ',"message_tree_id":...,"lang":...,"split":...}': the end of every line.
        tail = (
            b","
            + orjson.dumps({"message_tree_id": tree_id, "lang": root.language, "split": split})[1:]
        )
        dumped: dict[int, bytes] = {}

        def turn(node: Node) -> bytes:
            piece = dumped.get(node.id)
            if piece is None:
                piece = dumped[node.id] = orjson.dumps(shapes.chat_message(node))
            return piece

        def chat(path: list[Node]) -> bytes:
            return b",".join([turn(node) for node in path])

        paths = shapes.sft_paths(root)
        if paths:
            self._sft.write(
                b"".join([b'{"messages":[%b]%b\n' % (chat(path), tail) for path in paths])
            )
            self.stats.rows[SFT_FILE] += len(paths)
        best = shapes.best_path(root)
        if best is not None:
            self._sft_best.write(b'{"messages":[%b]%b\n' % (chat(best), tail))
            self.stats.rows[SFT_BEST_FILE] += 1
        pairs = shapes.preference_pairs(root)
        if pairs:
            # The pairs of a sibling set share one conversation list: joined once.
            prompts: dict[int, bytes] = {}
            lines = []
            for path, chosen, rejected, margin in pairs:
                prompt = prompts.get(id(path))
                if prompt is None:
                    prompt = prompts[id(path)] = chat(path)
                lines.append(
                    b'{"prompt":[%b],"chosen":[%b],"rejected":[%b],"margin":%b%b\n'
                    % (prompt, turn(chosen), turn(rejected), orjson.dumps(margin), tail)
                )
            self._preferences.write(b"".join(lines))
            self.stats.rows[PREFERENCES_FILE] += len(pairs)

    # --- messages as Arrow record batches ---------------------------------------------

    def _flush_messages(self) -> None:
        if self._rows:
            self._count_agreement()
            batch = message_batch(self._rows, self._row_labels, self._row_trees)
            self._messages.write_batch(batch)
            self._rows.clear()
            self._row_labels.clear()
            self._row_trees.clear()

    def _count_agreement(self) -> None:
        """Count the rows waiting for the next record batch into the release's agreement:
        their reviews, and their labels given by two reviewers or more. Counted per batch
        with C-level passes over the rows rather than in the per-message loop: messages
        with the same labels share one summary, so a batch has few distinct ones."""
        self.stats.agreement.reviews_per_message.update(map(_REVIEW_COUNT_OF, self._rows))
        summaries = self._row_labels
        by_id = dict(zip(map(id, summaries), summaries, strict=True))
        count_units = self._label_units.count
        for key, messages in Counter(map(id, summaries)).items():
            units = by_id[key].units
            if units:
                count_units(units, messages)

    # --- closing --------------------------------------------------------------------

    def close(self) -> PartOutcome:
        self._flush_messages()
        self._label_units.finish()
        self._messages.close()
        self._deflate_tree_lines()
        # A sync flush ends the part on a byte boundary without ending the deflate stream,
        # so the next part's stream can follow it (as pigz joins its blocks).
        self._trees.write(self._deflate.flush(isal_zlib.Z_SYNC_FLUSH))
        for handle in self._files:
            handle.close()
        return PartOutcome(self.index, self.stats, self._trees_crc, self._trees_length)

    def abort(self) -> None:
        """Close the files after a failure; their contents no longer matter."""
        for closer in (self._messages.close, *(handle.close for handle in self._files)):
            # The export already failed and the directory goes; a close error adds nothing.
            with contextlib.suppress(Exception):
                closer()
