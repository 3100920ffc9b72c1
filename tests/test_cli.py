"""The `hedgerow` admin commands, run against a database of their own (they commit)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from hedgerow import migrate
from hedgerow.accounts.passwords import verify_password
from hedgerow.cli import cli
from hedgerow.config import get_settings
from hedgerow.db import get_engine, get_sessionmaker, make_engine
from hedgerow.models import AuditEvent, Role, User
from tests.factories import make_user
from tests.ops.databases import create_empty_database, drop_database

runner = CliRunner()
PASSWORD = "a long enough password"


def _point_at(url: str | None) -> None:
    if url is None:
        os.environ.pop("DATABASE_URL", None)
    else:
        os.environ["DATABASE_URL"] = url
    for cached in (get_settings, get_engine, get_sessionmaker):
        cached.cache_clear()


@pytest.fixture
def empty_database_url() -> Iterator[str]:
    """The CLI reads DATABASE_URL like any deployment; point it at a fresh database."""
    previous = os.environ.get("DATABASE_URL")
    url = create_empty_database("cli")
    _point_at(url)
    yield url
    get_engine().dispose()
    _point_at(previous)
    drop_database("cli")


@pytest.fixture
def cli_engine(empty_database_url: str) -> Iterator[Engine]:
    migrate.upgrade(empty_database_url)
    engine = make_engine(empty_database_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def _user(engine: Engine, username: str) -> User | None:
    with Session(engine) as db:
        return db.scalar(select(User).where(User.username == username))


def test_migrate_builds_the_schema_on_an_empty_database(empty_database_url: str) -> None:
    result = runner.invoke(cli, ["migrate"])
    assert result.exit_code == 0, result.output
    engine = make_engine(empty_database_url, pool_size=1, max_overflow=0)
    assert "user" in inspect(engine).get_table_names()
    engine.dispose()


def test_migrate_says_which_migrations_it_applied(empty_database_url: str) -> None:
    scripts = list(ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions())
    first = runner.invoke(cli, ["migrate"], terminal_width=200)
    assert first.exit_code == 0, first.output
    assert f"Applied {len(scripts)} migrations" in first.output
    for script in scripts:
        assert script.revision in first.output
    assert "up to date" not in first.output

    again = runner.invoke(cli, ["migrate"], terminal_width=200)
    assert again.exit_code == 0, again.output
    assert "already up to date" in again.output and "Applied" not in again.output
    assert scripts[0].revision in again.output  # the head it is at


def test_create_admin_creates_an_admin_who_accepted_the_terms(cli_engine: Engine) -> None:
    result = runner.invoke(cli, ["create-admin", "--username", "root", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    admin = _user(cli_engine, "root")
    assert admin is not None
    assert admin.role == Role.admin.value
    assert admin.tos_accepted_at is not None
    assert verify_password(admin.password_hash, PASSWORD)


def test_create_admin_prompts_for_a_password_twice_when_absent(cli_engine: Engine) -> None:
    result = runner.invoke(
        cli, ["create-admin", "--username", "root"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden input
    admin = _user(cli_engine, "root")
    assert admin is not None
    assert verify_password(admin.password_hash, PASSWORD)


def test_create_admin_refuses_a_taken_username(cli_engine: Engine) -> None:
    with Session(cli_engine) as db, db.begin():
        make_user(db, username="root")
    result = runner.invoke(cli, ["create-admin", "--username", "ROOT", "--password", PASSWORD])
    assert result.exit_code == 1
    assert "username_taken" in result.output
    with Session(cli_engine) as db:
        assert db.scalar(select(func.count()).select_from(User)) == 1
        assert db.scalar(select(User.role)) == Role.volunteer.value


@pytest.mark.parametrize(
    ("username", "password", "code"),
    [("root", "short", "weak_password"), ("bad\x07name", PASSWORD, "invalid_username")],
)
def test_create_admin_rejects_bad_input_and_creates_nothing(
    cli_engine: Engine, username: str, password: str, code: str
) -> None:
    result = runner.invoke(cli, ["create-admin", "--username", username, "--password", password])
    assert result.exit_code == 1
    assert code in result.output
    with Session(cli_engine) as db:
        assert db.scalar(select(func.count()).select_from(User)) == 0


def test_set_role_changes_the_role_and_audits_it(cli_engine: Engine) -> None:
    with Session(cli_engine) as db, db.begin():
        make_user(db, username="alice")
    result = runner.invoke(cli, ["set-role", "alice", "moderator"])
    assert result.exit_code == 0, result.output
    assert "moderator" in result.output
    with Session(cli_engine) as db:
        alice = db.scalar(select(User).where(User.username == "alice"))
        assert alice is not None
        assert alice.role == Role.moderator.value
        event = db.scalar(select(AuditEvent).where(AuditEvent.target_id == alice.id))
        assert event is not None
        assert event.actor_id is None  # the command line
        assert (event.before, event.after) == ({"role": "volunteer"}, {"role": "moderator"})


def test_set_role_for_an_unknown_user_fails(cli_engine: Engine) -> None:
    result = runner.invoke(cli, ["set-role", "nobody", "admin"])
    assert result.exit_code == 1
    assert "not_found" in result.output


def test_set_role_rejects_an_unknown_role_and_changes_nothing(cli_engine: Engine) -> None:
    with Session(cli_engine) as db, db.begin():
        make_user(db, username="alice")
    result = runner.invoke(cli, ["set-role", "alice", "overlord"])
    assert result.exit_code == 2  # a usage error, before anything runs
    alice = _user(cli_engine, "alice")
    assert alice is not None
    assert alice.role == Role.volunteer.value


def test_an_invalid_setting_stops_every_command_before_it_starts(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HEDGEROW_MAX_REVIEWS_PER_MESSAGE": "1",
        "HEDGEROW_REVIEW_CONFIDENCE": "1.5",
        "HEDGEROW_DATA_DIR": str(tmp_path / "data"),
    }
    finished = subprocess.run(
        [sys.executable, "-m", "hedgerow.cli", "up"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 2
    assert "HEDGEROW_MAX_REVIEWS_PER_MESSAGE" in finished.stderr
    assert "HEDGEROW_REVIEW_CONFIDENCE" in finished.stderr
    assert not (tmp_path / "data").exists()  # nothing was started
