"""`hedgerow export`: an on-demand release from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from hedgerow.cli import cli
from hedgerow.models import Release, ReleaseKind, ReleaseState
from tests.export.conftest import Corpus

runner = CliRunner()


def test_export_command_publishes_a_release_with_the_given_filters(
    corpus: Corpus, releases_dir: Path
) -> None:
    result = runner.invoke(cli, ["export", "--pin", "--language", "en", "--include-spam"])
    assert result.exit_code == 0, result.output
    assert "Published" in result.output
    with corpus.maker() as db:
        release = db.scalars(select(Release)).one()
    assert (release.kind, release.state, release.pinned) == (
        ReleaseKind.manual,
        ReleaseState.published,
        True,
    )
    manifest = json.loads((releases_dir / release.name / "manifest.json").read_text())
    assert manifest["filters"]["languages"] == ["en"]
    assert manifest["filters"]["include_spam"] is True
    assert manifest["messages"] > 0


def test_export_command_filters_out_other_languages(corpus: Corpus, releases_dir: Path) -> None:
    result = runner.invoke(cli, ["export", "--nightly", "--language", "de"])
    assert result.exit_code == 0, result.output
    with corpus.maker() as db:
        release = db.scalars(select(Release)).one()
    assert release.kind == ReleaseKind.nightly
    assert release.counts is not None and release.counts["messages"] == 0


def test_export_command_refuses_an_unknown_state(corpus: Corpus, releases_dir: Path) -> None:
    result = runner.invoke(cli, ["export", "--state", "finished"])
    assert result.exit_code == 1
    assert "unknown tree states: finished" in result.output
    with corpus.maker() as db:
        assert db.scalars(select(Release)).all() == []
    assert list(releases_dir.iterdir()) == []
