"""What lets a person into an account besides its password: emailed single-use tokens and
identities at outside sign-in providers (GitHub, Google, Discord, any OpenID Connect)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hedgerow.models.base import Base, created_at_column, enum_check, pk


class TokenPurpose(StrEnum):
    verify_email = "verify_email"
    reset_password = "reset_password"  # noqa: S105 - a purpose, not a password
    sign_in_link = "sign_in_link"


class AccountToken(Base):
    """A single-use token sent by email. Only its sha256 is stored: a database dump lets
    nobody reset a password. ``email`` is the address the token was sent to (for a
    verification, the address it proves)."""

    __tablename__ = "account_token"
    __table_args__ = (CheckConstraint(enum_check("purpose", tuple(TokenPurpose)), name="purpose"),)

    id: Mapped[int] = pk()
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(32))
    # The lookup of every link followed.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UserIdentity(Base):
    """An account at a sign-in provider linked to a Hedgerow account. ``subject`` is the
    provider's stable id for the person (never the email, which can change hands)."""

    __tablename__ = "user_identity"
    __table_args__ = (
        # Serves the lookup at every provider sign-in, and one identity links one account.
        UniqueConstraint("provider", "subject"),
    )

    id: Mapped[int] = pk()
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(254))
    display: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = created_at_column()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
