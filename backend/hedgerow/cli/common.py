"""What every command shares: the consoles, the servers it runs against, how it fails."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hedgerow.config import Settings, get_settings
from hedgerow.db import get_engine, get_sessionmaker
from hedgerow.embedded import EmbeddedServers
from hedgerow.errors import AppError
from hedgerow.redis_client import get_redis

console = Console()
err_console = Console(stderr=True)


def use_urls(*, database_url: str | None = None, redis_url: str | None = None) -> None:
    """Point this process (and the children it starts) at these servers."""
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    for cached in (get_settings, get_engine, get_sessionmaker, get_redis):
        cached.cache_clear()


@contextmanager
def servers(*, redis: bool) -> Iterator[Settings]:
    """Settings with a database URL (and a Redis URL when asked), starting the embedded
    servers for whichever is unset and stopping them on the way out."""
    with servers_and_embedded(redis=redis) as (settings, _):
        yield settings


@contextmanager
def servers_and_embedded(*, redis: bool) -> Iterator[tuple[Settings, EmbeddedServers]]:
    """servers(), also yielding the embedded servers, for `up` to watch them."""
    settings = get_settings()
    embedded = EmbeddedServers(settings.data_dir)
    try:
        try:
            database_url = None if settings.database_url else embedded.database_url()
            redis_url = None if settings.redis_url or not redis else embedded.redis_url()
        except AppError as error:
            raise fail(error) from error
        if database_url or redis_url:
            use_urls(database_url=database_url, redis_url=redis_url)
        yield get_settings(), embedded
    finally:
        # Close pooled connections first: the servers stop regardless, but a client that
        # hangs up first leaves nothing to complain about in their logs.
        if get_settings().database_url:
            get_engine().dispose()
        if get_redis.cache_info().currsize:
            get_redis().connection_pool.disconnect()
            get_redis.cache_clear()
        embedded.stop()


def fail(error: AppError) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(error.message)} [dim]({error.code})[/dim]")
    return typer.Exit(code=1)


def counted_progress(counted: str) -> Progress:
    """A progress bar towards a known total: what it does, the bar, done/total, `counted`
    (a rich column template saying what is counted) and the time left."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(counted),
        TimeRemainingColumn(),
        console=console,
    )
