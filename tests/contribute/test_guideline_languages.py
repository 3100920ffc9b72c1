"""Guidelines and review labels in the interface language: a guideline translated as a
whole file, English with a note where there is none yet, the version always the English
file's; label titles translated, their stored keys not."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hedgerow.contribute import guidelines as guidelines_module
from hedgerow.contribute.guidelines import GUIDELINES_DIR, guidelines_in
from hedgerow.growth.labels import GUIDELINE_VERSION, LABELS
from hedgerow.i18n.locales import INTERFACE_LANGUAGES
from hedgerow.i18n.translation import translations

SPANISH_GENERAL = """title: Pautas generales
version: 1999-01
summary: Sé útil, honesto y amable.
---
Hedgerow recoge conversaciones entre un **usuario** y un **asistente**.
"""


@pytest.fixture
def guideline_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The shipped English guidelines, with only a Spanish general guideline translated."""
    for path in GUIDELINES_DIR.glob("*.md"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "es").mkdir()
    (tmp_path / "es" / "general.md").write_text(SPANISH_GENERAL, encoding="utf-8")
    monkeypatch.setattr(guidelines_module, "GUIDELINES_DIR", tmp_path)
    guidelines_in.cache_clear()
    yield tmp_path
    guidelines_in.cache_clear()


def test_a_translated_guideline_is_served_with_the_english_version(
    client: TestClient, guideline_dir: Path
) -> None:
    page = client.get("/guidelines/general", headers={"Accept-Language": "es"})
    assert page.status_code == 200
    assert "Pautas generales" in page.text and "<strong>usuario</strong>" in page.text
    assert 'lang="es"' in page.text
    assert 'data-testid="guideline-fallback"' not in page.text
    # The version a label is stamped with is the guideline's, not the translation's.
    assert GUIDELINE_VERSION in page.text and "1999-01" not in page.text
    assert {g.version for g in guidelines_in("es").values()} == {GUIDELINE_VERSION}


def test_an_untranslated_guideline_falls_back_to_english_with_a_note(
    client: TestClient, guideline_dir: Path
) -> None:
    page = client.get("/guidelines/review", headers={"Accept-Language": "es"})
    assert page.status_code == 200
    assert 'data-testid="guideline-fallback"' in page.text
    assert "<h2>Required labels</h2>" in page.text and 'lang="en"' in page.text
    index = client.get("/guidelines", headers={"Accept-Language": "es"})
    assert "Pautas generales" in index.text and 'data-testid="guideline-fallback"' in index.text
    english = client.get("/guidelines/review", headers={"Accept-Language": "en"})
    assert 'data-testid="guideline-fallback"' not in english.text


def test_every_shipped_translation_matches_an_english_guideline() -> None:
    english = {path.stem for path in GUIDELINES_DIR.glob("*.md")}
    for folder in (p for p in GUIDELINES_DIR.iterdir() if p.is_dir()):
        assert folder.name in INTERFACE_LANGUAGES, f"{folder}: not an interface language"
        for path in folder.glob("*.md"):
            assert path.stem in english, f"{path}: no English guideline of that name"
        found = guidelines_in(folder.name)
        assert {g.version for g in found.values()} == {GUIDELINE_VERSION}
        assert all(g.language == folder.name for g in found.values() if not g.fallback)


def test_the_labels_api_answers_in_the_requested_language_with_the_same_keys(
    client: TestClient,
) -> None:
    english = client.get("/api/v1/labels", headers={"Accept-Language": "en"}).json()
    spanish = client.get("/api/v1/labels", headers={"Accept-Language": "es"}).json()
    assert [label["name"] for label in spanish["labels"]] == [label.name for label in LABELS]
    assert [label["name"] for label in english["labels"]] == [label.name for label in LABELS]
    assert spanish["guideline_version"] == english["guideline_version"] == GUIDELINE_VERSION
    catalog = translations("es")
    for label, shown in zip(LABELS, spanish["labels"], strict=True):
        assert shown["title"] == catalog.gettext(label.title)
        assert shown["description"] == catalog.gettext(label.description) != label.description
    quality = next(label for label in spanish["labels"] if label["name"] == "quality")
    assert quality["title"] == "Calidad"
    assert english["labels"][0]["title"] == "Spam"
