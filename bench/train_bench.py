"""Training throughput: tokens/s and MFU of the SFT path (`hedgerow.training.trainer.train`,
TRL's SFTTrainer) for a fixed number of steps.

The model is a Llama-style config at the chosen size with random weights (throughput does
not depend on the weights, and the GPU machines cannot download), or `--base-model PATH`
for a real checkpoint on disk. Conversations are synthetic, long enough to fill
`--max-length`; the tokenizer is the tiny model's, trained on them.

    python bench/train_bench.py --size tiny --steps 30            # CPU, seconds
    python bench/train_bench.py --size 0.5b --steps 50 --batch-size 8 --max-length 2048
    python bench/train_bench.py --size 0.5b --steps 50 --num-processes 2   # 2 GPUs, DDP

`--num-processes N` (N > 1) runs the steps as the worker does: a process group launched
with accelerate (`hedgerow.training.launch`), one process per GPU (gloo CPU processes
without one). Tokens count every process's rows; "seconds" is the main rank's time in
its training loop, "wall" adds the launch, imports and model loading of the group.

MFU = 6 x parameters x tokens/s / peak FLOP/s (the usual estimate for a forward and
backward pass; attention FLOPs left out). `--peak-tflops` defaults to the H100 SXM dense
bf16 figure (989) on a GPU; on a CPU no MFU is printed unless it is given.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path

# name: hidden, intermediate, layers, heads, kv heads, vocabulary
SIZES: dict[str, tuple[int, int, int, int, int, int]] = {
    "tiny": (128, 512, 2, 4, 2, 1024),
    # Qwen2.5-0.5B's shape: ~0.49B parameters with its 151,936-token vocabulary.
    "0.5b": (896, 4864, 24, 14, 2, 151_936),
    # Llama-3.2-1B's shape: ~1.2B parameters.
    "1b": (2048, 8192, 16, 32, 8, 128_256),
}
WORDS = [
    "hedgerow",
    "hawthorn",
    "hazel",
    "blackthorn",
    "wren",
    "robin",
    "dormouse",
    "badger",
    "vole",
    "bee",
    "spring",
    "summer",
    "autumn",
    "winter",
    "nest",
    "forage",
    "sleep",
    "sing",
    "berry",
    "flower",
    "leaf",
    "branch",
    "field",
    "lane",
    "village",
]
H100_BF16_DENSE_TFLOPS = 989.0


def synthetic_conversations(
    count: int, words_per_turn: int, seed: int
) -> list[list[dict[str, str]]]:
    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(words_per_turn)) + "."

    return [
        [{"role": "user", "content": sentence()}, {"role": "assistant", "content": sentence()}]
        for _ in range(count)
    ]


def build_base(size: str, directory: Path, texts: list[str], max_length: int) -> Path:
    """The tiny tokenizer, and a randomly initialised model of `size` sharing it."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from hedgerow.training.tiny import build_tiny_model

    build_tiny_model(texts, directory, max_length=max_length, seed=0)
    if size == "tiny":
        return directory
    tokenizer = AutoTokenizer.from_pretrained(directory)
    hidden, intermediate, layers, heads, kv_heads, vocabulary = SIZES[size]
    config = LlamaConfig(
        vocab_size=max(vocabulary, len(tokenizer)),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(directory)
    return directory


def parameter_count(path: str) -> int:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path)
    return sum(parameter.numel() for parameter in model.parameters())


def main() -> None:
    from hedgerow.training import launch, trainer
    from hedgerow.training.trainer import Progress, TrainingConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--base-model", help="a model directory instead of --size")
    parser.add_argument("--method", choices=("full", "lora"), default="full")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--gradient-accumulation", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--num-processes", type=int, default=1)
    arguments = parser.parse_args()

    on_gpu = trainer.gpu_available()
    # Two turns of about half the context each, so rows come close to --max-length.
    words_per_turn = max(arguments.max_length // 4, 4)
    conversations = synthetic_conversations(arguments.conversations, words_per_turn, seed=1)
    texts = [message["content"] for messages in conversations for message in messages]
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        base = arguments.base_model or str(
            build_base(arguments.size, work / "base", texts, arguments.max_length)
        )
        parameters = parameter_count(base)
        config = TrainingConfig(
            base_model=base,
            method=arguments.method,
            epochs=1.0,
            max_steps=arguments.steps,
            learning_rate=1e-4,
            batch_size=arguments.batch_size,
            gradient_accumulation=arguments.gradient_accumulation,
            max_length=arguments.max_length,
            warmup_ratio=0.0,
            lora_r=16,
            lora_alpha=32,
            lora_dropout=0.0,
            # No checkpoint inside the measured steps.
            save_steps=arguments.steps * 10,
            seed=0,
            min_conversations=1,
            num_processes=arguments.num_processes,
        ).for_this_machine()
        speeds: list[float] = []

        def report(update: Progress) -> None:
            if update.tokens_per_second:
                speeds.append(update.tokens_per_second)

        examples = trainer.completion_examples(conversations)
        started = time.monotonic()
        if config.num_processes > 1:
            outcome = launch.run_stage_in_processes(
                "sft",
                config,
                base,
                examples,
                work / "checkpoints",
                None,
                work / "sft-model",
                work,
                report,
            )
        else:
            outcome = trainer.train(config, base, examples, work / "checkpoints", report)
        wall = time.monotonic() - started
    # This process and the group it launched (waited for, so counted).
    cpu_seconds = sum(
        usage.ru_utime + usage.ru_stime
        for usage in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )
    # Tokens actually processed: steps x rows per step x tokens per row (from the run's
    # own count of the dataset), over the time the Trainer spent in its loop.
    rows_per_step = config.batch_size * config.gradient_accumulation * outcome.world_size
    tokens_per_row = outcome.train_tokens / max(len(conversations), 1)
    tokens = outcome.global_step * rows_per_step * tokens_per_row
    if config.packing:
        tokens = outcome.global_step * rows_per_step * config.max_length
    tokens_per_second = tokens / outcome.seconds
    peak = arguments.peak_tflops or (H100_BF16_DENSE_TFLOPS if on_gpu else None)
    # The peak is per device: N processes have N devices' worth.
    mfu = 6 * parameters * tokens_per_second / (peak * 1e12 * outcome.world_size) if peak else None
    hardware = trainer.describe_hardware()
    print(
        "| hardware | processes | model | parameters | method | steps | batch x length | bf16 "
        "| packing | tokens/s | MFU | seconds | CPU seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {hardware} | {outcome.world_size} | {arguments.base_model or arguments.size} "
        f"| {parameters / 1e6:,.1f}M | {config.method} | {outcome.global_step} "
        f"| {rows_per_step} x {arguments.max_length} | {config.bf16} | {config.packing} "
        f"| {tokens_per_second:,.0f} | {f'{mfu:.1%}' if mfu is not None else '-'} "
        f"| {outcome.seconds:.1f} (wall {wall:.1f}) | {cpu_seconds:.1f} |"
    )
    if speeds:
        print(f"last logged tokens/s (progress callback): {speeds[-1]:,.0f}")


if __name__ == "__main__":
    main()
