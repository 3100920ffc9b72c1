"""Templates get every filter and global from templating.py itself, so a page renders the
same whichever modules a process happened to import first."""

from __future__ import annotations

import subprocess
import sys


def test_the_markdown_filter_is_there_with_nothing_but_templating_imported() -> None:
    probe = (
        "from hedgerow.templating import templates; "
        "print(templates.env.from_string('{{ text | markdown }}').render(text='**bold**'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "<p><strong>bold</strong></p>"
