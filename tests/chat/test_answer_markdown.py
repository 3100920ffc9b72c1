"""An answer's Markdown while it streams: settled blocks rendered once, the open tail
again with each piece, adding up to the whole answer rendered at once."""

from __future__ import annotations

import pytest

from hedgerow.chat.answer_markdown import AnswerMarkdown, settled_end
from hedgerow.markdown import render_markdown

ANSWERS = {
    "paragraphs and emphasis": "Hedgehogs **sleep** in winter.\n\nThey wake in *spring*.\n\nDone.",
    "a fenced code block with blank lines": (
        "Try this:\n\n```python\ndef nap():\n\n\n    return 'zzz'\n```\n\nIt returns `zzz`."
    ),
    "a tilde fence holding backticks": "~~~\n```\n\nnot a fence\n~~~\n\nAfter.",
    "a list item continued after a blank line": "- leaves\n\n  and moss\n- twigs\n\nThe end.",
    "headings, a quote and a table": (
        "# Winter\n\n> Sleep\n> well\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n## Spring\n\nWake."
    ),
    "an indented code block": "Code:\n\n    x = 1\n\n    y = 2\n\nText.",
}


def _stream(answer: str, size: int) -> list[tuple[str, str]]:
    markdown = AnswerMarkdown()
    return [markdown.add(answer[i : i + size]) for i in range(0, len(answer), size)]


@pytest.mark.parametrize("answer", ANSWERS.values(), ids=ANSWERS.keys())
@pytest.mark.parametrize("size", [1, 5, 40])
def test_the_streamed_html_adds_up_to_the_whole_answer_rendered(answer: str, size: int) -> None:
    updates = _stream(answer, size)
    settled = [html for html, _ in updates if html]
    assert "".join(settled) + updates[-1][1] == render_markdown(answer)
    # A settled part never holds half a code block.
    assert all(html.count("<pre>") == html.count("</pre>") for html in settled)


def test_blocks_settle_as_the_answer_goes_on() -> None:
    updates = _stream(ANSWERS["paragraphs and emphasis"], 1)
    settled = [html for html, _ in updates if html]
    assert settled == [
        "<p>Hedgehogs <strong>sleep</strong> in winter.</p>\n",
        "<p>They wake in <em>spring</em>.</p>\n",
    ]
    # The tail is only what is still open: the last paragraph.
    assert updates[-1][1] == "<p>Done.</p>\n"


def test_nothing_settles_inside_an_open_code_block() -> None:
    text = "Intro.\n\n```\na\n\nb\n\nc"
    assert text[settled_end(text) :] == "```\na\n\nb\n\nc"
    closed = text + "\n```\n\nNext"
    assert closed[settled_end(closed) :] == "Next"


def test_raw_html_in_an_answer_stays_text() -> None:
    settled, tail = AnswerMarkdown().add('<script>alert(1)</script> <a href="https://x.org">a</a>')
    assert settled == ""
    assert "<script" not in tail and "<a " not in tail
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in tail


def test_a_javascript_link_is_not_a_link() -> None:
    _, tail = AnswerMarkdown().add("[click](javascript:alert(1)) and [ok](https://x.org)")
    assert tail.count("<a ") == 1 and 'href="https://x.org"' in tail
