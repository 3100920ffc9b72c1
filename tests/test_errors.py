"""Errors are plain values: raising one needs no web framework (the growth engine, jobs and
the CLI raise them); error_handlers.py is where they meet FastAPI."""

from __future__ import annotations

import subprocess
import sys


def test_the_error_values_import_no_web_framework() -> None:
    probe = (
        "import sys, hedgerow.errors; "
        "print(sorted(m for m in ('fastapi', 'starlette') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
