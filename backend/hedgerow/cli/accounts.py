"""Account commands: ``create-admin``, ``set-role``, and the first admin of ``up``."""

from __future__ import annotations

import os
import secrets
from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel
from sqlalchemy import select
from sqlalchemy.orm import Session

from hedgerow.accounts import service
from hedgerow.cli.common import console, fail, servers
from hedgerow.db import get_sessionmaker
from hedgerow.errors import AppError
from hedgerow.models import Role, User


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
    with servers(redis=False):
        try:
            with get_sessionmaker().begin() as db:
                service.create_user(
                    db, username=username, password=password, role=Role.admin, accept_tos=True
                )
        except AppError as error:
            raise fail(error) from error
    console.print(f"Created admin [bold]{escape(username)}[/bold].")


def set_role(
    username: Annotated[str, typer.Argument(help="Whose role to change.")],
    role: Annotated[Role, typer.Argument(help="The new role.")],
) -> None:
    """Make a user a volunteer, researcher, moderator or admin."""
    with servers(redis=False):
        try:
            with get_sessionmaker().begin() as db:
                service.set_role(db, username=username, role=role, actor=None)
        except AppError as error:
            raise fail(error) from error
    console.print(f"[bold]{escape(username)}[/bold] is now {role.value}.")


def _admin_exists(db: Session) -> bool:
    query = select(User.id).where(User.role == Role.admin.value, User.deleted_at.is_(None))
    return db.scalar(query.limit(1)) is not None


def ensure_first_admin(username: str) -> Panel | None:
    """Create the first admin unless one exists, printing a generated password; returns
    the box it printed (None when an admin existed), for `up` to show again last."""
    given_password = os.environ.get("HEDGEROW_ADMIN_PASSWORD")
    password = given_password or secrets.token_urlsafe(12)

    with get_sessionmaker().begin() as db:
        if _admin_exists(db):
            return None
        try:
            service.create_user(
                db, username=username, password=password, role=Role.admin, accept_tos=True
            )
        except AppError as error:
            if error.code == "username_taken":
                error.message += (
                    f" Make that account an admin with `hedgerow set-role {username} admin`, "
                    "or choose another name with --admin-username."
                )
            raise fail(error) from error
    # Printed after the commit, and never again: only the hash is stored.
    shown = "(from HEDGEROW_ADMIN_PASSWORD)" if given_password else password
    box = Panel.fit(
        f"username: [bold]{escape(username)}[/bold]\npassword: [bold]{escape(shown)}[/bold]\n"
        "This is shown once. Log in and keep it somewhere safe.",
        title="First admin account created",
    )
    console.print(box)
    return box
