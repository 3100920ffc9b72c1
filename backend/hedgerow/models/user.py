from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from hedgerow.models.base import Base, created_at_column, enum_check, pk


class Role(StrEnum):
    volunteer = "volunteer"
    moderator = "moderator"
    admin = "admin"
    # Downloads dataset releases; no moderation powers, so it ranks with volunteers.
    researcher = "researcher"

    @property
    def rank(self) -> int:
        return {"volunteer": 0, "researcher": 0, "moderator": 1, "admin": 2}[self.value]


USERNAME_MAX_LENGTH = 32


class User(Base):
    __tablename__ = "user"
    __table_args__ = (
        CheckConstraint(enum_check("role", tuple(Role)), name="role"),
        CheckConstraint("char_length(username) BETWEEN 3 AND 32", name="username_length"),
        # Usernames are unique regardless of case: "Alice" and "alice" are one person.
        Index("uq_user_username_lower", text("lower(username)"), unique=True),
        # "Forgot password" by address and the provider sign-in's check that an address
        # belongs to no other account. Not unique: addresses were never checked before.
        Index("ix_user_email_lower", text("lower(email)")),
    )

    id: Mapped[int] = pk()
    username: Mapped[str] = mapped_column(String(USERNAME_MAX_LENGTH))
    display_name: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(254))
    # Set when the address proved itself (a verification link, or a sign-in provider that
    # vouches for it); password resets and sign-in links go to verified addresses only.
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    password_hash: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16), server_default=Role.volunteer.value)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    language: Mapped[str] = mapped_column(String(16), server_default="en")
    # The interface's language (hedgerow/i18n); None follows `language` when the interface
    # ships it, else the browser's.
    interface_language: Mapped[str | None] = mapped_column(String(16))
    tos_accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    show_on_leaderboard: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = created_at_column()
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    def has_role(self, minimum: Role) -> bool:
        return self.role_enum.rank >= minimum.rank


class UserSession(Base):
    """A browser login. The cookie carries a random token; only its sha256 is stored."""

    __tablename__ = "user_session"

    id: Mapped[int] = pk()
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user_agent: Mapped[str | None] = mapped_column(String(256))


class ApiKey(Base):
    """A key for the JSON API: shown once, stored as a sha256 of its secret part."""

    __tablename__ = "api_key"

    id: Mapped[int] = pk()
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(
        ARRAY(String(32)), server_default=text("'{}'::varchar[]")
    )
    created_at: Mapped[datetime] = created_at_column()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UserNote(Base):
    """A moderator's note on a user."""

    __tablename__ = "user_note"

    id: Mapped[int] = pk()
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
