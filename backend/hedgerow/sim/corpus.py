"""Seed a large corpus fast with COPY, for the benchmarks and the query-plan tests.

    hedgerow seed --messages 1000000     (into the configured DATABASE_URL; it empties it)

Most trees are finished (ready_for_export), as in a long-running deployment; a realistic
sliver is open work: prompts under review, prompts waiting in the lottery, growing trees with
replies under review and parents open for replies, trees in ranking. Counters and open-work
flags are set exactly as the growth engine keeps them, so the real service can hand out tasks
from this corpus.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from hedgerow import migrate
from hedgerow.config import get_settings
from hedgerow.db import normalize_database_url

# A finished tree: a prompt, three assistant replies, two prompter replies under each.
FULL_TREE_SHAPE = (3, 2)
MESSAGES_PER_FULL_TREE = 1 + 3 + 3 * 2
LANGUAGES = ("en", "de")
LANGUAGE_WEIGHTS = (0.85, 0.15)

MESSAGE_COLUMNS = (
    "id",
    "tree_id",
    "parent_id",
    "author_id",
    "role",
    "text",
    "text_sha256",
    "language",
    "depth",
    "category",
    "review_state",
    "review_count",
    "review_score",
    "child_count",
    "accepted_child_count",
    "ranking_count",
    "consensus_rank",
    "open_for_review",
    "open_for_reply",
    "open_for_ranking",
    "created_at",
)
TREE_COLUMNS = (
    "id",
    "root_message_id",
    "author_id",
    "state",
    "language",
    "category",
    "goal_size",
    "max_depth",
    "max_children",
    "reviews_per_message",
    "acceptance_threshold",
    "rankings_per_sibling_set",
    "min_reviews_per_message",
    "min_rankings_per_sibling_set",
    "prompter_replies_per_assistant",
    "accepted_count",
    "pending_count",
    "reply_lease_count",
    "open_ranking_sets",
    "created_at",
    "entered_lottery_at",
    "drawn_at",
    "completed_at",
)
TASK_COLUMNS = (
    "user_id",
    "kind",
    "language",
    "target_message_id",
    "state",
    "lease_expires_at",
    "created_at",
    "finished_at",
)


@dataclass
class Corpus:
    rng: random.Random
    users: int
    start: datetime
    next_message_id: int = 1
    next_tree_id: int = 1
    trees: list[tuple] = field(default_factory=list)
    messages: list[tuple] = field(default_factory=list)
    tasks: list[tuple] = field(default_factory=list)
    # One reply per user per parent, as the task table's unique key demands.
    child_authors: dict[int, set[int]] = field(default_factory=dict)

    def author(self, exclude: int | None = None, taken: set[int] | None = None) -> int:
        while True:
            user = self.rng.randint(1, self.users)
            if user != exclude and (taken is None or user not in taken):
                return user

    def when(self) -> datetime:
        return self.start + timedelta(seconds=self.rng.randint(0, 3600 * 24 * 365))


def text_for(message_id: int) -> tuple[str, str]:
    text = f"Seeded message {message_id}: " + "lorem ipsum dolor sit amet " * 6
    return text, hashlib.sha256(text.encode()).hexdigest()


def add_message(
    corpus: Corpus,
    tree_id: int,
    parent: tuple[int, int, int] | None,
    *,
    review_state: str,
    review_count: int,
    child_count: int = 0,
    accepted_child_count: int = 0,
    ranking_count: int = 0,
    consensus_rank: int | None = None,
    open_for_review: bool = False,
    open_for_reply: bool = False,
    open_for_ranking: bool = False,
    language: str,
) -> tuple[int, int, int]:
    """Add one message; returns (id, depth, author) for its children."""
    message_id = corpus.next_message_id
    corpus.next_message_id += 1
    depth = 0 if parent is None else parent[1] + 1
    if parent is None:
        author = corpus.author()
    else:
        taken = corpus.child_authors.setdefault(parent[0], set())
        author = corpus.author(exclude=parent[2], taken=taken)
        taken.add(author)
    text, digest = text_for(message_id)
    created = corpus.when()
    corpus.messages.append(
        (
            message_id,
            tree_id,
            None if parent is None else parent[0],
            author,
            "prompter" if depth % 2 == 0 else "assistant",
            text,
            digest,
            language,
            depth,
            "open_qa" if depth == 0 else None,
            review_state,
            review_count,
            1.0 if review_state == "accepted" else (0.0 if review_state == "rejected" else None),
            child_count,
            accepted_child_count,
            ranking_count,
            consensus_rank,
            open_for_review,
            open_for_reply,
            open_for_ranking,
            created,
        )
    )
    if parent is not None:
        kind = "reply_assistant" if depth % 2 == 1 else "reply_prompter"
        corpus.tasks.append((author, kind, language, parent[0], "done", created, created, created))
    # One done review task per review, from other users: the exclusion anti-join's rows.
    review_kind = (
        "review_prompt"
        if depth == 0
        else "review_assistant_reply"
        if depth % 2 == 1
        else "review_prompter_reply"
    )
    reviewers: set[int] = set()
    while len(reviewers) < review_count:
        reviewers.add(corpus.author(exclude=author))
    for reviewer in reviewers:
        corpus.tasks.append(
            (reviewer, review_kind, language, message_id, "done", created, created, created)
        )
    return message_id, depth, author


@dataclass
class _TreeBody:
    """What a tree's messages leave on the tree row."""

    root: tuple[int, int, int]
    accepted: int = 0
    pending: int = 0
    open_sets: int = 0
    lottery: bool = False
    drawn: bool = False
    completed: bool = False


def _unfinished_root(
    corpus: Corpus, tree_id: int, state: str, language: str, reviews: int
) -> _TreeBody:
    """A prompt under review, rejected, or waiting in the lottery."""
    if state == "prompt_review":
        root = add_message(
            corpus,
            tree_id,
            None,
            review_state="pending",
            review_count=corpus.rng.randint(0, reviews - 1),
            open_for_review=True,
            language=language,
        )
        return _TreeBody(root, pending=1)
    if state == "aborted_low_grade":
        root = add_message(
            corpus, tree_id, None, review_state="rejected", review_count=reviews, language=language
        )
        return _TreeBody(root)
    root = add_message(
        corpus, tree_id, None, review_state="accepted", review_count=reviews, language=language
    )
    return _TreeBody(root, accepted=1, lottery=True)


def _growing_tree(corpus: Corpus, tree_id: int, language: str, reviews: int) -> _TreeBody:
    """A prompt with two accepted assistant replies (one slot free), one reply pending."""
    root = add_message(
        corpus,
        tree_id,
        None,
        review_state="accepted",
        review_count=reviews,
        child_count=3,
        accepted_child_count=2,
        open_for_reply=False,
        language=language,
    )
    for _ in range(2):
        add_message(
            corpus,
            tree_id,
            root,
            review_state="accepted",
            review_count=reviews,
            open_for_reply=True,
            language=language,
        )
    add_message(
        corpus,
        tree_id,
        root,
        review_state="pending",
        review_count=0,
        open_for_review=True,
        language=language,
    )
    return _TreeBody(root, accepted=3, pending=1, lottery=True, drawn=True)


def _full_tree(
    corpus: Corpus, tree_id: int, language: str, reviews: int, rankings: int, in_ranking: bool
) -> _TreeBody:
    """A full tree of FULL_TREE_SHAPE, ranked and ready for export or waiting for its
    root's rankings."""
    first, second = FULL_TREE_SHAPE
    root = add_message(
        corpus,
        tree_id,
        None,
        review_state="accepted",
        review_count=reviews,
        child_count=first,
        accepted_child_count=first,
        ranking_count=0 if in_ranking else rankings,
        open_for_ranking=in_ranking,
        language=language,
    )
    for rank in range(first):
        child = add_message(
            corpus,
            tree_id,
            root,
            review_state="accepted",
            review_count=reviews,
            child_count=second,
            accepted_child_count=second,
            ranking_count=rankings,
            consensus_rank=None if in_ranking else rank,
            language=language,
        )
        for _ in range(second):
            add_message(
                corpus,
                tree_id,
                child,
                review_state="accepted",
                review_count=reviews,
                language=language,
            )
    return _TreeBody(
        root,
        accepted=MESSAGES_PER_FULL_TREE,
        open_sets=1 if in_ranking else 0,
        lottery=True,
        drawn=True,
        completed=not in_ranking,
    )


def add_tree(corpus: Corpus, state: str, settings_row: dict, language: str | None = None) -> None:
    tree_id = corpus.next_tree_id
    corpus.next_tree_id += 1
    language = language or corpus.rng.choices(LANGUAGES, LANGUAGE_WEIGHTS)[0]
    created = corpus.when()
    reviews = settings_row["reviews_per_message"]
    rankings = settings_row["rankings_per_sibling_set"]
    if state in ("prompt_review", "aborted_low_grade", "lottery_waiting"):
        body = _unfinished_root(corpus, tree_id, state, language, reviews)
    elif state == "growing":
        body = _growing_tree(corpus, tree_id, language, reviews)
    else:  # ranking or ready_for_export
        body = _full_tree(corpus, tree_id, language, reviews, rankings, state == "ranking")
    corpus.trees.append(
        (
            tree_id,
            body.root[0],
            body.root[2],
            state,
            language,
            "open_qa",
            settings_row["goal_size"],
            settings_row["max_depth"],
            settings_row["max_children"],
            reviews,
            settings_row["acceptance_threshold"],
            rankings,
            # The corpus's trees were grown under the fixed policy, in the full shape of
            # FULL_TREE_SHAPE (every parent took up to max_children replies).
            reviews,
            rankings,
            settings_row["max_children"],
            body.accepted,
            body.pending,
            0,
            body.open_sets,
            created,
            created if body.lottery else None,
            created if body.drawn else None,
            created if body.completed else None,
        )
    )


def plan_states(total_trees: int) -> list[str]:
    """Finished trees dominate; open work stays bounded, as the lottery limits keep it."""
    per_language_growing = get_settings().growing_trees_per_language
    fixed = {
        "growing": per_language_growing * len(LANGUAGES),
        "lottery_waiting": min(100, total_trees // 20),
        "prompt_review": min(100, total_trees // 20),
        "ranking": min(20, total_trees // 50),
    }
    aborted = total_trees // 30
    finished = max(0, total_trees - sum(fixed.values()) - aborted)
    states: list[str] = []
    for state, count in fixed.items():
        states += [state] * count
    states += ["aborted_low_grade"] * aborted + ["ready_for_export"] * finished
    return states


def copy_rows(cur: psycopg.Cursor, table: str, columns: tuple[str, ...], rows: list) -> None:
    with cur.copy(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


def seed(database_url: str, messages: int, users: int, seed_value: int) -> dict[str, float]:
    settings = get_settings()
    settings_row = {
        "goal_size": settings.tree_goal_size,
        "max_depth": settings.tree_max_depth,
        "max_children": settings.tree_max_children,
        "reviews_per_message": settings.reviews_per_message,
        "acceptance_threshold": settings.acceptance_threshold,
        "rankings_per_sibling_set": settings.rankings_per_sibling_set,
    }
    started = time.perf_counter()
    corpus = Corpus(
        rng=random.Random(seed_value), users=users, start=datetime(2025, 1, 1, tzinfo=UTC)
    )
    total_trees = max(1, messages // MESSAGES_PER_FULL_TREE)
    growing = 0
    for state in plan_states(total_trees):
        language = None
        if state == "growing":
            # Growing trees fill each language's slots exactly, as the lottery leaves them
            # (a language over its limit would take no new draws until trees finish).
            language = LANGUAGES[growing % len(LANGUAGES)]
            growing += 1
        add_tree(corpus, state, settings_row, language)
    while len(corpus.messages) < messages:  # top up to the asked size with finished trees
        add_tree(corpus, "ready_for_export", settings_row)
    built = time.perf_counter()

    migrate.upgrade(database_url)
    url = normalize_database_url(database_url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "TRUNCATE audit_event, report, reaction, ranking, label, task, message_revision, "
            'user_note, api_key, user_session, message, tree, "user" RESTART IDENTITY CASCADE'
        )
        copy_rows(
            cur,
            "user",
            ("id", "username", "display_name", "role", "tos_accepted_at"),
            [(i, f"seed{i}", f"Seed {i}", "volunteer", corpus.start) for i in range(1, users + 1)],
        )
        # tree.root_message_id and message.tree_id refer to each other: load trees first
        # with the constraint checked at the end of the transaction.
        cur.execute("ALTER TABLE tree DROP CONSTRAINT fk_tree_root_message_id_message")
        copy_rows(cur, "tree", TREE_COLUMNS, corpus.trees)
        copy_rows(cur, "message", MESSAGE_COLUMNS, corpus.messages)
        cur.execute(
            "ALTER TABLE tree ADD CONSTRAINT fk_tree_root_message_id_message FOREIGN KEY "
            "(root_message_id) REFERENCES message (id) ON DELETE SET NULL"
        )
        copy_rows(cur, "task", TASK_COLUMNS, corpus.tasks)
        for table in ("user", "tree", "message", "task"):
            cur.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({}, 'id'), (SELECT max(id) FROM {}))"
                ).format(sql.Literal(f'"{table}"'), sql.Identifier(table))
            )
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    finished = time.perf_counter()
    return {
        "trees": len(corpus.trees),
        "messages": len(corpus.messages),
        "tasks": len(corpus.tasks),
        "users": users,
        "build_seconds": round(built - started, 1),
        "load_seconds": round(finished - built, 1),
    }
