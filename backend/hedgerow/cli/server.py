"""Commands that run Hedgerow's servers: ``up`` (everything), ``web`` (the web server
alone, as the container runs it), ``migrate`` and ``serve-model`` (the OpenAI-compatible
model server)."""

from __future__ import annotations

import os
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
from hedgerow.config import Settings, get_settings
from hedgerow.errors import AppError
from hedgerow.inference.app import create_inference_app
from hedgerow.logs import configure_logging
from hedgerow.mail.mailbox import development_mailbox
from hedgerow.metrics import share_between_processes
from hedgerow.training import availability


def proxy_header_options(settings: Settings) -> list[str]:
    """uvicorn's options for X-Forwarded-For/-Proto: believed only from
    HEDGEROW_TRUSTED_PROXIES. uvicorn's own default trusts them from 127.0.0.1, so anyone
    connecting through a local process could choose the client address the login throttle
    counts; with no trusted proxy the headers are ignored."""
    if not settings.trusted_proxies:
        return ["--no-proxy-headers"]
    return ["--proxy-headers", "--forwarded-allow-ips", ",".join(settings.trusted_proxies)]


def web_command(settings: Settings, *, host: str, port: int) -> list[str]:
    """The web server's command line, the same for `up` and `web` (the container)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "hedgerow.app:create_app",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--no-access-log",  # RequestContextMiddleware logs each request, with its id
        *proxy_header_options(settings),
    ]


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
    # In development without an SMTP server, mail goes to the mailbox read at /dev/mail.
    with servers(redis=True) as settings, development_mailbox(settings):
        settings = get_settings()
        configure_logging(settings)
        host = host or settings.host
        port = port or settings.port
        migrations.upgrade(settings.database_url)
        admin_box = ensure_first_admin(admin_username)
        python = sys.executable
        data_dir = settings.data_dir.resolve()
        celery = [python, "-m", "celery", "-A", "hedgerow.worker:celery_app"]
        schedule = str(data_dir / "celerybeat-schedule")
        share_between_processes(data_dir)  # /metrics sums the web worker processes
        try:
            # The children read the URLs from the environment exported by servers().
            supervisor.start("web", web_command(settings, host=host, port=port))
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


def web(
    host: Annotated[str | None, typer.Option(help="Default: HEDGEROW_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: HEDGEROW_PORT.")] = None,
) -> None:
    """Run the web server alone (DATABASE_URL and REDIS_URL must point at running servers);
    WEB_CONCURRENCY sets its worker processes."""
    settings = get_settings()
    command = web_command(settings, host=host or settings.host, port=port or settings.port)
    # This process becomes uvicorn: a container's stop signal reaches it directly, and
    # uvicorn's command line reads WEB_CONCURRENCY.
    os.execv(command[0], command)  # noqa: S606 - our own interpreter and uvicorn


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
            # Its per-client rate limit counts addresses too: the same trust as the web server.
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        )
