"""The guidelines: one per task kind plus a general one, versioned with the labels."""

from __future__ import annotations

from fastapi.testclient import TestClient

from hedgerow.contribute.guidelines import GUIDELINE_FOR_KIND, all_guidelines, parse_guideline
from hedgerow.growth.labels import GUIDELINE_VERSION
from hedgerow.models import TaskKind


def test_every_kind_has_a_guideline_and_versions_match_the_labels() -> None:
    guidelines = all_guidelines()
    assert "general" in guidelines
    for kind in TaskKind:
        assert GUIDELINE_FOR_KIND[kind] in guidelines
    # The version recorded with every label is the guidelines' version.
    assert {g.version for g in guidelines.values()} == {GUIDELINE_VERSION}


def test_guideline_pages_render(client: TestClient) -> None:
    index = client.get("/guidelines")
    assert index.status_code == 200 and "/guidelines/ranking" in index.text
    page = client.get("/guidelines/review")
    assert page.status_code == 200 and "<h2>Required labels</h2>" in page.text
    assert client.get("/guidelines/nope").status_code == 404


def test_guideline_markdown_is_sanitised() -> None:
    guideline = parse_guideline(
        "x", "title: T\nversion: 1\nsummary: s\n---\n<script>x()</script> [a](javascript:x())"
    )
    assert "<script>" not in guideline.html
    assert "javascript:" not in guideline.html.replace("[a](javascript:x())", "")
