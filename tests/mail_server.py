"""A real SMTP server for the tests: the development mailbox (aiosmtpd) on a loopback port,
keeping what it receives in a temporary folder, and helpers to read links out of it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from hedgerow.mail.mailbox import DevMailbox, StoredMail, stored_mail
from tests.growth.factories import override_settings

LINK = re.compile(r"https?://\S+")


class Inbox:
    def __init__(self, mailbox: DevMailbox) -> None:
        self.mailbox = mailbox

    @property
    def folder(self) -> Path:
        return self.mailbox.folder

    def messages(self, to: str | None = None) -> list[StoredMail]:
        """Received messages, newest first (only those to `to` when given)."""
        return [mail for mail in stored_mail(self.folder) if to is None or to in mail.to]

    def last(self, to: str | None = None) -> StoredMail:
        messages = self.messages(to)
        assert messages, f"no mail received{f' for {to}' if to else ''}"
        return messages[0]

    def link(self, to: str | None = None, path: str = "") -> str:
        """The first link to `path` in the text body of the newest mail (to `to`)."""
        mail = self.last(to)
        for link in LINK.findall(mail.body("plain")):
            if path in link:
                return str(link)
        raise AssertionError(f"no {path} link in {mail.body('plain')!r}")


@pytest.fixture
def inbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """A running SMTP server the app's settings point at."""
    with DevMailbox(tmp_path / "mail") as mailbox:
        override_settings(monkeypatch, smtp_url=mailbox.url, mail_from="Hedgerow <test@hedgerow>")
        yield Inbox(mailbox)


def path_of(link: str) -> str:
    """The path and query of a link in a mail, for the TestClient."""
    return "/" + link.split("://", 1)[1].split("/", 1)[1]
