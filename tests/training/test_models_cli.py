"""`hedgerow models list|promote|rollback`: the registry from the command line, audited
like the web's promote and rollback (they share the service functions)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from hedgerow.cli import cli
from hedgerow.models import AuditEvent, ModelVersion, ModelVersionStatus, Role
from tests.factories import make_user
from tests.training.test_registry import NAME, make_release, make_version

# Wide enough that the list's table is not wrapped.
runner = CliRunner(env={"COLUMNS": "200"})


def _statuses(maker: sessionmaker[Session], *ids: int) -> list[str]:
    with maker() as db:
        return [db.get_one(ModelVersion, version_id).status for version_id in ids]


def _events(maker: sessionmaker[Session]) -> list[AuditEvent]:
    with maker() as db:
        return list(db.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_models_list_shows_each_version_with_its_status(
    committing_sessionmaker: sessionmaker[Session],
) -> None:
    empty = runner.invoke(cli, ["models", "list"])
    with committing_sessionmaker.begin() as db:
        release = make_release(db)
        ready = make_version(db, release)
        failed = make_version(db, release, ModelVersionStatus.failed)
        ready_id, failed_id = ready.id, failed.id

    listed = runner.invoke(cli, ["models", "list"])

    assert empty.exit_code == 0, empty.output
    assert "No model versions yet" in empty.output
    assert listed.exit_code == 0, listed.output
    lines = {line.split()[0]: line for line in listed.output.splitlines() if NAME in line}
    assert set(lines) == {str(ready_id), str(failed_id)}
    assert "ready" in lines[str(ready_id)] and "1.5000" in lines[str(ready_id)]
    assert "failed" in lines[str(failed_id)]


def test_models_promote_and_rollback_serve_and_audit_like_the_web(
    committing_sessionmaker: sessionmaker[Session],
) -> None:
    maker = committing_sessionmaker
    with maker.begin() as db:
        admin = make_user(db, username="ops", role=Role.admin)
        release = make_release(db)
        first, second = make_version(db, release), make_version(db, release)
        admin_id, first_id, second_id = admin.id, first.id, second.id

    promoted_first = runner.invoke(cli, ["models", "promote", str(first_id), "--by", "ops"])
    promoted_second = runner.invoke(cli, ["models", "promote", str(second_id)])

    assert promoted_first.exit_code == 0, promoted_first.output
    assert f"{NAME} v{first_id} is serving" in promoted_first.output
    assert promoted_second.exit_code == 0, promoted_second.output
    assert f"v{first_id} is ready again" in promoted_second.output
    assert _statuses(maker, first_id, second_id) == ["ready", "serving"]

    rolled = runner.invoke(cli, ["models", "rollback", "--by", "ops"])

    assert rolled.exit_code == 0, rolled.output
    assert f"{NAME} v{first_id} is serving again" in rolled.output
    assert _statuses(maker, first_id, second_id) == ["serving", "ready"]
    events = _events(maker)
    assert [(event.action, event.target_id) for event in events] == [
        ("model.promote", first_id),
        ("model.promote", second_id),
        ("model.rollback", first_id),
    ]
    # The admin named by --by acts; without it, the command line (no actor) does.
    assert [event.actor_id for event in events] == [admin_id, None, admin_id]
    assert [event.reason for event in events] == [None, "command line", None]
    assert (events[1].before, events[1].after) == ({"serving": first_id}, {"serving": second_id})


def test_models_commands_refuse_bad_input_and_change_nothing(
    committing_sessionmaker: sessionmaker[Session],
) -> None:
    maker = committing_sessionmaker
    with maker.begin() as db:
        make_user(db, username="volunteer1")
        release = make_release(db)
        queued = make_version(db, release, ModelVersionStatus.queued)
        ready = make_version(db, release)
        queued_id, ready_id = queued.id, ready.id

    not_ready = runner.invoke(cli, ["models", "promote", str(queued_id)])
    unknown = runner.invoke(cli, ["models", "promote", "987654"])
    not_an_admin = runner.invoke(cli, ["models", "promote", str(ready_id), "--by", "volunteer1"])
    nobody = runner.invoke(cli, ["models", "promote", str(ready_id), "--by", "nobody"])
    nothing_serving = runner.invoke(cli, ["models", "rollback"])
    not_a_number = runner.invoke(cli, ["models", "promote", "v12"])

    for result, code in (
        (not_ready, "version_not_ready"),
        (unknown, "not_found"),
        (not_an_admin, "not_an_admin"),
        (nobody, "not_found"),
        (nothing_serving, "nothing_serving"),
    ):
        assert result.exit_code == 1, result.output
        assert code in result.output
    assert not_a_number.exit_code == 2  # a usage error, before anything runs
    assert _statuses(maker, queued_id, ready_id) == ["queued", "ready"]
    assert _events(maker) == []
