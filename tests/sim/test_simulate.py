"""The simulated crowd finishes its trees through the real service, and the invariant
checker notices a broken rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from hedgerow.cli import cli as cli_app
from hedgerow.models import Label, Message
from hedgerow.sim.invariants import check_invariants
from hedgerow.sim.simulate import simulate
from tests.factories import make_user
from tests.growth.factories import make_tree, override_settings


def test_a_small_crowd_finishes_every_drawn_tree_without_violations(
    committing_sessionmaker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, tree_goal_size=6, growing_trees_per_language=3)
    report = simulate(committing_sessionmaker, volunteers=24, prompts=6, seed=3)
    assert report.violations == []
    assert report.prompts_written == 6
    assert report.drawn > 0
    assert report.ready_share_of_drawn >= 0.95
    assert not report.stalled
    assert sum(report.states.values()) == 6
    # The crowd really did every kind of work.
    done_kinds = {
        outcome.split(":")[1] for outcome in report.outcomes if outcome.startswith("done")
    }
    assert {
        "write_prompt",
        "reply_assistant",
        "reply_prompter",
        "review_prompt",
        "review_assistant_reply",
        "rank_assistant_replies",
    } <= done_kinds


def test_simulate_command_prints_states_and_exits_zero(
    committing_sessionmaker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, tree_goal_size=4, growing_trees_per_language=2)
    result = CliRunner().invoke(
        cli_app, ["simulate", "--volunteers", "12", "--prompts", "2", "--seed", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "ready_for_export" in result.output
    assert "All invariants hold." in result.output


def test_simulate_compares_policies_and_writes_the_yield_report(
    committing_sessionmaker: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A small run of each policy: all invariants hold, the report measures yield per 100
    tasks and accuracy against the truth, and fixed trees get exactly 3 reviews."""
    override_settings(monkeypatch, tree_goal_size=5, growing_trees_per_language=2)
    reports = {}
    for policy in ("fixed", "adaptive"):
        path = tmp_path / f"{policy}.json"
        arguments = ["--volunteers", "16", "--prompts", "3", "--seed", "4", "--policy", policy]
        result = CliRunner().invoke(cli_app, ["simulate", *arguments, "--json", str(path)])
        assert result.exit_code == 0, result.output
        assert f"Yield and quality ({policy} policy)" in result.output
        reports[policy] = json.loads(path.read_text())
    for policy, report in reports.items():
        assert report["policy"] == policy and report["violations"] == []
        found = report["yield"]
        assert found["ready_trees"] > 0
        assert found["tasks"] == sum(found["tasks_by_family"].values()) > 0
        assert found["per_100_tasks"]["sft_conversations"] == pytest.approx(
            100 * found["sft_conversations"] / found["tasks"], abs=0.01
        )
        assert 0 <= found["review_accuracy"] <= 1
    assert reports["fixed"]["yield"]["reviews_per_decided_message"] == 3
    assert reports["adaptive"]["yield"]["reviews_per_decided_message"] < 3


def test_invariant_checker_reports_a_self_review(db: Session) -> None:
    author = make_user(db)
    _tree, root = make_tree(db, author)
    assert check_invariants(db) == []
    db.add(
        Label(message_id=root.id, user_id=author.id, values={"spam": 0.0}, guideline_version="test")
    )
    db.flush()
    violations = check_invariants(db)
    assert any("nobody reviewed their own message" in v for v in violations)


def test_invariant_checker_reports_a_parent_over_max_children(db: Session) -> None:
    author, other = make_user(db), make_user(db)
    tree, root = make_tree(db, author, max_children=1)
    for n in range(2):
        db.add(
            Message(
                tree_id=tree.id,
                parent_id=root.id,
                author_id=other.id,
                role="assistant",
                text=f"reply {n}",
                text_sha256=f"{n:064d}",
                language="en",
                depth=1,
            )
        )
    db.flush()
    violations = check_invariants(db)
    assert any("no parent over max children" in v for v in violations)
