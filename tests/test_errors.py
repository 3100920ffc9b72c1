"""Errors are plain values: raising one needs no web framework (the growth engine, jobs and
the CLI raise them); error_handlers.py is where they meet FastAPI."""

from __future__ import annotations

import ast
from pathlib import Path

import hedgerow
from hedgerow.errors import NotFound
from tests.fresh_python import fresh_python_output


def test_the_error_values_import_no_web_framework() -> None:
    loaded = fresh_python_output(
        "import sys, hedgerow.errors; "
        "print(sorted(m for m in ('fastapi', 'starlette') if m in sys.modules))"
    )
    assert loaded == "[]"


def _not_found_arguments() -> list[tuple[str, str]]:
    """Every literal NotFound(...) argument in the code base, with where it is."""
    found: list[tuple[str, str]] = []
    package = Path(hedgerow.__file__).parent
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "NotFound"):
                continue
            argument = node.args[0] if node.args else None
            assert isinstance(argument, ast.Constant) or argument is None, (
                f"{path}:{node.lineno}: NotFound takes a literal, so this test can read it"
            )
            where = f"{path.relative_to(package)}:{node.lineno}"
            found.append((where, argument.value if argument is not None else "page"))
    return found


def test_every_not_found_message_is_one_plain_sentence() -> None:
    arguments = _not_found_arguments()
    assert len(arguments) > 10
    problems = []
    for where, argument in arguments:
        message = NotFound(argument).message
        sentence = message[:-1]
        if not (message[0].isupper() and message.endswith(".") and "." not in sentence):
            problems.append(f"{where}: {message!r}")
    assert not problems, "\n".join(problems)


def test_not_found_names_the_thing_or_takes_a_whole_sentence() -> None:
    assert NotFound("message").message == "That message does not exist."
    assert NotFound().message == "That page does not exist."
    assert NotFound("No such dataset release.").message == "No such dataset release."
    assert NotFound("No such dataset release.").status == 404
