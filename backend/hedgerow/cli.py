"""The ``hedgerow`` command: run everything (``up``), migrate, and manage accounts.

Every command works with nothing configured: when ``DATABASE_URL``/``REDIS_URL`` are
unset it starts the embedded PostgreSQL/Redis under ``Settings.data_dir`` for as long as
it runs.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.config import Settings, get_settings
from hedgerow.embedded import EmbeddedServers
from hedgerow.errors import AppError
from hedgerow.models import Role, User

cli = typer.Typer(
    name="hedgerow",
    help="Hedgerow: crowdsourced conversation trees.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

# How long a child gets to finish its current request or job after SIGTERM before it is
# killed. Celery's warm shutdown waits for the running job, so this is generous.
CHILD_STOP_TIMEOUT_SECONDS = 20.0
WEB_READY_TIMEOUT_SECONDS = 60.0


# --- servers and settings -----------------------------------------------------------


def _use_urls(*, database_url: str | None = None, redis_url: str | None = None) -> None:
    """Point this process (and the children it starts) at these servers."""
    from hedgerow.db import get_engine, get_sessionmaker
    from hedgerow.redis_client import get_redis

    if database_url:
        os.environ["DATABASE_URL"] = database_url
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    for cached in (get_settings, get_engine, get_sessionmaker, get_redis):
        cached.cache_clear()


@contextmanager
def _servers(*, redis: bool) -> Iterator[Settings]:
    """Settings with a database URL (and a Redis URL when asked), starting the embedded
    servers for whichever is unset and stopping them on the way out."""
    settings = get_settings()
    embedded = EmbeddedServers(settings.data_dir)
    try:
        database_url = None if settings.database_url else embedded.database_url()
        redis_url = None if settings.redis_url or not redis else embedded.redis_url()
        if database_url or redis_url:
            _use_urls(database_url=database_url, redis_url=redis_url)
        yield get_settings()
    finally:
        from hedgerow.db import get_engine

        # Close pooled connections first, so the embedded servers can stop at once.
        if get_settings().database_url:
            get_engine().dispose()
        embedded.stop()


def _fail(error: AppError) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(error.message)} [dim]({error.code})[/dim]")
    return typer.Exit(code=1)


# --- accounts -----------------------------------------------------------------------


def _admin_exists(db: Session) -> bool:
    query = select(User.id).where(User.role == Role.admin.value, User.deleted_at.is_(None))
    return db.scalar(query.limit(1)) is not None


def _ensure_first_admin(username: str) -> None:
    """Create the first admin unless one exists, printing a generated password once."""
    from hedgerow.accounts.service import create_user
    from hedgerow.db import get_sessionmaker

    given_password = os.environ.get("HEDGEROW_ADMIN_PASSWORD")
    password = given_password or secrets.token_urlsafe(12)

    with get_sessionmaker().begin() as db:
        if _admin_exists(db):
            return
        try:
            create_user(db, username=username, password=password, role=Role.admin, accept_tos=True)
        except AppError as error:
            if error.code == "username_taken":
                error.message += (
                    f" Make that account an admin with `hedgerow set-role {username} admin`, "
                    "or choose another name with --admin-username."
                )
            raise _fail(error) from error
    # Printed after the commit, and never again: only the hash is stored.
    shown = "(from HEDGEROW_ADMIN_PASSWORD)" if given_password else password
    console.print(
        Panel.fit(
            f"username: [bold]{escape(username)}[/bold]\npassword: [bold]{escape(shown)}[/bold]\n"
            "This is shown once. Log in and keep it somewhere safe.",
            title="First admin account created",
        )
    )


# --- process supervision ------------------------------------------------------------


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    # If `hedgerow up` itself is killed (SIGKILL, OOM), its children follow instead of
    # lingering and holding the port.
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


class Supervisor:
    """Starts the children in their own sessions, so a Ctrl-C reaches only us and we stop
    them in order; reports the first one that exits on its own."""

    def __init__(self) -> None:
        self.children: list[Child] = []
        self.stop_requested = threading.Event()

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested.set()

    def start(self, name: str, argv: list[str]) -> None:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            argv, start_new_session=True, preexec_fn=_die_with_parent
        )
        self.children.append(Child(name, process))

    def exited_child(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def wait(self) -> Child | None:
        """Block until a stop is requested (None) or a child exits (that child)."""
        while not self.stop_requested.wait(0.5):
            exited = self.exited_child()
            if exited is not None:
                return exited
        return None

    def stop_all(self, timeout: float = CHILD_STOP_TIMEOUT_SECONDS) -> None:
        for child in self.children:
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + timeout
        for child in self.children:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                err_console.print(f"{child.name} did not stop in {timeout:.0f}s; killing it")
                child.process.kill()
                child.process.wait()


def _wait_until_serving(url: str, supervisor: Supervisor) -> bool:
    deadline = time.monotonic() + WEB_READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if supervisor.stop_requested.is_set() or supervisor.exited_child() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        supervisor.stop_requested.wait(0.2)
    return False


# --- commands -----------------------------------------------------------------------


@cli.command()
def up(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    admin_username: Annotated[str, typer.Option(help="Name of the first admin.")] = "admin",
    worker: Annotated[bool, typer.Option(help="Run a Celery worker.")] = True,
    beat: Annotated[bool, typer.Option(help="Run Celery beat (the schedule).")] = True,
) -> None:
    """Run everything: database, Redis, migrations, web server, worker and beat."""
    from hedgerow import migrate as migrations
    from hedgerow.logs import configure_logging

    supervisor = Supervisor()
    # From here on Ctrl-C and SIGTERM mean "stop cleanly", even during start-up.
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    exit_code = 0
    with _servers(redis=True) as settings:
        configure_logging(settings)
        host = host or settings.host
        port = port or settings.port
        migrations.upgrade(settings.database_url)
        _ensure_first_admin(admin_username)
        python = sys.executable
        data_dir = settings.data_dir.resolve()
        uvicorn = [python, "-m", "uvicorn", "hedgerow.app:create_app", "--factory"]
        celery = [python, "-m", "celery", "-A", "hedgerow.worker:celery_app"]
        schedule = str(data_dir / "celerybeat-schedule")
        try:
            # The children read the URLs from the environment exported by _servers().
            supervisor.start(
                "web", [*uvicorn, "--host", host, "--port", str(port), "--no-access-log"]
            )
            if worker:
                supervisor.start("worker", [*celery, "worker", "-Q", "default", "-l", "INFO"])
            if beat:
                data_dir.mkdir(parents=True, exist_ok=True)
                supervisor.start("beat", [*celery, "beat", "-l", "INFO", "--schedule", schedule])
            shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
            url = f"http://{shown_host}:{port}"
            if _wait_until_serving(url, supervisor):
                console.print(f"[green]Hedgerow is running at[/green] [bold]{url}[/bold]")
                console.print("Press Ctrl-C to stop.")
            exited = supervisor.wait()
            if exited is not None:
                err_console.print(
                    f"[red]{exited.name} exited unexpectedly "
                    f"(code {exited.process.returncode}); stopping the others[/red]"
                )
                exit_code = 1
        finally:
            supervisor.stop_all()
    console.print("Stopped.")
    raise typer.Exit(code=exit_code)


@cli.command()
def migrate() -> None:
    """Apply every pending database migration."""
    from hedgerow import migrate as migrations

    with _servers(redis=False) as settings:
        migrations.upgrade(settings.database_url)
    console.print("Database is up to date.")


@cli.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Option(prompt=True, help="The admin's username.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, help="Prompted if absent."
        ),
    ],
) -> None:
    """Create an admin account."""
    from hedgerow.accounts.service import create_user
    from hedgerow.db import get_sessionmaker

    with _servers(redis=False):
        try:
            with get_sessionmaker().begin() as db:
                create_user(
                    db, username=username, password=password, role=Role.admin, accept_tos=True
                )
        except AppError as error:
            raise _fail(error) from error
    console.print(f"Created admin [bold]{escape(username)}[/bold].")


@cli.command("set-role")
def set_role(
    username: Annotated[str, typer.Argument(help="Whose role to change.")],
    role: Annotated[Role, typer.Argument(help="The new role.")],
) -> None:
    """Make a user a volunteer, researcher, moderator or admin."""
    from hedgerow.accounts import service
    from hedgerow.db import get_sessionmaker

    with _servers(redis=False):
        try:
            with get_sessionmaker().begin() as db:
                service.set_role(db, username=username, role=role, actor=None)
        except AppError as error:
            raise _fail(error) from error
    console.print(f"[bold]{escape(username)}[/bold] is now {role.value}.")


@cli.command()
def seed(
    messages: Annotated[int, typer.Option(min=1, help="About how many messages.")] = 10_000,
    users: Annotated[int, typer.Option(min=10, help="Volunteers who wrote them.")] = 5_000,
    seed_value: Annotated[int, typer.Option("--seed", help="Seed for a repeatable corpus.")] = 7,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before emptying.")] = False,
) -> None:
    """EMPTY the configured database and fill it with a synthetic corpus (benchmarks)."""
    from hedgerow.sim.corpus import seed as seed_corpus

    if not yes:
        typer.confirm("This deletes every row in the configured database. Go on?", abort=True)
    with _servers(redis=False) as settings:
        assert settings.database_url is not None
        with console.status(f"seeding about {messages:,} messages with COPY..."):
            stats = seed_corpus(settings.database_url, messages, users, seed_value)
    for key, value in stats.items():
        console.print(f"{key:>14}: {value}")


@cli.command()
def simulate(
    volunteers: Annotated[int, typer.Option(min=2, help="Simulated volunteers.")] = 200,
    prompts: Annotated[int, typer.Option(min=1, help="Prompts they write in all.")] = 300,
    seed: Annotated[int, typer.Option(help="Seed for a repeatable run.")] = 1,
    language: Annotated[str, typer.Option(help="Language of the simulated work.")] = "en",
) -> None:
    """Drive the real growth engine with a simulated crowd, then check the invariants.

    Writes to the configured database (simulated users are named sim<seed>x...); run it
    against a scratch database. Exits 1 if any invariant is violated.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from hedgerow import migrate as migrations
    from hedgerow.db import get_sessionmaker
    from hedgerow.sim.simulate import simulate as run_simulation

    with _servers(redis=False) as settings:
        migrations.upgrade(settings.database_url)
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[open_trees]} trees still open"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            bar = progress.add_task("simulating", total=None, open_trees="?")

            def on_progress(step: int, open_trees: int) -> None:
                progress.update(bar, completed=step, open_trees=open_trees)

            report = run_simulation(
                get_sessionmaker(),
                volunteers=volunteers,
                prompts=prompts,
                seed=seed,
                language=language,
                progress=on_progress,
            )
    table = Table(title="Trees by state")
    table.add_column("state")
    table.add_column("trees", justify="right")
    for state, count in sorted(report.states.items()):
        table.add_row(state, str(count))
    console.print(table)
    console.print(
        f"{report.steps} steps in {report.seconds:.1f} s; {report.prompts_written} prompts; "
        f"drawn trees ready for export: {report.drawn_ready}/{report.drawn} "
        f"({report.ready_share_of_drawn:.1%})"
    )
    for outcome, count in report.outcomes.most_common():
        console.print(f"  {outcome}: {count}")
    if report.stalled:
        console.print("[yellow]The run stalled: no volunteer could do anything more.[/yellow]")
    if report.violations:
        for violation in report.violations:
            console.print(f"[red]violation:[/red] {escape(violation)}")
        raise typer.Exit(1)
    console.print("[green]All invariants hold.[/green]")


@cli.command()
def export(
    nightly: Annotated[
        bool, typer.Option(help="Record it as a nightly release (subject to retention).")
    ] = False,
    pin: Annotated[bool, typer.Option(help="Keep it whatever the retention says.")] = False,
    state: Annotated[
        list[str] | None, typer.Option(help="Tree states to include (repeatable).")
    ] = None,
    language: Annotated[
        list[str] | None, typer.Option(help="Languages to include (repeatable); all if absent.")
    ] = None,
    include_deleted: Annotated[bool, typer.Option(help="Include deleted messages.")] = False,
    include_spam: Annotated[bool, typer.Option(help="Include messages rejected as spam.")] = False,
    include_synthetic: Annotated[bool, typer.Option(help="Include synthetic messages.")] = False,
    created_from: Annotated[
        datetime | None, typer.Option(help="Trees created at or after this time (UTC).")
    ] = None,
    created_until: Annotated[
        datetime | None, typer.Option(help="Trees created before this time (UTC).")
    ] = None,
) -> None:
    """Export and publish a dataset release now, with a progress bar."""
    from pydantic import ValidationError
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from hedgerow.db import get_sessionmaker
    from hedgerow.export.run import run_export
    from hedgerow.export.schemas import ExportFilters
    from hedgerow.models import ReleaseKind

    try:
        filters = ExportFilters(
            states=state or ExportFilters().states,
            languages=language or None,
            include_deleted=include_deleted,
            include_spam=include_spam,
            include_synthetic=include_synthetic,
            created_from=created_from.replace(tzinfo=UTC) if created_from else None,
            created_until=created_until.replace(tzinfo=UTC) if created_until else None,
        )
    except ValidationError as error:
        message = "; ".join(str(problem["msg"]) for problem in error.errors())
        raise _fail(AppError("invalid_filters", message, 422)) from error
    with (
        _servers(redis=False),
        Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("messages"),
            TimeRemainingColumn(),
            console=console,
        ) as progress,
    ):
        bar = progress.add_task("exporting", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total)

        try:
            outcome = run_export(
                get_sessionmaker(),
                kind=ReleaseKind.nightly if nightly else ReleaseKind.manual,
                filters=filters,
                pinned=pin,
                progress=on_progress,
            )
        except AppError as error:
            raise _fail(error) from error
    stats = outcome.stats
    console.print(
        f"Published [bold]{escape(outcome.name)}[/bold]: {stats.trees} trees, "
        f"{stats.messages} messages, in {escape(str(outcome.directory))}"
    )


@cli.command()
def train(
    concurrency: Annotated[int, typer.Option(help="Runs at a time (one per GPU set).")] = 1,
) -> None:
    """Run the training worker (the `train` queue) in the foreground."""
    from hedgerow.db import get_sessionmaker
    from hedgerow.logs import configure_logging
    from hedgerow.training import service

    with _servers(redis=True) as settings:
        configure_logging(settings)
        # Runs whose worker died mid-way go back on the queue; they resume from their
        # last checkpoint.
        for version_id in service.interrupted_versions(get_sessionmaker()):
            console.print(f"Resuming model version {version_id}")
            service.enqueue_training(version_id)
        from hedgerow.worker import TRAIN_QUEUE, celery_app

        # The solo pool trains in this process: no fork after CUDA is initialised.
        celery_app.worker_main(
            [
                "worker",
                "-Q",
                TRAIN_QUEUE,
                "--pool",
                "solo" if concurrency == 1 else "prefork",
                "--concurrency",
                str(concurrency),
                "-l",
                "INFO",
                "-n",
                "trainer@%h",
            ]
        )


@cli.command("train-run")
def train_run(
    release: Annotated[
        int | None, typer.Option(help="Release id to train on; the newest published if absent.")
    ] = None,
    resume: Annotated[
        int | None, typer.Option(help="Resume this interrupted model version instead.")
    ] = None,
    dpo: Annotated[
        bool | None,
        typer.Option(
            "--dpo/--no-dpo",
            help="DPO on the release's preference pairs after SFT. Default: HEDGEROW_TRAINING_DPO.",
        ),
    ] = None,
    num_processes: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Processes (one per GPU), launched with accelerate; 0: one per visible GPU. "
            "Default: HEDGEROW_TRAINING_NUM_PROCESSES.",
        ),
    ] = None,
) -> None:
    """Train one model version in the foreground, with a progress bar."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from hedgerow.db import get_sessionmaker
    from hedgerow.training import queries, service
    from hedgerow.training.trainer import Progress as TrainingProgress

    with _servers(redis=False):
        maker = get_sessionmaker()
        try:
            with maker.begin() as db:
                if resume is not None:
                    version_id = service.get_version(db, resume).id
                else:
                    release_id = release
                    if release_id is None:
                        newest = queries.published_releases(db, limit=1)
                        if not newest:
                            raise AppError(
                                "no_release", "No published release; run `hedgerow export`.", 404
                            )
                        release_id = newest[0].id
                    version_id = service.start_run(
                        db,
                        release_id,
                        requested_by=None,
                        dpo=dpo,
                        num_processes=num_processes,
                    ).id
        except AppError as error:
            raise _fail(error) from error
        console.print(f"Training model version [bold]{version_id}[/bold]")
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps · loss {task.fields[loss]} · {task.fields[speed]} tok/s"),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            bar = progress.add_task("training", total=None, loss="-", speed="-")

            def on_progress(update: TrainingProgress) -> None:
                progress.update(
                    bar,
                    description=update.stage.upper(),
                    completed=update.step,
                    total=update.total_steps,
                    loss=f"{update.loss:.4f}" if update.loss is not None else "-",
                    speed=f"{update.tokens_per_second:.0f}" if update.tokens_per_second else "-",
                )

            status = service.run_training(maker, version_id, progress=on_progress)
        with maker() as db:
            version = service.get_version(db, version_id)
        if status is None:
            raise _fail(
                AppError("run_in_progress", "Another worker is training this version.", 409)
            )
        if version.status == "failed":
            raise _fail(AppError("training_failed", version.failure_reason or "failed", 500))
        metrics = version.metrics or {}
        console.print(
            f"[green]Model version {version_id} is {escape(version.status)}[/green] in "
            f"{escape(version.artifact_path or '')} (validation loss "
            f"{metrics.get('base_validation_loss', float('nan')):.4f} -> "
            f"{metrics.get('validation_loss', float('nan')):.4f})"
        )


@cli.command("serve-model")
def serve_model(
    host: Annotated[str | None, typer.Option(help="Default: HEDGEROW_INFERENCE_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: HEDGEROW_INFERENCE_PORT.")] = None,
) -> None:
    """Serve the serving model versions over an OpenAI-compatible API (/v1/chat/completions)."""
    import uvicorn

    from hedgerow.inference.app import create_inference_app
    from hedgerow.logs import configure_logging

    with _servers(redis=True) as settings:
        configure_logging(settings)
        uvicorn.run(
            create_inference_app(settings),
            host=host or settings.inference_host,
            port=port or settings.inference_port,
            log_level=settings.log_level.lower(),
        )


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
