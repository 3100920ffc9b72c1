"""Errors are plain values: raising one needs no web framework (the growth engine, jobs and
the CLI raise them); error_handlers.py is where they meet FastAPI."""

from __future__ import annotations

from tests.fresh_python import fresh_python_output


def test_the_error_values_import_no_web_framework() -> None:
    loaded = fresh_python_output(
        "import sys, hedgerow.errors; "
        "print(sorted(m for m in ('fastapi', 'starlette') if m in sys.modules))"
    )
    assert loaded == "[]"
