"""``hedgerow export``: export and publish a dataset release from the command line."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

from hedgerow.cli.common import console, counted_progress, fail, servers
from hedgerow.db import get_sessionmaker
from hedgerow.errors import AppError
from hedgerow.export.run import run_export
from hedgerow.export.schemas import ExportFilters
from hedgerow.models import ReleaseKind


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
        raise fail(AppError("invalid_filters", message, 422)) from error
    kind = ReleaseKind.nightly if nightly else ReleaseKind.manual
    with servers(redis=False), counted_progress("messages") as progress:
        bar = progress.add_task("exporting", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total)

        try:
            outcome = run_export(
                get_sessionmaker(), kind=kind, filters=filters, pinned=pin, progress=on_progress
            )
        except AppError as error:
            raise fail(error) from error
    stats = outcome.stats
    console.print(
        f"Published [bold]{escape(outcome.name)}[/bold]: {stats.trees} trees, "
        f"{stats.messages} messages, in {escape(str(outcome.directory))}"
    )
