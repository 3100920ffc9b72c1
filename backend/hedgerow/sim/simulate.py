"""A simulated crowd driving the real growth service, and the invariants it must keep.

`hedgerow simulate` runs it against the configured database: simulated volunteers (most
diligent, some strict about spam, some who skip a lot, a few trolls) write prompts, reply,
review and rank through the same service functions the API calls, each step in its own
transaction, until the drawn trees finish. Then it counts trees per state and checks the
invariants over the trees it created.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.accounts.passwords import hash_password
from hedgerow.config import get_settings
from hedgerow.errors import AppError
from hedgerow.growth import service
from hedgerow.growth.schemas import Submission, TaskView
from hedgerow.models import Tree, TreeState, User

TERMINAL_STATES = (TreeState.ready_for_export, TreeState.aborted_low_grade, TreeState.halted)
PERSONAS = ("diligent", "strict", "skipper", "troll")
PERSONA_WEIGHTS = (0.75, 0.10, 0.10, 0.05)
# Check for the end of the run (and run the lottery job) every this many steps: often
# enough to stop promptly, rare enough not to dominate the run.
HOUSEKEEPING_EVERY = 25


@dataclass
class Volunteer:
    user_id: int
    persona: str


@dataclass
class SimulationReport:
    volunteers: int
    prompts_written: int
    steps: int
    outcomes: Counter[str]
    states: dict[str, int]
    drawn: int
    drawn_ready: int
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stalled: bool = False

    @property
    def ready_share_of_drawn(self) -> float:
        return self.drawn_ready / self.drawn if self.drawn else 0.0


class Crowd:
    """The simulated volunteers and how each one answers a task."""

    def __init__(self, volunteers: list[Volunteer], rng: random.Random) -> None:
        self.volunteers = volunteers
        self.rng = rng
        self.trolls = {v.user_id for v in volunteers if v.persona == "troll"}
        self.serial = 0

    def _text(self, volunteer: Volunteer, what: str) -> str:
        self.serial += 1
        if volunteer.persona == "troll":
            return f"BUY CHEAP STUFF NOW!!! visit my page {self.serial} {self.rng.random():.6f}"
        return (
            f"{what} {self.serial} from volunteer {volunteer.user_id}: a thoughtful message "
            f"about hedgerows and the wildlife that lives in them ({self.rng.random():.6f})."
        )

    def wants_to_skip(self, volunteer: Volunteer) -> bool:
        chance = {"skipper": 0.3, "troll": 0.1}.get(volunteer.persona, 0.02)
        return self.rng.random() < chance

    def answer(self, volunteer: Volunteer, task: TaskView, author_of: dict[int, int]) -> Submission:
        kind = task.kind
        if kind == "write_prompt":
            return Submission(text=self._text(volunteer, "Prompt"), category="open_qa")
        if kind.startswith("reply_"):
            return Submission(text=self._text(volunteer, "Reply"))
        if kind.startswith("review_"):
            target = task.conversation[-1]
            by_troll = author_of.get(target.id) in self.trolls
            if volunteer.persona == "troll":
                spam = float(self.rng.random() < 0.5)
            elif by_troll:
                spam = float(self.rng.random() < 0.9)
            else:
                spam = float(self.rng.random() < (0.08 if volunteer.persona == "strict" else 0.02))
            labels = {
                "spam": spam,
                "lang_mismatch": 0.0,
                "quality": self.rng.choice([0.0, 0.25, 0.5, 0.75, 1.0]),
            }
            return Submission(labels=labels, mode="quick")
        if kind.startswith("rank_"):
            ids = [reply.id for reply in task.replies]
            self.rng.shuffle(ids)
            return Submission(ranking=ids)
        raise ValueError(f"unknown task kind {kind}")


def _create_volunteers(
    maker: sessionmaker[Session], count: int, rng: random.Random, run_tag: str
) -> list[Volunteer]:
    password_hash = hash_password(f"simulated-{run_tag}")
    now = datetime.now(UTC)
    volunteers: list[Volunteer] = []
    with maker.begin() as db:
        for index in range(count):
            persona = rng.choices(PERSONAS, PERSONA_WEIGHTS)[0]
            user = User(
                username=f"sim{run_tag}_{index}",
                display_name=f"Simulated {index}",
                password_hash=password_hash,
                tos_accepted_at=now,
            )
            db.add(user)
            db.flush()
            volunteers.append(Volunteer(user.id, persona))
    return volunteers


def _open_trees(db: Session, first_tree_id: int) -> int:
    return (
        db.scalar(
            select(func.count()).where(Tree.id > first_tree_id, Tree.state.not_in(TERMINAL_STATES))
        )
        or 0
    )


def simulate(
    maker: sessionmaker[Session],
    *,
    volunteers: int,
    prompts: int,
    seed: int,
    language: str = "en",
    max_steps: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationReport:
    """Run the crowd until every tree it created is finished (or nothing moves)."""
    started = time.perf_counter()
    rng = random.Random(seed)
    run_tag = f"{seed}x{int(time.time() * 1000) % 10**8}"
    with maker() as db:
        first_tree_id = db.scalar(select(func.coalesce(func.max(Tree.id), 0))) or 0
    crowd = Crowd(_create_volunteers(maker, volunteers, rng, run_tag), rng)
    max_steps = max_steps or 200 * prompts * get_settings().tree_goal_size
    outcomes: Counter[str] = Counter()
    author_of: dict[int, int] = {}
    prompts_written = 0
    idle_streak = 0
    stalled = False
    step = 0
    for step in range(1, max_steps + 1):
        volunteer = rng.choice(crowd.volunteers)
        want_prompt = prompts_written < prompts and rng.random() < 0.3
        outcome = _one_step(
            maker,
            crowd,
            volunteer,
            want_prompt,
            prompts_written < prompts,
            language,
            author_of,
            rng,
        )
        outcomes[outcome] += 1
        if outcome == "done:write_prompt":
            prompts_written += 1
        idle_streak = idle_streak + 1 if outcome.startswith("none") else 0
        if step % HOUSEKEEPING_EVERY == 0:
            with maker.begin() as db:
                service.top_up_lotteries(db, rng=rng, now=datetime.now(UTC))
            with maker() as db:
                open_trees = _open_trees(db, first_tree_id)
            if progress:
                progress(step, open_trees)
            if prompts_written >= prompts and open_trees == 0:
                break
        if idle_streak > 4 * volunteers:
            # Nobody can do anything: report it rather than spin.
            stalled = prompts_written < prompts or _has_open_trees(maker, first_tree_id)
            if stalled:
                break
    with maker() as db:
        report = SimulationReport(
            volunteers=volunteers,
            prompts_written=prompts_written,
            steps=step,
            outcomes=outcomes,
            states=_states(db, first_tree_id),
            drawn=_count(db, first_tree_id, "drawn_at IS NOT NULL"),
            drawn_ready=_count(
                db, first_tree_id, "drawn_at IS NOT NULL AND state = 'ready_for_export'"
            ),
            violations=check_invariants(db, first_tree_id),
            stalled=stalled,
        )
    report.seconds = time.perf_counter() - started
    return report


def _has_open_trees(maker: sessionmaker[Session], first_tree_id: int) -> bool:
    with maker() as db:
        return _open_trees(db, first_tree_id) > 0


def _one_step(
    maker: sessionmaker[Session],
    crowd: Crowd,
    volunteer: Volunteer,
    want_prompt: bool,
    may_write_prompt: bool,
    language: str,
    author_of: dict[int, int],
    rng: random.Random,
) -> str:
    """One volunteer asks for a task (one transaction) and answers it (another)."""
    try:
        with maker.begin() as db:
            user = db.get_one(User, volunteer.user_id)
            try:
                task = service.request_task(
                    db,
                    user,
                    language=language,
                    kind="write_prompt" if want_prompt else "any",
                    review_mode="quick",
                    rng=rng,
                )
            except AppError as error:
                if error.code != "no_task_available" or not want_prompt:
                    raise
                task = service.request_task(
                    db, user, language=language, kind="any", review_mode="quick", rng=rng
                )
            for message in [*task.conversation, *task.replies]:
                author_of.setdefault(message.id, -1)
            _learn_authors(db, author_of)
    except AppError as error:
        return f"none:{error.code}"
    try:
        with maker.begin() as db:
            user = db.get_one(User, volunteer.user_id)
            if task.kind == "write_prompt" and not may_write_prompt:
                # The run's prompts are written; only "any" offers more (nothing else left).
                service.skip_task(db, user, task.id, "simulation has its prompts", rng=rng)
                return "none:prompts_written"
            if crowd.wants_to_skip(volunteer):
                service.skip_task(db, user, task.id, "simulated skip", rng=rng)
                return f"skip:{task.kind}"
            result = service.submit_task(
                db, user, task.id, crowd.answer(volunteer, task, author_of), rng=rng
            )
            if task.kind == "write_prompt" or task.kind.startswith("reply_"):
                author_of[result.message_id] = volunteer.user_id
            _maybe_red_flag(db, crowd, volunteer, task, author_of, rng)
            return f"done:{task.kind}"
    except AppError as error:
        return f"error:{error.code}"


def _learn_authors(db: Session, author_of: dict[int, int]) -> None:
    unknown = [message_id for message_id, author in author_of.items() if author == -1]
    if not unknown:
        return
    rows = db.execute(
        text("SELECT id, author_id FROM message WHERE id = ANY(:ids)"), {"ids": unknown}
    )
    for message_id, author_id in rows:
        author_of[message_id] = author_id


def _maybe_red_flag(
    db: Session,
    crowd: Crowd,
    volunteer: Volunteer,
    task: TaskView,
    author_of: dict[int, int],
    rng: random.Random,
) -> None:
    """Honest volunteers sometimes red-flag a troll's message they saw in the conversation."""
    if volunteer.persona == "troll":
        return
    for message in task.conversation:
        if author_of.get(message.id) in crowd.trolls and rng.random() < 0.5:
            user = db.get_one(User, volunteer.user_id)
            try:
                with db.begin_nested():
                    service.record_red_flag(db, user, message.id)
            except AppError:
                pass  # already flagged by this volunteer, or gone: nothing to do


def _states(db: Session, first_tree_id: int) -> dict[str, int]:
    rows = db.execute(
        select(Tree.state, func.count()).where(Tree.id > first_tree_id).group_by(Tree.state)
    )
    return {state: count for state, count in rows}


def _count(db: Session, first_tree_id: int, condition: str) -> int:
    return (
        db.scalar(
            text(f"SELECT count(*) FROM tree WHERE id > :first AND {condition}"),  # noqa: S608
            {"first": first_tree_id},
        )
        or 0
    )


# Each invariant is a query returning offending rows over the trees with id > :first.
INVARIANTS: dict[str, str] = {
    "roles alternate and depth follows the parent": """
        SELECT c.id FROM message c JOIN message p ON p.id = c.parent_id
        JOIN tree t ON t.id = c.tree_id
        WHERE t.id > :first AND (c.role = p.role OR c.depth <> p.depth + 1)
        UNION ALL
        SELECT m.id FROM message m JOIN tree t ON t.id = m.tree_id
        WHERE t.id > :first AND m.parent_id IS NULL AND m.role <> 'prompter'
    """,
    "depth stays below max depth": """
        SELECT m.id FROM message m JOIN tree t ON t.id = m.tree_id
        WHERE t.id > :first AND m.depth >= t.max_depth
    """,
    "no parent over max children": """
        SELECT p.id FROM message p JOIN tree t ON t.id = p.tree_id
        JOIN message c ON c.parent_id = p.id AND c.review_state <> 'rejected' AND NOT c.deleted
        WHERE t.id > :first GROUP BY p.id, t.max_children HAVING count(*) > t.max_children
    """,
    "a tree never grows past its goal": """
        SELECT t.id FROM tree t JOIN message m ON m.tree_id = t.id
        WHERE t.id > :first AND m.review_state = 'accepted' AND NOT m.deleted
        GROUP BY t.id, t.goal_size HAVING count(*) > t.goal_size
    """,
    "nobody reviewed their own message": """
        SELECT l.id FROM label l JOIN message m ON m.id = l.message_id
        WHERE m.tree_id > :first AND l.user_id = m.author_id
    """,
    "nobody ranked their own message": """
        SELECT r.id FROM ranking r JOIN message p ON p.id = r.parent_message_id
        WHERE p.tree_id > :first AND (r.user_id = p.author_id OR EXISTS (
            SELECT 1 FROM message c WHERE c.parent_id = p.id AND c.author_id = r.user_id))
    """,
    "no message reviewed more than the configured number of times": """
        SELECT m.id FROM message m JOIN tree t ON t.id = m.tree_id
        JOIN label l ON l.message_id = m.id
        WHERE t.id > :first GROUP BY m.id, t.reviews_per_message
        HAVING count(*) > t.reviews_per_message
    """,
    "every message of a ready tree fully reviewed": """
        SELECT m.id FROM message m JOIN tree t ON t.id = m.tree_id
        WHERE t.id > :first AND t.state = 'ready_for_export' AND NOT m.deleted
          AND (m.review_state = 'pending' OR (
               SELECT count(*) FROM label l WHERE l.message_id = m.id) <> t.reviews_per_message)
    """,
    "every sibling set of a ready tree ranked exactly as configured, consensus stored": """
        SELECT p.id FROM message p JOIN tree t ON t.id = p.tree_id
        WHERE t.id > :first AND t.state = 'ready_for_export' AND NOT p.deleted
          AND (SELECT count(*) FROM message c WHERE c.parent_id = p.id AND NOT c.deleted
               AND c.review_state = 'accepted' AND c.role = 'assistant') >= 2
          AND ((SELECT count(*) FROM ranking r WHERE r.parent_message_id = p.id)
                 <> t.rankings_per_sibling_set
               OR EXISTS (SELECT 1 FROM message c WHERE c.parent_id = p.id AND NOT c.deleted
                   AND c.review_state = 'accepted' AND c.role = 'assistant'
                   AND c.consensus_rank IS NULL))
    """,
    "no two live leases on one item and user": """
        SELECT user_id FROM task WHERE state = 'leased'
        GROUP BY user_id HAVING count(*) > 1
    """,
}


def check_invariants(db: Session, first_tree_id: int = 0) -> list[str]:
    """Human-readable violations; empty when everything holds."""
    violations: list[str] = []
    for name, query in INVARIANTS.items():
        offenders = [row[0] for row in db.execute(text(query), {"first": first_tree_id})]
        if offenders:
            violations.append(f"{name}: {len(offenders)} offending rows, e.g. {offenders[:5]}")
    limit = get_settings().growing_trees_per_language
    rows = db.execute(
        text(
            "SELECT language, count(*) FROM tree WHERE state = 'growing' GROUP BY language "
            "HAVING count(*) > :limit"
        ),
        {"limit": limit},
    )
    for language, count in rows:
        violations.append(f"growing trees in {language}: {count} > limit {limit}")
    return violations
