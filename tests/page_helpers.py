"""Helpers for tests of HTML pages: a logged-in client without the slow password hash."""

from __future__ import annotations

from html.parser import HTMLParser

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from hedgerow.accounts.security import SESSION_COOKIE, create_user_session
from hedgerow.models import User


def log_in_as(client: TestClient, db: Session, user: User) -> TestClient:
    client.cookies.set(SESSION_COOKIE, create_user_session(db, user, "pytest"))
    return client


class _FormReader(HTMLParser):
    """Collects what one form submits untouched, as a browser does (see form_defaults)."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        # The select being read: its name and its options as (value, marked selected).
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        # The option being read: its value attribute (None: its text is the value).
        self._option: tuple[str | None, bool] | None = None
        self._text = ""
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value if value is not None else "" for name, value in attrs}
        if tag == "form" and found.get("id") == self.form_id:
            self.inside = True
        if not self.inside or "disabled" in found:
            return
        if tag == "input" and "name" in found:
            self._input(found)
        elif tag == "select" and "name" in found:
            self._select, self._options = found["name"], []
        elif tag == "option" and self._select is not None:
            self._option, self._text = (found.get("value"), "selected" in found), ""
        elif tag == "textarea" and "name" in found:
            self._textarea, self._text = found["name"], ""

    def _input(self, found: dict[str, str]) -> None:
        kind = found.get("type", "text")
        if kind in ("submit", "button", "image", "reset", "file"):
            return
        if kind in ("checkbox", "radio"):
            if "checked" in found:
                self.fields.append((found["name"], found.get("value", "on")))
            return
        self.fields.append((found["name"], found.get("value", "")))

    def handle_data(self, data: str) -> None:
        self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "option" and self._option is not None:
            value, selected = self._option
            self._options.append((value if value is not None else self._text.strip(), selected))
            self._option = None
        elif tag == "select" and self._select is not None:
            # HTML's selectedness rule: the last option marked selected wins; with none
            # marked, the first option.
            marked = [value for value, selected in self._options if selected]
            if self._options:
                self.fields.append((self._select, marked[-1] if marked else self._options[0][0]))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            # Browsers drop the one newline that follows <textarea>.
            self.fields.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None
        elif tag == "form" and self.inside:
            self.inside = False


def form_defaults(html: str, form_id: str) -> list[tuple[str, str]]:
    """The fields the form with `form_id` submits when nothing is changed in it, as a
    browser without JavaScript sends them: checked boxes, each select's selected option
    (the last one marked, else the first), hidden and text inputs, textareas. Controls
    outside the form element (form="...") are not collected."""
    reader = _FormReader(form_id)
    reader.feed(html)
    return reader.fields
