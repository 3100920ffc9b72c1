"""Run a few lines in a new interpreter, where only what they import themselves is loaded:
for tests of what a module needs, or provides, on its own."""

from __future__ import annotations

import subprocess
import sys


def fresh_python_output(code: str) -> str:
    """What `code` prints, stripped; fails the test if it raises."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
