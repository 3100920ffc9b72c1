"""A real Llama model, built locally with hand-set weights, whose greedy answer is a byte
sequence chosen by the test: what it takes to show how a server decodes multi-byte
characters, control characters and invalid bytes, which the randomly initialised tiny
model only writes by chance.

The tokenizer is byte-level BPE without merges, so every byte is a token of its own, plus
a token for each longer piece of the script. The model is a bigram table: the attention
and MLP blocks write nothing, so the last hidden state is the (normalised) embedding of
the current token, and the output layer maps it to the next token of the script. So the
script must not repeat a token.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from hedgerow.training.tiny import CHAT_TEMPLATE, SPECIAL_TOKENS, TURN_END

# Valid multi-byte characters (2, 3 and 4 bytes), control characters, a byte that is never
# valid UTF-8, then more text, a byte a token. Cut after 9 tokens, the answer ends inside
# the emoji.
SCRIPT = b"Ok" + "é€😀".encode() + b"!\x17\x08\xff?"
SCRIPT_CUT_INSIDE_THE_EMOJI = 9
HIDDEN_SIZE = 64
NEXT_TOKEN_LOGIT = 20.0


def _byte_characters() -> list[str]:
    """GPT-2's byte-to-character table, which the ByteLevel pre-tokenizer and decoder use:
    printable bytes stand for themselves, the others for characters from U+0100 up."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    characters: list[str] = []
    shifted = 0
    for byte in range(256):
        if byte in printable:
            characters.append(chr(byte))
        else:
            characters.append(chr(256 + shifted))
            shifted += 1
    return characters


def byte_token(byte: int) -> int:
    return len(SPECIAL_TOKENS) + byte


def build_scripted_model(directory: Path, script: bytes | Sequence[bytes] = SCRIPT) -> Path:
    """Save the tokenizer and the model that answers `script` (then ends its turn): bytes
    for a token a byte, or a sequence of pieces for a token a piece."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    pieces = [bytes([b]) for b in script] if isinstance(script, bytes) else list(script)
    # The prompt ends with a newline token: it starts the chain, so no piece may be one.
    assert len(set(pieces)) == len(pieces) and b"\n" not in pieces, "a token repeats"
    characters = _byte_characters()
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    vocab.update({char: byte_token(byte) for byte, char in enumerate(characters)})
    for piece in pieces:
        vocab.setdefault("".join(characters[byte] for byte in piece), len(vocab))
    bpe = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.add_special_tokens(SPECIAL_TOKENS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|bos|>", eos_token=TURN_END, pad_token="<|pad|>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    # The generation prompt ends with a newline: the answer's first token follows it.
    chain = [
        byte_token(ord("\n")),
        *(vocab["".join(characters[byte] for byte in piece)] for piece in pieces),
        tokenizer.eos_token_id,
    ]
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=HIDDEN_SIZE,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    assert len(chain) <= HIDDEN_SIZE
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        for norm in (model.model.norm, *(layer.input_layernorm for layer in model.model.layers)):
            norm.weight.fill_(1.0)
        for slot, (token, following) in enumerate(itertools.pairwise(chain)):
            model.model.embed_tokens.weight[token, slot] = 1.0
            model.lm_head.weight[following, slot] = NEXT_TOKEN_LOGIT
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


# An answer in Markdown, a token a piece: emphasis, a fenced code block with a blank line
# inside (which must not end it early), a list, and raw HTML that must stay text.
MARKDOWN_SCRIPT = [
    b"Hedgehogs **sleep**",
    b" all winter.\n\n",
    b"```python\n",
    b"def nap():\n\n",
    b"    return 'zzz'\n",
    b"```\n\n",
    b"- leaves\n",
    b"- <b>moss</b>",
]
MARKDOWN_ANSWER = b"".join(MARKDOWN_SCRIPT).decode()
