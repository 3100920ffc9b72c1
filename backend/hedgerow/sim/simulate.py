"""A simulated crowd driving the real growth service, with the latent truth of its work.

`hedgerow simulate` runs it against the configured database: simulated volunteers (see
sim/crowd.py for their personas) write prompts, reply, review and rank through the same
service functions the API calls, each step in its own transaction, until the drawn trees
finish. Then it counts trees per state, checks the invariants over the trees it created and
measures the training data per 100 tasks and its accuracy against the truth
(sim/yield_report.py), under the growth policy it was given.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.accounts.passwords import hash_password
from hedgerow.config import get_settings
from hedgerow.errors import AppError
from hedgerow.growth import service
from hedgerow.growth.schemas import TaskView
from hedgerow.models import Tree, TreeState, User
from hedgerow.sim.crowd import Crowd, Volunteer
from hedgerow.sim.invariants import check_invariants
from hedgerow.sim.yield_report import YieldReport, measure

__all__ = ["POLICIES", "SimulationReport", "check_invariants", "policy_settings", "simulate"]

TERMINAL_STATES = (TreeState.ready_for_export, TreeState.aborted_low_grade, TreeState.halted)
# Check for the end of the run (and run the lottery job) every this many steps: often
# enough to stop promptly, rare enough not to dominate the run.
HOUSEKEEPING_EVERY = 25

# The growth policies a simulation can compare. "fixed" is Open-Assistant's production
# policy: 3 reviews per message, 3 rankings per sibling set, one prompter reply per assistant
# reply and the lonely-sibling preference 0.75. "adaptive" (the default) decides reviews and
# settles rankings as soon as the evidence is confident. "legacy" is Hedgerow's shape before
# both: fixed redundancy, and every parent takes up to max_children replies.
POLICIES: dict[str, dict[str, Any]] = {
    "adaptive": {
        "growth_policy": "adaptive",
        "prompter_replies_per_assistant": 1,
        "lonely_sibling_preference": 0.75,
    },
    "fixed": {
        "growth_policy": "fixed",
        "reviews_per_message": 3,
        "rankings_per_sibling_set": 3,
        "prompter_replies_per_assistant": 1,
        "lonely_sibling_preference": 0.75,
    },
    "legacy": {
        "growth_policy": "fixed",
        "reviews_per_message": 3,
        "rankings_per_sibling_set": 3,
        "prompter_replies_per_assistant": None,  # = tree_max_children
        "lonely_sibling_preference": 0.0,
    },
}


def policy_settings(policy: str) -> dict[str, Any]:
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; use one of {', '.join(POLICIES)}")
    values = dict(POLICIES[policy])
    if values.get("prompter_replies_per_assistant") is None:
        values["prompter_replies_per_assistant"] = get_settings().tree_max_children
    return values


@contextmanager
def applied_policy(policy: str | None) -> Iterator[None]:
    """The settings of `policy` for the trees created meanwhile (they copy them), restored
    afterwards. The simulation is the only user of these settings while it runs."""
    if policy is None:
        yield
        return
    settings = get_settings()
    values = policy_settings(policy)
    saved = {name: getattr(settings, name) for name in values}
    for name, value in values.items():
        setattr(settings, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(settings, name, value)


@dataclass
class SimulationReport:
    volunteers: int
    prompts_written: int
    steps: int
    outcomes: Counter[str]
    states: dict[str, int]
    drawn: int
    drawn_ready: int
    policy: str
    yield_report: YieldReport | None = None
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stalled: bool = False

    @property
    def ready_share_of_drawn(self) -> float:
        return self.drawn_ready / self.drawn if self.drawn else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "volunteers": self.volunteers,
            "prompts_written": self.prompts_written,
            "steps": self.steps,
            "seconds": round(self.seconds, 2),
            "stalled": self.stalled,
            "states": self.states,
            "drawn": self.drawn,
            "drawn_ready": self.drawn_ready,
            "outcomes": dict(self.outcomes.most_common()),
            "violations": self.violations,
            "yield": self.yield_report.as_dict() if self.yield_report else None,
        }


def _create_volunteers(
    maker: sessionmaker[Session], count: int, rng: random.Random, run_tag: str
) -> list[Volunteer]:
    password_hash = hash_password(f"simulated-{run_tag}")
    now = datetime.now(UTC)
    volunteers: list[Volunteer] = []
    with maker.begin() as db:
        for index in range(count):
            persona = Crowd.draw_persona(rng)
            user = User(
                username=f"sim{run_tag}_{index}",
                display_name=f"Simulated {persona.name} {index}",
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


@dataclass
class _Run:
    """The state of one simulation while it runs."""

    maker: sessionmaker[Session]
    crowd: Crowd
    rng: random.Random
    language: str
    prompts: int
    first_tree_id: int
    outcomes: Counter[str] = field(default_factory=Counter)
    prompts_written: int = 0

    def step(self, volunteer: Volunteer) -> str:
        want_prompt = self.prompts_written < self.prompts and self.rng.random() < 0.3
        outcome = _one_step(self, volunteer, want_prompt)
        self.outcomes[outcome] += 1
        if outcome == "done:write_prompt":
            self.prompts_written += 1
        return outcome

    def housekeeping(self) -> int:
        """The periodic lottery job; returns the run's trees still open."""
        with self.maker.begin() as db:
            service.top_up_lotteries(db, rng=self.rng, now=datetime.now(UTC))
        with self.maker() as db:
            return _open_trees(db, self.first_tree_id)


def simulate(
    maker: sessionmaker[Session],
    *,
    volunteers: int,
    prompts: int,
    seed: int,
    language: str = "en",
    policy: str | None = None,
    max_steps: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationReport:
    """Run the crowd until every tree it created is finished (or nothing moves), under
    `policy` (one of POLICIES; None: the configured settings as they are)."""
    started = time.perf_counter()
    rng = random.Random(seed)
    run_tag = f"{seed}x{int(time.time() * 1000) % 10**8}"
    with maker() as db:
        first_tree_id = db.scalar(select(func.coalesce(func.max(Tree.id), 0))) or 0
    crowd = Crowd(_create_volunteers(maker, volunteers, rng, run_tag), rng)
    run = _Run(maker, crowd, rng, language, prompts, first_tree_id)
    with applied_policy(policy):
        steps, stalled = _drive(run, volunteers, max_steps, progress)
        policy_name = policy or get_settings().growth_policy
    with maker() as db:
        report = SimulationReport(
            volunteers=volunteers,
            prompts_written=run.prompts_written,
            steps=steps,
            outcomes=run.outcomes,
            states=_states(db, first_tree_id),
            drawn=_count(db, first_tree_id, "drawn_at IS NOT NULL"),
            drawn_ready=_count(
                db, first_tree_id, "drawn_at IS NOT NULL AND state = 'ready_for_export'"
            ),
            policy=policy_name,
            violations=check_invariants(db, first_tree_id),
            stalled=stalled,
        )
        report.yield_report = measure(db.connection(), first_tree_id, run.outcomes, crowd.truth)
    report.seconds = time.perf_counter() - started
    return report


def _drive(
    run: _Run,
    volunteers: int,
    max_steps: int | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[int, bool]:
    """Step until every tree the run made is finished; returns (steps, stalled)."""
    max_steps = max_steps or 200 * run.prompts * get_settings().tree_goal_size
    idle_streak = 0
    step = 0
    for step in range(1, max_steps + 1):
        outcome = run.step(run.rng.choice(run.crowd.volunteers))
        idle_streak = idle_streak + 1 if outcome.startswith("none") else 0
        if step % HOUSEKEEPING_EVERY == 0:
            open_trees = run.housekeeping()
            if progress:
                progress(step, open_trees)
            if run.prompts_written >= run.prompts and open_trees == 0:
                return step, False
        if idle_streak > 4 * volunteers:
            # Nobody can do anything: report it rather than spin.
            with run.maker() as db:
                open_now = _open_trees(db, run.first_tree_id) > 0
            if run.prompts_written < run.prompts or open_now:
                return step, True
    return step, False


def _request(run: _Run, db: Session, user: User, want_prompt: bool) -> TaskView:
    try:
        return service.request_task(
            db,
            user,
            language=run.language,
            kind="write_prompt" if want_prompt else "any",
            review_mode="quick",
            rng=run.rng,
        )
    except AppError as error:
        if error.code != "no_task_available" or not want_prompt:
            raise
    return service.request_task(
        db, user, language=run.language, kind="any", review_mode="quick", rng=run.rng
    )


def _one_step(run: _Run, volunteer: Volunteer, want_prompt: bool) -> str:
    """One volunteer asks for a task (one transaction) and answers it (another)."""
    crowd = run.crowd
    try:
        with run.maker.begin() as db:
            task = _request(run, db, db.get_one(User, volunteer.user_id), want_prompt)
    except AppError as error:
        return f"none:{error.code}"
    try:
        with run.maker.begin() as db:
            user = db.get_one(User, volunteer.user_id)
            if task.kind == "write_prompt" and run.prompts_written >= run.prompts:
                # The run's prompts are written; only "any" offers more (nothing else left).
                service.skip_task(db, user, task.id, "simulation has its prompts", rng=run.rng)
                return "none:prompts_written"
            if crowd.wants_to_skip(volunteer):
                service.skip_task(db, user, task.id, "simulated skip", rng=run.rng)
                return f"skip:{task.kind}"
            result = service.submit_task(
                db, user, task.id, crowd.answer(volunteer, task), rng=run.rng
            )
            if task.kind == "write_prompt" or task.kind.startswith("reply_"):
                crowd.record_written(result.message_id)
            _red_flag(db, user, crowd.red_flags(volunteer, task))
            return f"done:{task.kind}"
    except AppError as error:
        return f"error:{error.code}"


def _red_flag(db: Session, user: User, message_ids: list[int]) -> None:
    for message_id in message_ids:
        try:
            with db.begin_nested():
                service.record_red_flag(db, user, message_id)
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
