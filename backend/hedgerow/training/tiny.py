"""A tiny Llama-style base model whose tokenizer is trained on the release itself.

It lets the default configuration train end to end on a CPU with no download (the
tests' short runs in seconds; a default run on a small release in minutes, see
bench/README.md, "A newcomer's first run"): the tokenizer is a byte-level BPE learnt
from the release's own texts, the chat template is ChatML-like, and the weights start
from a seeded random init.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

TINY_BASE_MODEL = "tiny"
PAD_TOKEN = "<|pad|>"  # noqa: S105 - a vocabulary entry, not a secret
BOS_TOKEN = "<|bos|>"  # noqa: S105 - a vocabulary entry, not a secret
TURN_START = "<|im_start|>"
# The end of a turn is also the end of generation: greedy decoding stops there.
TURN_END = "<|im_end|>"
SPECIAL_TOKENS = [PAD_TOKEN, BOS_TOKEN, TURN_START, TURN_END]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
PROMPT_FORMAT = "<|im_start|>{role}\\n{content}<|im_end|>\\n ... <|im_start|>assistant\\n"

# Small enough for the tests' short runs to take seconds on one CPU core, big enough to
# memorise a few dozen conversations (which the tests check).
VOCAB_SIZE = 1024
HIDDEN_SIZE = 128
LAYERS = 2
HEADS = 4
KV_HEADS = 2


def build_tiny_model(texts: Iterable[str], directory: Path, *, max_length: int, seed: int) -> Path:
    """Train the tokenizer on `texts`, make the model and save both in `directory`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        # Every byte is in the vocabulary, so any text encodes, seen or not.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=BOS_TOKEN,
        eos_token=TURN_END,
        pad_token=PAD_TOKEN,
        model_max_length=max_length,
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=HIDDEN_SIZE * 4,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        max_position_embeddings=max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
