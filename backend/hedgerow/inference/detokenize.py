"""Text from a growing list of generated token ids, one complete piece at a time.

A token is not a character: a byte-level tokenizer (GPT-2, Llama 3, Qwen, our tiny model)
or SentencePiece's byte fallback (Llama 2, Mistral) spreads one multi-byte character over
several tokens, and decoding such a token alone gives U+FFFD. A SentencePiece tokenizer
also drops the leading space of the first token it decodes. So the decoder never decodes a
token alone: it decodes a short window of recent tokens twice, with and without the new
ones, and sends the difference once it no longer ends in an unfinished character. This is
what vLLM and text-generation-inference do, and it works with any tokenizer's `decode`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

REPLACEMENT = "\ufffd"


class IncrementalDecoder:
    """`push` the ids as they are generated and send what it returns; `finish` at the end.

    `_prefix_offset` starts the window decoded for context; `_read_offset` is where the
    text already sent ends. The window restarts after each piece sent, so the decoding
    stays short on long answers."""

    def __init__(self, tokenizer: Any, *, skip_special_tokens: bool = True) -> None:
        self._tokenizer = tokenizer
        self._skip_special_tokens = skip_special_tokens
        self._ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=self._skip_special_tokens))

    def _unsent(self) -> str:
        sent = self._decode(self._ids[self._prefix_offset : self._read_offset])
        text = self._decode(self._ids[self._prefix_offset :])
        return text[len(sent) :] if len(text) > len(sent) else ""

    def push(self, ids: Iterable[int]) -> str:
        """The new complete text after these ids, or "" while a character is unfinished
        (or the ids were special tokens)."""
        self._ids.extend(ids)
        piece = self._unsent()
        if not piece or piece.endswith(REPLACEMENT):
            return ""
        self._prefix_offset = self._read_offset
        self._read_offset = len(self._ids)
        return piece

    def finish(self) -> str:
        """What is left when generation ends: its complete characters; a character cut
        off by the token limit (or a stop) is dropped rather than sent as U+FFFD."""
        piece = self._unsent().rstrip(REPLACEMENT)
        self._prefix_offset = self._read_offset = len(self._ids)
        return piece
