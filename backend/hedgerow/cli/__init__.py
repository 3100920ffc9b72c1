"""The ``hedgerow`` command: run everything (``up``), migrate, manage accounts, export,
train, serve the model and simulate the crowd.

Every command works with nothing configured: when ``DATABASE_URL``/``REDIS_URL`` are
unset it starts the embedded PostgreSQL/Redis under ``Settings.data_dir`` for as long as
it runs. Each domain's commands live in their own module; this one assembles them.
"""

from __future__ import annotations

import typer
from pydantic import ValidationError
from rich.markup import escape

from hedgerow.cli import accounts, export, server, sim, training
from hedgerow.cli.common import err_console
from hedgerow.config import describe_settings_error, get_settings

cli = typer.Typer(
    name="hedgerow",
    help="Hedgerow: crowdsourced conversation trees.",
    no_args_is_help=True,
    add_completion=False,
)

# In the order `hedgerow --help` lists them.
cli.command()(server.up)
cli.command()(server.web)
cli.command()(server.migrate)
cli.command("create-admin")(accounts.create_admin)
cli.command("set-role")(accounts.set_role)
cli.command()(sim.seed)
cli.command()(sim.simulate)
cli.command()(export.export)
cli.command()(training.train)
cli.command("train-run")(training.train_run)
cli.add_typer(training.models_app)
cli.command("serve-model")(server.serve_model)


def main() -> None:
    # A bad setting stops every command before it starts anything, with what is wrong.
    try:
        get_settings()
    except ValidationError as error:
        err_console.print(f"[red]Invalid settings[/red]\n{escape(describe_settings_error(error))}")
        raise SystemExit(2) from None
    cli()
