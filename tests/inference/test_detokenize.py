"""IncrementalDecoder with the two kinds of tokenizer that split characters over tokens:
byte-level BPE and SentencePiece with byte fallback."""

from __future__ import annotations

from typing import Any

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from hedgerow.inference.detokenize import IncrementalDecoder
from tests.inference.scripted_model import build_scripted_model, byte_token

# An indented line: a decoder that restarts at a newline would lose a space of the indent.
TEXT = "Hé said:\n  1 € is 😀 at all"


def _byte_level(tmp_path: Any) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(build_scripted_model(tmp_path / "m", b"x"))


def _sentencepiece_with_byte_fallback() -> Any:
    """A Llama 2-style tokenizer: spaces as "▁", characters outside the vocabulary as
    <0xNN> byte tokens, a decoder that drops the first space of what it decodes."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"<0x{byte:02X}>": 3 + byte for byte in range(256)})
    vocab.update({"▁": len(vocab), "é": len(vocab) + 1, "\n": len(vocab) + 2})
    spm = Tokenizer(models.BPE(vocab=vocab, merges=[], byte_fallback=True, unk_token="<unk>"))
    spm.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    spm.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    spm.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    return PreTrainedTokenizerFast(tokenizer_object=spm, bos_token="<s>", eos_token="</s>")


def _pieces(tokenizer: Any, ids: list[int]) -> list[str]:
    decoder = IncrementalDecoder(tokenizer)
    pieces = [decoder.push([token]) for token in ids]
    return [piece for piece in [*pieces, decoder.finish()] if piece]


def test_byte_level_pieces_are_whole_characters(tmp_path: Any) -> None:
    tokenizer = _byte_level(tmp_path)
    ids = [byte_token(byte) for byte in TEXT.encode()]
    assert len(ids) > len(TEXT)  # some characters do span several tokens
    pieces = _pieces(tokenizer, ids)
    assert "".join(pieces) == TEXT
    assert all("\ufffd" not in piece for piece in pieces)
    assert "😀" in pieces and "€" in pieces


def test_sentencepiece_pieces_keep_their_spaces_and_characters() -> None:
    tokenizer = _sentencepiece_with_byte_fallback()
    ids = tokenizer.encode(TEXT, add_special_tokens=False)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert "<0xF0>" in tokens and "<0xE2>" in tokens  # the emoji and € as bytes
    # Decoded alone, a "▁" token would lose its space.
    assert tokenizer.decode(ids[tokens.index("▁")]) == ""
    pieces = _pieces(tokenizer, ids)
    assert "".join(pieces) == tokenizer.decode(ids) == TEXT
    assert all("\ufffd" not in piece for piece in pieces)


def test_an_unfinished_character_at_the_end_is_dropped(tmp_path: Any) -> None:
    tokenizer = _byte_level(tmp_path)
    ids = [byte_token(byte) for byte in "ok😀".encode()[:-1]]
    assert _pieces(tokenizer, ids) == ["o", "k"]


def test_special_tokens_add_no_text(tmp_path: Any) -> None:
    tokenizer = _byte_level(tmp_path)
    decoder = IncrementalDecoder(tokenizer)
    assert decoder.push([byte_token(ord("a"))]) == "a"
    assert decoder.push([tokenizer.eos_token_id]) == ""
    assert decoder.push([byte_token(ord("b"))]) == "b"
    assert decoder.finish() == ""
