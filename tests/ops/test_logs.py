"""Log lines cannot be forged: control characters in anything a client sends (the path,
headers) are escaped in every log line, in text and in JSON."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from hedgerow.config import get_settings
from hedgerow.logs import configure_logging, escape_control_characters

FORGING_PATHS = [
    "/x%0aFORGED-LINE",
    "/x%0d%0aFORGED-LINE 2026-01-01 INFO [abc] hedgerow.access: GET / 200",
    "/x%1b[31mFORGED-COLOUR%00%7f",
    "/x%e2%80%a8FORGED-LINE-SEPARATOR%c2%85NEL",
]


@pytest.mark.parametrize("json_logs", [False, True])
def test_a_path_or_header_with_control_characters_cannot_forge_a_log_line(
    client: TestClient, capsys: pytest.CaptureFixture[str], json_logs: bool
) -> None:
    settings = get_settings().model_copy(update={"log_json": json_logs, "log_level": "info"})
    configure_logging(settings)  # the handler writes to the stderr capsys captures
    capsys.readouterr()
    for path in FORGING_PATHS:
        client.get(path, headers={"X-Request-ID": "id\nFORGED-ID-LINE"})

    lines = capsys.readouterr().err.splitlines()
    access = [line for line in lines if "hedgerow.access" in line]
    assert len(access) == len(FORGING_PATHS)
    for line in lines:
        assert "FORGED" not in line or "hedgerow.access" in line, f"forged line: {line!r}"
        assert not any(escape_control_characters(c) != c for c in line), repr(line)
        if json_logs:
            json.loads(line)
    assert "FORGED-ID-LINE" not in "\n".join(lines)


def test_escaping_shows_control_characters_as_python_escapes() -> None:
    assert escape_control_characters("a\nb\r\x00\x1b\x7f\x85\u2028c") == (
        "a\\nb\\r\\x00\\x1b\\x7f\\x85\\u2028c"
    )
    assert escape_control_characters("plain text, ünïcödé") == "plain text, ünïcödé"
