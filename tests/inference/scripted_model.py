"""A real Llama model, built locally with hand-set weights, whose greedy answer is a byte
sequence chosen by the test: what it takes to show how a server decodes multi-byte
characters, control characters and invalid bytes, which the randomly initialised tiny
model only writes by chance.

The tokenizer is byte-level BPE without merges, so every byte of the answer is a token of
its own. The model is a bigram table: the attention and MLP blocks write nothing, so the
last hidden state is the (normalised) embedding of the current token, and the output
layer maps it to the next byte of the script. The script must not repeat a byte.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from hedgerow.training.tiny import CHAT_TEMPLATE, SPECIAL_TOKENS, TURN_END

# Valid multi-byte characters (2, 3 and 4 bytes), control characters, a byte that is never
# valid UTF-8, then more text. Cut after 9 tokens, the answer ends inside the emoji.
SCRIPT = b"Ok" + "é€😀".encode() + b"!\x17\x08\xff?"
SCRIPT_CUT_INSIDE_THE_EMOJI = 9
HIDDEN_SIZE = 32
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


def build_scripted_model(directory: Path, script: bytes = SCRIPT) -> Path:
    """Save the tokenizer and the model that answers `script` (then ends its turn)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    assert len(set(script)) == len(script) and b"\n"[0] not in script, "a byte repeats"
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    vocab.update({char: byte_token(byte) for byte, char in enumerate(_byte_characters())})
    bpe = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.add_special_tokens(SPECIAL_TOKENS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|bos|>", eos_token=TURN_END, pad_token="<|pad|>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    # The generation prompt ends with a newline: the answer's first byte follows it.
    chain = [byte_token(ord("\n")), *(byte_token(b) for b in script), tokenizer.eos_token_id]
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
