"""The development mailbox: a real SMTP server (aiosmtpd) on loopback that keeps every
message it receives as an .eml file in a folder, for `hedgerow up` without an SMTP server
of its own (listed at /dev/mail) and for the tests."""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from hedgerow.config import Settings, get_settings


@dataclass(frozen=True)
class StoredMail:
    name: str
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def to(self) -> str:
        return str(self.message["To"] or "")

    @property
    def date(self) -> str:
        return str(self.message["Date"] or "")

    def body(self, subtype: str = "plain") -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        return part.get_content() if part is not None else ""


class _KeepInFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.counter = itertools.count()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # Named by arrival, so a listing sorts in order; written whole, then renamed, so a
        # reader never sees half a message.
        name = f"{time.time_ns()}-{next(self.counter)}.eml"
        partial = self.folder / f".{name}.part"
        content = envelope.original_content or b""
        partial.write_bytes(content if isinstance(content, bytes) else content.encode())
        partial.rename(self.folder / name)
        return "250 Message accepted for delivery"


class DevMailbox:
    """An SMTP server on 127.0.0.1 writing what it receives into `folder`."""

    def __init__(self, folder: Path, port: int = 0) -> None:
        self.folder = folder
        self.port = port or _free_port()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> DevMailbox:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(
            _KeepInFolder(self.folder), hostname="127.0.0.1", port=self.port
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> DevMailbox:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def stored_mail(folder: Path) -> list[StoredMail]:
    """The messages in `folder`, newest first."""
    if not folder.is_dir():
        return []
    names = sorted((path.name for path in folder.glob("*.eml")), reverse=True)
    return [read_stored_mail(folder, name) for name in names]


def read_stored_mail(folder: Path, name: str) -> StoredMail:
    with (folder / name).open("rb") as file:
        message = email.message_from_binary_file(file, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return StoredMail(name, message)


@contextmanager
def development_mailbox(settings: Settings) -> Iterator[DevMailbox | None]:
    """For `hedgerow up` in development with no HEDGEROW_SMTP_URL: run the mailbox under
    data_dir/mail and point this process and its children at it. Otherwise nothing."""
    if settings.smtp_url or not settings.is_development:
        yield None
        return
    mailbox = DevMailbox(settings.data_dir.resolve() / "mail").start()
    os.environ["HEDGEROW_SMTP_URL"] = mailbox.url
    get_settings.cache_clear()
    try:
        yield mailbox
    finally:
        mailbox.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
