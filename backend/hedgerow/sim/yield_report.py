"""Training data per volunteer task, and its accuracy against the simulator's latent truth.

The trees are read with the export's own query and turned into SFT conversations and
preference pairs by the export's own builders (`export.shapes`), with a release's default
filters, so the figures are those a release of the same trees would hold.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from itertools import combinations
from statistics import fmean
from typing import Any

from sqlalchemy import Connection, select

from hedgerow.export import shapes
from hedgerow.export.queries import TREE_ID_COLUMN, part_queries
from hedgerow.export.schemas import ExportFilters
from hedgerow.models import Message, ReviewState, Tree
from hedgerow.sim.crowd import Truth

TASK_FAMILIES = ("prompt", "reply", "review", "ranking")


def family_of_kind(kind: str) -> str:
    if kind == "write_prompt":
        return "prompt"
    if kind.startswith("reply_"):
        return "reply"
    if kind.startswith("review_"):
        return "review"
    return "ranking"


@dataclass
class YieldReport:
    """What the crowd's tasks produced, per 100 tasks, and how right it is."""

    # Volunteer tasks: every submission and every skip (a skip costs a volunteer time too).
    tasks: int
    tasks_by_family: dict[str, int]
    ready_trees: int
    accepted_assistant_replies: int
    sft_conversations: int
    preference_pairs: int
    ranked_sibling_sets: int
    # Against the truth; None where there was nothing to measure.
    review_decisions: int
    review_accuracy: float | None
    bad_rejected_share: float | None
    good_accepted_share: float | None
    preference_pair_accuracy: float | None
    consensus_kendall_tau: float | None
    sft_best_true_quality: float | None
    reviews_per_decided_message: float | None
    rankings_per_settled_set: float | None
    per_100_tasks: dict[str, float] = field(default_factory=dict)

    @property
    def tasks_per_ready_tree(self) -> float | None:
        return self.tasks / self.ready_trees if self.ready_trees else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tasks_per_ready_tree": self.tasks_per_ready_tree}


def kendall_tau(order: list[int], truth: Mapping[int, float]) -> float:
    """Kendall's tau between an order (best first) and the order by true quality."""
    concordant = discordant = 0
    for better, worse in combinations(order, 2):
        if truth[better] > truth[worse]:
            concordant += 1
        elif truth[better] < truth[worse]:
            discordant += 1
    pairs = len(order) * (len(order) - 1) / 2
    return (concordant - discordant) / pairs if pairs else 1.0


def _ready_trees(conn: Connection, first_tree_id: int) -> Iterator[shapes.Node]:
    """The trees above `first_tree_id` as a release would hold them, as `shapes.Node`s."""
    filters = ExportFilters()
    statements = part_queries(filters)
    last = conn.scalar(select(Tree.id).order_by(Tree.id.desc()).limit(1)) or first_tree_id
    params = {**statements.params, "first_tree": first_tree_id + 1, "last_tree": last}
    rows = conn.exec_driver_sql(statements.messages, params).all()
    tree_rows: list[Any] = []
    for row in rows:
        if tree_rows and tree_rows[-1][TREE_ID_COLUMN] != row[TREE_ID_COLUMN]:
            built = shapes.build_tree(tree_rows)
            if built is not None:
                yield built[0]
            tree_rows = []
        tree_rows.append(row)
    if tree_rows:
        built = shapes.build_tree(tree_rows)
        if built is not None:
            yield built[0]


def _mean(values: list[float]) -> float | None:
    return fmean(values) if values else None


def _share(hits: int, total: int) -> float | None:
    return hits / total if total else None


def measure(
    conn: Connection,
    first_tree_id: int,
    outcomes: Counter[str],
    truth: Mapping[int, Truth],
) -> YieldReport:
    """Measure the trees above `first_tree_id` that the run's `outcomes` made."""
    by_family = dict.fromkeys(TASK_FAMILIES, 0)
    for outcome, count in outcomes.items():
        verdict, _, kind = outcome.partition(":")
        if verdict in ("done", "skip"):
            by_family[family_of_kind(kind)] += count
    tasks = sum(by_family.values())

    ready = 0
    sft = pairs_count = ranked_sets = accepted_assistant = 0
    pair_hits: list[bool] = []
    taus: list[float] = []
    best_quality: list[float] = []
    for root in _ready_trees(conn, first_tree_id):
        ready += 1
        nodes = _walk(root)
        accepted_assistant += sum(
            1 for n in nodes if n.role == shapes.ASSISTANT and n.usable_for_training
        )
        sft += len(shapes.sft_paths(root))
        pairs = shapes.preference_pairs(root)
        pairs_count += len(pairs)
        pair_hits += [truth_quality(truth, c) > truth_quality(truth, r) for _, c, r, _ in pairs]
        for node in nodes:
            ranked = [c for c in node.children if c.rank is not None and c.usable_for_training]
            if len(ranked) >= 2:
                ranked_sets += 1
                order = [c.id for c in sorted(ranked, key=shapes.Node.sort_key)]
                taus.append(kendall_tau(order, {i: truth_quality(truth, i) for i in order}))
        best = shapes.best_path(root)
        if best is not None:
            best_quality.append(
                fmean(truth_quality(truth, n) for n in best if n.role == shapes.ASSISTANT)
            )

    decisions = _review_decisions(conn, first_tree_id, truth)
    per_100 = {
        "accepted_assistant_replies": accepted_assistant,
        "sft_conversations": sft,
        "preference_pairs": pairs_count,
        "ranked_sibling_sets": ranked_sets,
    }
    return YieldReport(
        tasks=tasks,
        tasks_by_family=by_family,
        ready_trees=ready,
        accepted_assistant_replies=accepted_assistant,
        sft_conversations=sft,
        preference_pairs=pairs_count,
        ranked_sibling_sets=ranked_sets,
        review_decisions=decisions.total,
        review_accuracy=_share(decisions.right, decisions.total),
        bad_rejected_share=_share(decisions.bad_rejected, decisions.bad),
        good_accepted_share=_share(decisions.good_accepted, decisions.good),
        preference_pair_accuracy=_share(sum(pair_hits), len(pair_hits)),
        consensus_kendall_tau=_mean(taus),
        sft_best_true_quality=_mean(best_quality),
        reviews_per_decided_message=decisions.reviews_per_message,
        rankings_per_settled_set=_rankings_per_settled_set(conn, first_tree_id),
        per_100_tasks={k: round(100 * v / tasks, 2) if tasks else 0.0 for k, v in per_100.items()},
    )


def truth_quality(truth: Mapping[int, Truth], node_or_id: shapes.Node | int) -> float:
    message_id = node_or_id if isinstance(node_or_id, int) else node_or_id.id
    found = truth.get(message_id)
    return found.quality if found is not None else 0.5


def _walk(root: shapes.Node) -> list[shapes.Node]:
    nodes, stack = [], [root]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.children)
    return nodes


@dataclass
class _Decisions:
    total: int = 0
    right: int = 0
    bad: int = 0
    bad_rejected: int = 0
    good: int = 0
    good_accepted: int = 0
    reviews_per_message: float | None = None


def _review_decisions(
    conn: Connection, first_tree_id: int, truth: Mapping[int, Truth]
) -> _Decisions:
    """Every decided message of the run's trees (whatever the tree's state) against the
    truth: bad ones should be rejected, good ones accepted."""
    rows = conn.execute(
        select(Message.id, Message.review_state, Message.review_count).where(
            Message.tree_id > first_tree_id,
            Message.review_state != ReviewState.pending,
        )
    ).all()
    found = _Decisions()
    reviews: list[int] = []
    for message_id, state, review_count in rows:
        known = truth.get(message_id)
        if known is None:
            continue
        accepted = state == ReviewState.accepted
        found.total += 1
        reviews.append(review_count)
        found.right += int(accepted != known.bad)
        if known.bad:
            found.bad += 1
            found.bad_rejected += int(not accepted)
        else:
            found.good += 1
            found.good_accepted += int(accepted)
    found.reviews_per_message = _mean([float(r) for r in reviews])
    return found


def _rankings_per_settled_set(conn: Connection, first_tree_id: int) -> float | None:
    counts = conn.scalars(
        select(Message.ranking_count).where(
            Message.tree_id > first_tree_id, Message.ranking_settled, Message.ranking_count > 0
        )
    ).all()
    return _mean([float(c) for c in counts])
