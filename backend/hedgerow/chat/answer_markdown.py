"""An answer's Markdown while it streams, rendered by hedgerow.markdown (markdown-it, then
nh3) like every other text, a piece at a time.

Rendering the whole answer again after every token would cost the web process time that
grows with the square of the answer's length, and would rebuild on screen what the reader
already sees. So the answer is split into settled blocks, which no later text can change
and which are rendered once and appended, and the open tail after them, rendered again
with each piece. A block is settled once a blank line outside a fenced code block is
followed by a line that starts a new block (not indented: an indented line may still
continue a list item or an indented code block). When the answer is complete it is
rendered whole (`render_markdown`), which also joins what the split could not know,
such as list items separated by blank lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hedgerow.markdown import render_markdown

# A fence opens with 3 or more backticks or tildes, indented by at most 3 spaces.
FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


@dataclass
class _Fence:
    char: str
    length: int

    def closed_by(self, line: str) -> bool:
        marker = FENCE.match(line)
        return (
            marker is not None
            and marker.group(1)[0] == self.char
            and len(marker.group(1)) >= self.length
            and not line[marker.end() :].strip()
        )


def _opening_fence(line: str) -> _Fence | None:
    marker = FENCE.match(line)
    if marker is None:
        return None
    char = marker.group(1)[0]
    # A backtick fence's info string has no backtick (else it is inline code).
    if char == "`" and "`" in line[marker.end() :]:
        return None
    return _Fence(char, len(marker.group(1)))


def settled_end(text: str, start: int = 0) -> int:
    """Where the settled blocks of `text[start:]` end: the start of the last line that
    begins a new block after a blank line outside a fenced code block; `start` when there
    is none. `start` must itself be such a place (or 0)."""
    end = start
    fence: _Fence | None = None
    after_blank = False
    offset = start
    for line in text[start:].splitlines(keepends=True):
        if fence is not None:
            if fence.closed_by(line):
                fence = None
        elif not line.strip():
            after_blank = True
        else:
            if after_blank and not line[0].isspace():
                end = offset
            after_blank = False
            fence = _opening_fence(line)
        offset += len(line)
    return end


class AnswerMarkdown:
    """`add` each piece of the answer as it arrives; send what it returns."""

    def __init__(self) -> None:
        self.text = ""
        self._settled = 0

    def add(self, piece: str) -> tuple[str, str]:
        """The HTML of the blocks this piece settled (to append after the earlier ones)
        and the HTML of the open tail (to replace the previous tail)."""
        self.text += piece
        end = settled_end(self.text, self._settled)
        settled = render_markdown(self.text[self._settled : end]) if end > self._settled else ""
        self._settled = end
        return str(settled), str(render_markdown(self.text[end:]))
