"""The simulator's commands: ``simulate`` (a simulated crowd drives the growth engine)
and ``seed`` (a synthetic corpus for benchmarks)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hedgerow import migrate as migrations
from hedgerow.cli.common import console, servers
from hedgerow.db import get_sessionmaker
from hedgerow.sim.corpus import seed as seed_corpus
from hedgerow.sim.simulate import SimulationReport
from hedgerow.sim.simulate import simulate as run_simulation


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
    with servers(redis=False) as settings:
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
    _print_report(report)
    if report.violations:
        raise typer.Exit(1)
    console.print("[green]All invariants hold.[/green]")


def _print_report(report: SimulationReport) -> None:
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
    for violation in report.violations:
        console.print(f"[red]violation:[/red] {escape(violation)}")


def seed(
    messages: Annotated[int, typer.Option(min=1, help="About how many messages.")] = 10_000,
    users: Annotated[int, typer.Option(min=10, help="Volunteers who wrote them.")] = 5_000,
    seed_value: Annotated[int, typer.Option("--seed", help="Seed for a repeatable corpus.")] = 7,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before emptying.")] = False,
) -> None:
    """EMPTY the configured database and fill it with a synthetic corpus (benchmarks)."""
    if not yes:
        typer.confirm("This deletes every row in the configured database. Go on?", abort=True)
    with servers(redis=False) as settings:
        assert settings.database_url is not None
        with console.status(f"seeding about {messages:,} messages with COPY..."):
            stats = seed_corpus(settings.database_url, messages, users, seed_value)
    for key, value in stats.items():
        console.print(f"{key:>14}: {value}")
