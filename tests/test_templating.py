"""Templates get every filter and global from templating.py itself, so a page renders the
same whichever modules a process happened to import first."""

from __future__ import annotations

from tests.fresh_python import fresh_python_output


def test_the_markdown_filter_is_there_with_nothing_but_templating_imported() -> None:
    rendered = fresh_python_output(
        "from hedgerow.templating import templates; "
        "print(templates.env.from_string('{{ text | markdown }}').render(text='**bold**'))"
    )
    assert rendered == "<p><strong>bold</strong></p>"
