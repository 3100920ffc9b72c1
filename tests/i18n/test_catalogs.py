"""Every shipped catalog is complete, current and well-formed: a broken translation fails
`make test`, never a page at runtime."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from hedgerow.config import REPO_ROOT
from hedgerow.i18n.locales import INTERFACE_LANGUAGES, LOCALE_DIR, SOURCE_LANGUAGE
from hedgerow.i18n.translation import translations

TRANSLATED = sorted(set(INTERFACE_LANGUAGES) - {SOURCE_LANGUAGE})


def _catalog(language: str) -> Catalog:
    path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    assert path.is_file(), f"{language} has no catalog at {path}"
    with path.open("rb") as f:
        return read_po(f, locale=language)


def _key(message_id: str | tuple[str, ...]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


@pytest.fixture(scope="module")
def source_messages() -> set[str]:
    """What `make i18n` would extract from the code and templates today."""
    with (REPO_ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {**DEFAULT_KEYWORDS, "lazy_gettext": None}
    return {
        _key(message_id)
        for _file, _line, message_id, _comments, _context in extract_from_dir(
            str(REPO_ROOT), method_map, options_map, keywords=keywords
        )
    }


def test_the_source_has_strings_to_translate(source_messages: set[str]) -> None:
    assert "Terms of Service" in source_messages


@pytest.mark.parametrize("language", TRANSLATED)
def test_each_catalog_matches_the_source(language: str, source_messages: set[str]) -> None:
    catalog = _catalog(language)
    in_catalog = {_key(m.id) for m in catalog if m.id}
    missing = sorted(source_messages - in_catalog)
    assert not missing, f"{language}: not in the catalog (run `make i18n`): {missing[:20]}"
    extra = sorted(in_catalog - source_messages)
    assert not extra, f"{language}: no longer in the source (run `make i18n`): {extra[:20]}"
    assert not catalog.obsolete, f"{language}: obsolete entries: {list(catalog.obsolete)[:20]}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_each_catalog_is_fully_translated_and_reviewed(language: str) -> None:
    catalog = _catalog(language)
    fuzzy = [_key(m.id) for m in catalog if m.id and m.fuzzy]
    assert not fuzzy, f"{language}: fuzzy entries to review: {fuzzy[:20]}"
    untranslated = [
        _key(m.id)
        for m in catalog
        if m.id and (not m.string or (isinstance(m.string, tuple) and not all(m.string)))
    ]
    assert not untranslated, f"{language}: untranslated: {untranslated[:20]}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_each_translation_keeps_the_placeholders_of_its_source(language: str) -> None:
    catalog = _catalog(language)
    problems = [
        f"{_key(message.id)!r}: {'; '.join(str(e) for e in errors)}"
        for message, errors in catalog.check()
    ]
    assert not problems, f"{language}: {problems[:20]}"
    # Babel's check compares placeholder names only where the entry is flagged
    # python-format; compare them everywhere.
    for message in catalog:
        if message.id and isinstance(message.id, str) and message.string:
            assert _placeholders(message.id) == _placeholders(message.string), (
                f"{language}: {message.id!r} -> {message.string!r}"
            )


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_served_catalog_is_compiled_from_the_current_one(language: str) -> None:
    """The .mo the server reads (compiled by the install step) says what the .po says."""
    compiled = translations(language)
    stale = [
        _key(m.id)
        for m in _catalog(language)
        if m.id and isinstance(m.id, str) and m.string and compiled.gettext(m.id) != m.string
    ]
    assert not stale, f"{language}: run `make catalogs`; stale entries: {stale[:10]}"


def _placeholders(text: str) -> list[str]:
    return sorted(re.findall(r"%\(\w+\)[sd]", text))


def test_every_shipped_language_has_a_catalog_directory() -> None:
    shipped = {p.name for p in Path(LOCALE_DIR).iterdir() if p.is_dir()}
    assert shipped == set(TRANSLATED)
