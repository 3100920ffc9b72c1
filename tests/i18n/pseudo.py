"""A pseudo-locale: every catalog string wrapped in ⟦ ⟧ and accented, so a page rendered in
it shows at a glance (and to a test) any text that did not come from the catalog.

Text that is data, not interface, is exempt where the page says so: inside an element with
`translate="no"` (HTML's own marker for content that must not be translated: user text,
usernames, model names, code) or a `<time>` element, and any text without letters
(numbers, punctuation, symbols)."""

from __future__ import annotations

import gettext
import io
import re
from html.parser import HTMLParser

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo

OPEN, CLOSE = "⟦", "⟧"
_ACCENTED = str.maketrans("aeiouyAEIOUYcnsz", "áéíóúýÁÉÍÓÚÝçñšž")
# Placeholders, HTML tags and entities pass through unaccented.
_KEEP = re.compile(r"(%\(\w+\)[sd]|%[sd%]|<[^>]*>|&\w+;)")
_TAG = re.compile(r"(<[^>]*>)")


def pseudo(text: str) -> str:
    """Each run of text between tags gets its own markers: a sentence with a link or a
    name in it (`New here? <a href="...">Create an account</a>.`) is several text nodes on
    the page, and each must show that it came from the catalog."""
    return "".join(
        part if _TAG.fullmatch(part) else _pseudo_text(part) for part in _TAG.split(text) if part
    )


def _pseudo_text(text: str) -> str:
    parts = _KEEP.split(text)
    return (
        OPEN + "".join(p if _KEEP.fullmatch(p) else p.translate(_ACCENTED) for p in parts) + CLOSE
    )


def pseudo_translations(message_ids: set[str | tuple[str, str]]) -> gettext.GNUTranslations:
    catalog = Catalog(locale="en", domain="messages")
    for message_id in message_ids:
        if isinstance(message_id, tuple):
            catalog.add(message_id, tuple(pseudo(m) for m in message_id))
        else:
            catalog.add(message_id, pseudo(message_id))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


# Attributes a person sees or hears read out.
_SHOWN_ATTRIBUTES = ("title", "alt", "placeholder", "aria-label")
_SKIPPED_ELEMENTS = {"script", "style", "template", "time", "code", "pre"}
_VOID = {
    *("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"),
    *("source", "track", "wbr"),
}


class _TextReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []  # open elements: tag, whether text is exempt
        self.texts: list[str] = []

    def _exempt(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        exempt = self._exempt() or tag in _SKIPPED_ELEMENTS or found.get("translate") == "no"
        if not exempt:
            for name in _SHOWN_ATTRIBUTES:
                if found.get(name):
                    self.texts.append(str(found[name]))
            if tag == "input" and found.get("type") in ("submit", "button") and found.get("value"):
                self.texts.append(str(found["value"]))
        if tag not in _VOID:
            self.stack.append((tag, exempt))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        # Close up to the matching element (HTML lets some end tags be left out).
        if any(open_tag == tag for open_tag, _ in self.stack):
            while self.stack and self.stack.pop()[0] != tag:
                pass

    def handle_data(self, data: str) -> None:
        if not self._exempt():
            self.texts.append(data)


def untranslated_text(html: str) -> list[str]:
    """Visible text of a page that is neither from the catalog nor exempt as data."""
    body = html.split("<body", 1)[1] if "<body" in html else html
    head_title = re.search(r"<title>(.*?)</title>", html, re.S)
    reader = _TextReader()
    reader.feed("<body" + body)
    texts = reader.texts + ([head_title[1]] if head_title else [])
    found = []
    for text in texts:
        # Innermost first: a translated word may sit inside a translated sentence.
        outside, nested = text, 1
        while nested:
            outside, nested = re.subn(f"{OPEN}[^{OPEN}{CLOSE}]*{CLOSE}", "", outside)
        if any(character.isalpha() for character in outside):
            found.append(" ".join(text.split()))
    return found
