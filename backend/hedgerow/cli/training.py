"""Training commands: ``train`` (the GPU worker), ``train-run`` (one run in the
foreground) and ``models list|promote|rollback`` (the model registry)."""

from __future__ import annotations

import os
import signal
import socket
from types import FrameType
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.accounts import service as accounts
from hedgerow.cli.common import console, counted_progress, fail, servers
from hedgerow.config import get_settings
from hedgerow.db import get_sessionmaker
from hedgerow.errors import AppError
from hedgerow.logs import configure_logging
from hedgerow.models import ModelVersion, Role, User
from hedgerow.redis_client import get_redis
from hedgerow.training import availability, queries, runner, service, trainer
from hedgerow.training.trainer import Progress as TrainingProgress


def train(
    concurrency: Annotated[int, typer.Option(help="Runs at a time (one per GPU set).")] = 1,
) -> None:
    """Run the training worker (the `train` queue) in the foreground."""
    _require_training_libraries()
    with servers(redis=True) as settings:
        configure_logging(settings)
        # Runs whose worker died mid-way go back on the queue; they resume from their
        # last checkpoint.
        for version_id in runner.interrupted_versions(get_sessionmaker()):
            console.print(f"Resuming model version {version_id}")
            service.enqueue_training(version_id)
        # Imported once servers() has set the URLs: the Celery app reads them on import.
        from hedgerow.worker import TRAIN_QUEUE, celery_app

        # Until Celery installs its own handlers, a SIGTERM (`hedgerow up` stopping while
        # this starts) exits through the `with` below, which withdraws the announcement.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        # The web and the schedule queue runs only while a trainer says it is there.
        name = f"trainer@{socket.gethostname()}:{os.getpid()}"
        announcing = availability.announced(get_redis(), name, trainer.describe_hardware())
        # The solo pool trains in this process: no fork after CUDA is initialised.
        with announcing:
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


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


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
    # Before a version is registered: a run that cannot start registers nothing.
    _require_training_libraries()
    with servers(redis=False):
        maker = get_sessionmaker()
        try:
            version_id = _version_to_train(maker, release, resume, dpo, num_processes)
        except AppError as error:
            raise fail(error) from error
        console.print(f"Training model version [bold]{version_id}[/bold]")
        status = _train_with_progress_bar(maker, version_id)
        with maker() as db:
            version = service.get_version(db, version_id)
        _report_outcome(version, status)


def _require_training_libraries() -> None:
    try:
        availability.require_training_libraries()
    except AppError as error:
        raise fail(error) from error


def _version_to_train(
    maker: sessionmaker[Session],
    release: int | None,
    resume: int | None,
    dpo: bool | None,
    num_processes: int | None,
) -> int:
    """The version to resume, or a new one queued on `release` (the newest published
    release if None)."""
    with maker.begin() as db:
        if resume is not None:
            return service.get_version(db, resume).id
        release_id = release if release is not None else _newest_release_id(db)
        version = service.start_run(
            db, release_id, requested_by=None, dpo=dpo, num_processes=num_processes
        )
        return version.id


def _newest_release_id(db: Session) -> int:
    newest = queries.published_releases(db, limit=1)
    if not newest:
        raise AppError("no_release", "No published release; run `hedgerow export`.", 404)
    return newest[0].id


def _train_with_progress_bar(maker: sessionmaker[Session], version_id: int) -> str | None:
    columns = "steps · loss {task.fields[loss]} · {task.fields[speed]} tok/s"
    with counted_progress(columns) as progress:
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

        return runner.run_training(maker, version_id, progress=on_progress)


def _report_outcome(version: ModelVersion, status: str | None) -> None:
    if status is None:
        raise fail(AppError("run_in_progress", "Another worker is training this version.", 409))
    if version.status == "failed":
        raise fail(AppError("training_failed", version.failure_reason or "failed", 500))
    metrics = version.metrics or {}
    console.print(
        f"[green]Model version {version.id} is {escape(version.status)}[/green] in "
        f"{escape(version.artifact_path or '')} (validation loss "
        f"{metrics.get('base_validation_loss', float('nan')):.4f} -> "
        f"{metrics.get('validation_loss', float('nan')):.4f})"
    )


# --- the model registry: `hedgerow models ...` ---------------------------------------

models_app = typer.Typer(
    name="models",
    help="The model registry: list the versions, promote one to serving, roll back.",
    no_args_is_help=True,
)

ActingAdmin = Annotated[
    str | None,
    typer.Option(
        "--by",
        help="The admin this is done for, named in the audit log; absent: the command line.",
    ),
]


@models_app.command("list")
def list_models(
    limit: Annotated[int, typer.Option(min=1, help="Newest versions shown.")] = 20,
) -> None:
    """List the model versions, newest first, with their status and validation loss."""
    with servers(redis=False), get_sessionmaker()() as db:
        rows = queries.recent_versions(db, limit=limit)
        # Narrow enough for an 80-column terminal: no borders between the columns.
        table = Table(box=box.SIMPLE, pad_edge=False)
        for heading in ("id", "name", "status", "release", "val. loss", "created", "promoted"):
            table.add_column(heading, no_wrap=True)
        for version, _ in rows:
            loss = (version.metrics or {}).get("validation_loss")
            table.add_row(
                str(version.id),
                escape(version.name),
                escape(version.status),
                str(version.release_id),
                f"{loss:.4f}" if isinstance(loss, int | float) else "-",
                f"{version.created_at:%m-%d %H:%M}",
                f"{version.promoted_at:%m-%d %H:%M}" if version.promoted_at else "-",
            )
    if not rows:
        console.print("No model versions yet: train one with `hedgerow train-run`.")
        return
    console.print(table)


@models_app.command("promote")
def promote_model(
    version_id: Annotated[int, typer.Argument(help="The ready version to serve.")],
    by: ActingAdmin = None,
) -> None:
    """Serve a ready version under its name (the one serving before goes back to ready)."""
    with servers(redis=False):
        try:
            with get_sessionmaker().begin() as db:
                actor = _acting_admin(db, by)
                name = service.get_version(db, version_id).name
                # For the message only; promote() takes the name's lock and decides.
                previous = queries.serving_version(db, name)
                previous_id = previous.id if previous is not None else None
                service.promote(db, version_id, actor=actor)
        except AppError as error:
            raise fail(error) from error
    was = f" (v{previous_id} is ready again)" if previous_id not in (None, version_id) else ""
    console.print(f"[green]{escape(name)} v{version_id} is serving[/green]{was}.")


@models_app.command("rollback")
def roll_back_model(
    name: Annotated[
        str | None,
        typer.Argument(help="The registry name. Default: HEDGEROW_TRAINING_MODEL_NAME."),
    ] = None,
    by: ActingAdmin = None,
) -> None:
    """Serve again the version that served before the current one."""
    name = name or get_settings().training_model_name
    with servers(redis=False):
        try:
            with get_sessionmaker().begin() as db:
                actor = _acting_admin(db, by)
                current = queries.serving_version(db, name)
                restored = service.roll_back(db, name, actor=actor)
                restored_id, replaced_id = restored.id, current.id if current else None
        except AppError as error:
            raise fail(error) from error
    console.print(
        f"[green]{escape(name)} v{restored_id} is serving again[/green] (v{replaced_id} is ready)."
    )


def _acting_admin(db: Session, username: str | None) -> User | None:
    """The admin named by --by (an enabled admin account), or None: the command line."""
    if username is None:
        return None
    user = accounts.get_user_by_username(db, username)
    if user.role != Role.admin or not user.enabled or user.deleted_at is not None:
        raise AppError(
            "not_an_admin",
            f"{username} is not an enabled admin; only admins promote and roll back.",
            403,
        )
    return user
