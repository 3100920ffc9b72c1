"""The hot paths use indexes, not scans, on a corpus large enough for the planner to care.

Every statement that a task request and a submission execute is captured as it reaches the
database and EXPLAINed with its real parameters, so a new query added to the hot path is
checked too.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.growth import service
from hedgerow.growth.schemas import Submission, TaskView
from hedgerow.models import User, VolunteerReliability
from hedgerow.sim.corpus import seed
from tests.factories import make_user

# message and task grow with every contribution: a scan of either on the hot path is a
# cost that grows with the corpus. Other tables grow more slowly (a tree holds ~10 messages);
# below this many rows the planner rightly prefers a scan, so they are held to it only above.
ALWAYS_INDEXED = {"message", "task"}
SMALL_TABLE_ROWS = 20_000
HOT_PATH_KINDS = (
    "review_prompt",
    "review_assistant_reply",
    "reply_prompter",
    "rank_assistant_replies",
    "write_prompt",
)


@contextmanager
def captured_statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT", "DELETE", "WITH")):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def scans_on_large_tables(conn: Connection, statement: str, parameters: Any) -> list[str]:
    plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar_one()
    if isinstance(plan, str):
        plan = json.loads(plan)
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("Node Type") == "Seq Scan":
            relation = node["Relation Name"]
            rows = conn.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = CAST(:r AS regclass)"),
                {"r": f'"{relation}"'},
            ).scalar_one()
            if relation in ALWAYS_INDEXED or rows > SMALL_TABLE_ROWS:
                found.append(f"Seq Scan on {relation} ({int(rows)} rows)")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def _answer(task: TaskView) -> Submission:
    if task.kind == "write_prompt":
        return Submission(text=f"A plan-checked prompt {random.random()}", category="open_qa")
    if task.kind.startswith("reply_"):
        return Submission(text=f"A plan-checked reply {random.random()}")
    if task.kind.startswith("review_"):
        return Submission(labels={"spam": 0.0, "lang_mismatch": 0.0, "quality": 0.5}, mode="quick")
    return Submission(ranking=[reply.id for reply in task.replies])


@pytest.mark.slow
def test_task_request_and_submit_use_indexes_on_a_large_corpus(
    committing_sessionmaker: sessionmaker[Session], engine: Engine, database_url: str
) -> None:
    stats = seed(database_url, messages=30_000, users=3_000, seed_value=11)
    assert stats["messages"] >= 30_000
    with committing_sessionmaker.begin() as db:
        volunteer_id = make_user(db).id

    checked: dict[str, list[str]] = {}
    reviewed_id: int | None = None
    for kind in HOT_PATH_KINDS:
        with captured_statements(engine) as statements:
            with committing_sessionmaker.begin() as db:
                user = db.get_one(User, volunteer_id)
                task = service.request_task(db, user, language="en", kind=kind)
            with committing_sessionmaker.begin() as db:
                user = db.get_one(User, volunteer_id)
                service.submit_task(db, user, task.id, _answer(task))
        if kind == "review_assistant_reply":
            reviewed_id = task.target_message_id
        _check_plans(engine, kind, statements, checked)

    # A red flag from a trusted volunteer: the "was it shown to them" query runs too.
    assert reviewed_id is not None
    with committing_sessionmaker.begin() as db:
        # (The reviews above may have made the volunteer's row already.)
        db.merge(VolunteerReliability(user_id=volunteer_id, reviews_settled=20, reviews_agreed=20))
    with captured_statements(engine) as statements, committing_sessionmaker.begin() as db:
        user = db.get_one(User, volunteer_id)
        assert service.record_red_flag(db, user, reviewed_id).counted
    _check_plans(engine, "red_flag", statements, checked)
    assert checked == {}, json.dumps(checked, indent=2)


def _check_plans(
    engine: Engine, kind: str, statements: list[tuple[str, Any]], checked: dict[str, list[str]]
) -> None:
    assert statements, f"no SQL captured for {kind}"
    with engine.connect() as conn:
        for statement, parameters in statements:
            problems = scans_on_large_tables(conn, statement, parameters)
            if problems:
                checked.setdefault(kind, []).append(f"{problems}: {statement[:300]}")
