"""Commands that run Hedgerow's servers: ``up`` (everything), ``migrate`` and
``serve-model`` (the OpenAI-compatible model server)."""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer
import uvicorn
from rich.markup import escape

from hedgerow import migrate as migrations
from hedgerow.cli.accounts import ensure_first_admin
from hedgerow.cli.common import console, err_console, fail, servers
from hedgerow.cli.supervisor import Supervisor, wait_until_serving, wait_until_worker_answers
from hedgerow.errors import AppError
from hedgerow.inference.app import create_inference_app
from hedgerow.logs import configure_logging
from hedgerow.training import availability


def up(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    admin_username: Annotated[str, typer.Option(help="Name of the first admin.")] = "admin",
    worker: Annotated[bool, typer.Option(help="Run a Celery worker.")] = True,
    beat: Annotated[bool, typer.Option(help="Run Celery beat (the schedule).")] = True,
    trainer: Annotated[
        bool,
        typer.Option(
            help="Also run a trainer (`hedgerow train`), so runs started at /admin/training "
            "train here. Needs the training libraries: `make install-train`."
        ),
    ] = False,
) -> None:
    """Run everything: database, Redis, migrations, web server, worker and beat."""
    if trainer:
        # Before anything starts: a trainer child that cannot train would stop them all.
        try:
            availability.require_training_libraries()
        except AppError as error:
            raise fail(error) from error
    supervisor = Supervisor()
    # From here on Ctrl-C and SIGTERM mean "stop cleanly", even during start-up.
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    exit_code = 0
    with servers(redis=True) as settings:
        configure_logging(settings)
        host = host or settings.host
        port = port or settings.port
        migrations.upgrade(settings.database_url)
        admin_box = ensure_first_admin(admin_username)
        python = sys.executable
        data_dir = settings.data_dir.resolve()
        uvicorn_command = [python, "-m", "uvicorn", "hedgerow.app:create_app", "--factory"]
        celery = [python, "-m", "celery", "-A", "hedgerow.worker:celery_app"]
        schedule = str(data_dir / "celerybeat-schedule")
        try:
            # The children read the URLs from the environment exported by servers().
            supervisor.start(
                "web", [*uvicorn_command, "--host", host, "--port", str(port), "--no-access-log"]
            )
            if worker:
                supervisor.start("worker", [*celery, "worker", "-Q", "default", "-l", "INFO"])
            if beat:
                data_dir.mkdir(parents=True, exist_ok=True)
                supervisor.start("beat", [*celery, "beat", "-l", "INFO", "--schedule", schedule])
            if trainer:
                supervisor.start("trainer", [python, "-m", "hedgerow.cli", "train"])
            shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
            url = f"http://{shown_host}:{port}"
            if wait_until_serving(url, supervisor):
                if worker:
                    wait_until_worker_answers(settings, supervisor)
                console.print(f"[green]Hedgerow is running at[/green] [bold]{url}[/bold]")
                if admin_box is not None:
                    # Again, last: the children's start-up output scrolled it away.
                    console.print(admin_box)
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


def migrate() -> None:
    """Apply every pending database migration."""
    with servers(redis=False) as settings:
        applied = migrations.upgrade(settings.database_url)
        heads = migrations.current_heads(settings.database_url)
    at = ", ".join(heads) or "empty"
    if not applied:
        console.print(f"Database is already up to date (at {at}); nothing to apply.")
        return
    console.print(f"Applied {len(applied)} migration{'' if len(applied) == 1 else 's'}:")
    for script in applied:
        summary = " ".join((script.doc or "").split())  # docstrings span lines
        console.print(f"  {escape(script.revision)}  {escape(summary)}")
    console.print(f"Database is now at {at}.")


def serve_model(
    host: Annotated[str | None, typer.Option(help="Default: HEDGEROW_INFERENCE_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: HEDGEROW_INFERENCE_PORT.")] = None,
) -> None:
    """Serve the serving model versions over an OpenAI-compatible API (/v1/chat/completions)."""
    with servers(redis=True) as settings:
        configure_logging(settings)
        uvicorn.run(
            create_inference_app(settings),
            host=host or settings.inference_host,
            port=port or settings.inference_port,
            log_level=settings.log_level.lower(),
        )
