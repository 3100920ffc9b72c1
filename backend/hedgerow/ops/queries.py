"""SQL for the operational probes."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def ping_database(db: Session) -> None:
    """One round trip that needs nothing but a working connection."""
    db.execute(text("SELECT 1"))
