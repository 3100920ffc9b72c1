"""The simulator's commands: ``simulate`` (a simulated crowd drives the growth engine)
and ``seed`` (a synthetic corpus for benchmarks)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
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
from hedgerow.sim.yield_report import YieldReport


class Policy(StrEnum):
    adaptive = "adaptive"
    fixed = "fixed"
    legacy = "legacy"


def simulate(
    volunteers: Annotated[int, typer.Option(min=2, help="Simulated volunteers.")] = 200,
    prompts: Annotated[int, typer.Option(min=1, help="Prompts they write in all.")] = 300,
    seed: Annotated[int, typer.Option(help="Seed for a repeatable run.")] = 1,
    language: Annotated[str, typer.Option(help="Language of the simulated work.")] = "en",
    policy: Annotated[
        Policy | None,
        typer.Option(
            help="Growth policy for the run's trees: adaptive, fixed (Open-Assistant's: 3 "
            "reviews, 3 rankings) or legacy (fixed, every parent up to max-children replies). "
            "Default: the configured settings."
        ),
    ] = None,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the report (yield and quality) as JSON here."),
    ] = None,
) -> None:
    """Drive the real growth engine with a simulated crowd, check the invariants and
    measure training data per 100 tasks and its accuracy against the simulated truth.

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
                policy=policy.value if policy else None,
                progress=on_progress,
            )
    _print_report(report)
    if json_path is not None:
        json_path.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
        console.print(f"report written to {json_path}")
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
    if report.yield_report is not None:
        _print_yield(report.policy, report.yield_report)
    for violation in report.violations:
        console.print(f"[red]violation:[/red] {escape(violation)}")


def _figure(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print_yield(policy: str, found: YieldReport) -> None:
    table = Table(title=f"Yield and quality ({policy} policy)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    families = ", ".join(f"{k} {v}" for k, v in found.tasks_by_family.items())
    table.add_row("volunteer tasks (submitted and skipped)", f"{found.tasks} ({families})")
    table.add_row("tasks per ready tree", _figure(found.tasks_per_ready_tree, 1))
    for name, value in found.per_100_tasks.items():
        table.add_row(f"{name.replace('_', ' ')} per 100 tasks", f"{value:.2f}")
    table.add_row("review-decision accuracy", _figure(found.review_accuracy))
    table.add_row("  bad messages rejected", _figure(found.bad_rejected_share))
    table.add_row("  good messages accepted", _figure(found.good_accepted_share))
    table.add_row("preference-pair accuracy", _figure(found.preference_pair_accuracy))
    table.add_row("Kendall's tau, consensus vs truth", _figure(found.consensus_kendall_tau))
    table.add_row("true quality of sft_best replies", _figure(found.sft_best_true_quality))
    table.add_row("reviews per decided message", _figure(found.reviews_per_decided_message, 2))
    table.add_row("rankings per settled sibling set", _figure(found.rankings_per_settled_set, 2))
    console.print(table)


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
