"""/dev/mail: the development mailbox's messages, for the developer running `hedgerow up`
without an SMTP server. Not found outside development: a production server has no such
folder, and its mail is nobody's to read here."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from hedgerow.config import get_settings
from hedgerow.errors import NotFound
from hedgerow.i18n import gettext as _
from hedgerow.mail.mailbox import read_stored_mail, stored_mail
from hedgerow.templating import render

router = APIRouter(include_in_schema=False)

# The names the mailbox writes, and nothing that could leave its folder.
MAIL_NAME = re.compile(r"[0-9]+-[0-9]+\.eml")


def _mail_folder() -> Path:
    settings = get_settings()
    if not settings.is_development:
        raise NotFound()
    return settings.data_dir / "mail"


@router.get("/dev/mail")
def dev_mailbox(request: Request) -> Response:
    return render(request, "mail/dev_mailbox.html", {"messages": stored_mail(_mail_folder())})


@router.get("/dev/mail/{name}")
def dev_mail_message(request: Request, name: str) -> Response:
    folder = _mail_folder()
    if not MAIL_NAME.fullmatch(name) or not (folder / name).is_file():
        raise NotFound(_("That mail does not exist."))
    return render(request, "mail/dev_message.html", {"mail": read_stored_mail(folder, name)})


@router.get("/dev/mail/{name}/html")
def dev_mail_html(name: str) -> Response:
    """The HTML body as the recipient's mail program gets it; its own CSP forbids scripts."""
    folder = _mail_folder()
    if not MAIL_NAME.fullmatch(name) or not (folder / name).is_file():
        raise NotFound(_("That mail does not exist."))
    return HTMLResponse(
        read_stored_mail(folder, name).body("html"),
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
    )
