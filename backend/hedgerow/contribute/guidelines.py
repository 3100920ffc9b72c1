"""The guidelines: Markdown files in frontend/guidelines/, rendered in the app.

Each file starts with ``key: value`` lines (title, version, summary) and a ``---`` line;
the rest is Markdown. The version is what is recorded with every label, so a test keeps
it equal to growth.labels.GUIDELINE_VERSION.

Translations live in frontend/guidelines/<language>/<name>.md, under the English file's
name. A guideline is served in the interface language when it has a translation, else in
English with a note saying so. The version always comes from the English file: it names
the rules a label was given under, whichever language they were read in (a translation
that lags behind says an older version in its header, which is ignored).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

from markupsafe import Markup

from hedgerow.config import REPO_ROOT
from hedgerow.errors import NotFound
from hedgerow.i18n import current_locale
from hedgerow.i18n import gettext as _
from hedgerow.i18n.locales import SOURCE_LANGUAGE
from hedgerow.markdown import render_markdown
from hedgerow.models import TaskKind

GUIDELINES_DIR = REPO_ROOT / "frontend" / "guidelines"

# The guideline a task kind links to; the three review kinds share one.
GUIDELINE_FOR_KIND = {
    TaskKind.write_prompt: "write_prompt",
    TaskKind.reply_assistant: "reply_assistant",
    TaskKind.reply_prompter: "reply_prompter",
    TaskKind.review_prompt: "review",
    TaskKind.review_prompter_reply: "review",
    TaskKind.review_assistant_reply: "review",
    TaskKind.rank_assistant_replies: "ranking",
    TaskKind.rank_prompter_replies: "ranking",
}
ORDER = ("general", "write_prompt", "reply_assistant", "reply_prompter", "review", "ranking")


@dataclass(frozen=True)
class Guideline:
    name: str
    title: str
    version: str
    summary: str
    html: Markup
    language: str = SOURCE_LANGUAGE
    # True when the interface language has no translation of it, so it is in English.
    fallback: bool = False


def parse_guideline(name: str, source: str, language: str = SOURCE_LANGUAGE) -> Guideline:
    header, separator, body = source.partition("\n---\n")
    if not separator:
        raise ValueError(f"guideline {name}: no '---' line after the header")
    fields: dict[str, str] = {}
    for line in header.strip().splitlines():
        key, _sep, value = line.partition(":")
        fields[key.strip()] = value.strip()
    missing = {"title", "version", "summary"} - fields.keys()
    if missing:
        raise ValueError(f"guideline {name}: missing {', '.join(sorted(missing))}")
    return Guideline(
        name=name,
        title=fields["title"],
        version=fields["version"],
        summary=fields["summary"],
        html=render_markdown(body),
        language=language,
    )


@cache
def guidelines_in(language: str) -> dict[str, Guideline]:
    """Every guideline by name as `language` shows it, read once per process (they ship
    with the code)."""
    english = {
        path.stem: parse_guideline(path.stem, path.read_text(encoding="utf-8"))
        for path in GUIDELINES_DIR.glob("*.md")
    }
    found: dict[str, Guideline] = {}
    for name, source in english.items():
        path = GUIDELINES_DIR / language / f"{name}.md"
        if language == SOURCE_LANGUAGE:
            found[name] = source
        elif path.is_file():
            translated = parse_guideline(name, path.read_text(encoding="utf-8"), language)
            found[name] = replace(translated, version=source.version)
        else:
            found[name] = replace(source, fallback=True)
    return {name: found[name] for name in ORDER if name in found} | found


def all_guidelines() -> dict[str, Guideline]:
    """Every guideline by name, in the current interface language where translated."""
    return guidelines_in(current_locale())


def get_guideline(name: str) -> Guideline:
    guideline = all_guidelines().get(name)
    if guideline is None:
        raise NotFound(_("There is no guideline with that name."))
    return guideline


def guideline_for_kind(kind: str) -> Guideline:
    return get_guideline(GUIDELINE_FOR_KIND[TaskKind(kind)])
