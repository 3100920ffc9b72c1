"""Supervised fine-tuning with TRL's SFTTrainer: data, base model, checkpoints, progress.

Nothing here touches the database: `service.py` owns the model version's lifecycle and
hands this module a progress callback. torch and friends are imported inside functions,
so the web process never loads them.

Loss is on assistant tokens only, whatever the base model's chat template: every
assistant turn of a conversation becomes a prompt/completion pair (the turns before it,
then it), which TRL renders with the tokenizer's chat template and masks the prompt of.
Templates without `{% generation %}` markers (most) work the same way.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hedgerow.config import Settings
from hedgerow.training.tiny import TINY_BASE_MODEL, build_tiny_model

logger = logging.getLogger(__name__)

SFT_FILE = "sft.jsonl"
CHECKPOINT_PREFIX = "checkpoint-"
# Written by the Trainer after the weights and optimizer: a checkpoint without it was
# cut short by a kill and cannot be resumed from.
CHECKPOINT_COMPLETE_MARKER = "trainer_state.json"
# Enough examples for a stable mean; evaluation runs twice per run (before and after).
MAX_VALIDATION_EXAMPLES = 200
# When a release has no validation trees, this share of the training examples is held out.
FALLBACK_VALIDATION_SHARE = 0.1


class TrainingFailure(Exception):
    """A run that cannot succeed, with the message shown on the run page."""


@dataclass
class TrainingConfig:
    base_model: str
    method: str  # "lora" or "full"
    epochs: float
    max_steps: int
    learning_rate: float
    batch_size: int
    gradient_accumulation: int
    max_length: int
    warmup_ratio: float
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    save_steps: int
    seed: int
    min_conversations: int
    # None until the worker that trains decides by its hardware (the web process that
    # queues a run never loads torch).
    bf16: bool | None = None
    packing: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Data-parallel processes; 0 until the worker resolves it (one per visible GPU).
    num_processes: int = 1
    accelerate_config: str | None = None
    # The optional second stage: DPO on the release's preference pairs.
    dpo: bool = False
    dpo_beta: float = 0.1
    dpo_epochs: float = 1.0
    dpo_max_steps: int = -1
    dpo_learning_rate: float = 5e-6
    dpo_min_pairs: int = 20

    @classmethod
    def from_settings(cls, settings: Settings) -> TrainingConfig:
        base = settings.training_base_model
        method = settings.training_method
        if method == "auto":
            # A randomly initialised model has nothing for LoRA to adapt.
            method = "full" if base == TINY_BASE_MODEL else "lora"
        return cls(
            base_model=base,
            method=method,
            epochs=settings.training_epochs,
            max_steps=settings.training_max_steps,
            learning_rate=settings.training_learning_rate,
            batch_size=settings.training_batch_size,
            gradient_accumulation=settings.training_gradient_accumulation,
            max_length=settings.training_max_length,
            warmup_ratio=settings.training_warmup_ratio,
            lora_r=settings.training_lora_r,
            lora_alpha=settings.training_lora_alpha,
            lora_dropout=settings.training_lora_dropout,
            save_steps=settings.training_save_steps,
            seed=settings.training_seed,
            min_conversations=settings.training_min_conversations,
            num_processes=settings.training_num_processes,
            accelerate_config=(
                str(settings.training_accelerate_config)
                if settings.training_accelerate_config
                else None
            ),
            dpo=settings.training_dpo,
            dpo_beta=settings.training_dpo_beta,
            dpo_epochs=settings.training_dpo_epochs,
            dpo_max_steps=settings.training_dpo_max_steps,
            dpo_learning_rate=settings.training_dpo_learning_rate,
            dpo_min_pairs=settings.training_dpo_min_pairs,
        )

    def for_this_machine(self) -> TrainingConfig:
        """bf16 and packing where they pay off: on a GPU. Packing mixes several short
        examples in one row, which saves padding at GPU throughput and is not worth the
        attention cost on a CPU."""
        on_gpu = gpu_available()
        if self.bf16 is None:
            self.bf16 = on_gpu and bf16_supported()
        if self.packing is None:
            self.packing = on_gpu
        if self.num_processes <= 0:
            self.num_processes = max(gpu_count(), 1)
        return self

    def check_processes(self) -> None:
        """One process per GPU: more processes than GPUs would share a device and stall.
        (Several processes without any GPU train on the CPU with gloo, for tests.)"""
        gpus = gpu_count()
        if gpus and self.num_processes > gpus:
            raise TrainingFailure(
                f"The run asks for {self.num_processes} processes but this worker sees "
                f"{gpus} GPUs (one process per GPU). Lower HEDGEROW_TRAINING_NUM_PROCESSES, "
                "or set it to 0 for one per GPU."
            )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Progress:
    step: int
    total_steps: int
    loss: float | None
    learning_rate: float | None
    tokens_per_second: float | None
    eta_seconds: float | None
    # "sft" or "dpo": the stage the step belongs to (steps count within the stage).
    stage: str = "sft"


ProgressCallback = Callable[[Progress], None]


@dataclass
class Conversations:
    train: list[list[dict[str, str]]]
    validation: list[list[dict[str, str]]]


# --- data ---------------------------------------------------------------------------


def load_conversations(release_dir: Path, seed: int) -> Conversations:
    path = release_dir / SFT_FILE
    if not path.is_file():
        raise TrainingFailure(f"The release has no {SFT_FILE} (looked in {release_dir}).")
    train: list[list[dict[str, str]]] = []
    validation: list[list[dict[str, str]]] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            row = json.loads(line)
            messages = [
                {"role": message["role"], "content": message["content"]}
                for message in row["messages"]
            ]
            (validation if row.get("split") == "validation" else train).append(messages)
    if not validation and len(train) > 1:
        rng = random.Random(seed)
        shuffled = train[:]
        rng.shuffle(shuffled)
        held_out = max(1, int(len(shuffled) * FALLBACK_VALIDATION_SHARE))
        validation = shuffled[:held_out]
        train = shuffled[held_out:]
    return Conversations(train=train, validation=validation)


def completion_examples(conversations: Iterable[list[dict[str, str]]]) -> list[dict[str, Any]]:
    """One prompt/completion pair per assistant turn; shared prefixes of sibling paths
    (a tree's paths share their opening turns) appear once."""
    seen: set[str] = set()
    examples: list[dict[str, Any]] = []
    for messages in conversations:
        for index, message in enumerate(messages):
            if message["role"] != "assistant" or index == 0:
                continue
            example = {"prompt": messages[:index], "completion": [message]}
            key = json.dumps(example, sort_keys=True)
            if key not in seen:
                seen.add(key)
                examples.append(example)
    return examples


def all_texts(conversations: Conversations) -> Iterable[str]:
    for messages in conversations.train + conversations.validation:
        for message in messages:
            yield message["content"]


# --- hardware -----------------------------------------------------------------------


def gpu_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def launched_ranks() -> int:
    """The world size of the launch this process is a rank of (1: not launched)."""
    import os

    return int(os.environ.get("WORLD_SIZE", "1"))


def gpu_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def bf16_supported() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def describe_hardware() -> str:
    import os

    try:
        import torch
    except ImportError:
        return f"CPU ({os.cpu_count()} cores, torch not installed)"

    if torch.cuda.is_available():
        names = {torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}
        return f"{torch.cuda.device_count()} x {', '.join(sorted(names))}"
    return f"CPU ({os.cpu_count()} cores, torch {torch.__version__})"


# --- base model ---------------------------------------------------------------------


def resolve_base_model(config: TrainingConfig, work_dir: Path, texts: Iterable[str]) -> str:
    """A path or hub id the Trainer can load. The tiny model is built once per run and
    kept in the work directory, so a resumed run continues from the same tokenizer."""
    if config.base_model == TINY_BASE_MODEL:
        directory = work_dir / "base"
        if not (directory / "config.json").is_file():
            shutil.rmtree(directory, ignore_errors=True)
            build_tiny_model(texts, directory, max_length=config.max_length, seed=config.seed)
        return str(directory)
    candidate = Path(config.base_model).expanduser()
    looks_like_path = config.base_model.startswith(("/", ".", "~")) or candidate.exists()
    if looks_like_path and not (candidate / "config.json").is_file():
        raise TrainingFailure(
            f"The base model path {config.base_model} does not exist or holds no model "
            "(no config.json). Set HEDGEROW_TRAINING_BASE_MODEL to a model directory or "
            "hub id."
        )
    return str(candidate) if looks_like_path else config.base_model


def load_tokenizer(base: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(base)
    except OSError as error:
        raise TrainingFailure(f"Cannot load the base model {base}: {error}") from error
    if tokenizer.chat_template is None:
        raise TrainingFailure(f"The base model {base} has no chat template.")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(base: str, config: TrainingConfig, *, for_evaluation: bool = False) -> Any:
    """The model in `base`; for evaluation, on the GPU when there is one (the Trainer
    places the models it trains itself)."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if config.bf16 else torch.float32
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    except OSError as error:
        raise TrainingFailure(f"Cannot load the base model {base}: {error}") from error
    if for_evaluation and gpu_available():
        model = model.to("cuda")
    return model


def release_memory() -> None:
    """Give cached GPU memory back before other processes (the ranks of a launched
    stage) need it."""
    import gc

    gc.collect()
    if gpu_available():
        import torch

        torch.cuda.empty_cache()


# --- checkpoints --------------------------------------------------------------------


def last_complete_checkpoint(checkpoints_dir: Path) -> Path | None:
    """The newest checkpoint the Trainer finished writing; half-written ones (a kill in
    the middle of a save) are removed so the Trainer never picks them up."""
    if not checkpoints_dir.is_dir():
        return None
    found: list[tuple[int, Path]] = []
    for path in checkpoints_dir.iterdir():
        suffix = path.name.removeprefix(CHECKPOINT_PREFIX)
        if not path.is_dir() or not path.name.startswith(CHECKPOINT_PREFIX):
            continue
        if not suffix.isdigit():
            continue
        if (path / CHECKPOINT_COMPLETE_MARKER).is_file():
            found.append((int(suffix), path))
        else:
            shutil.rmtree(path, ignore_errors=True)
    return max(found)[1] if found else None


def checkpoint_step(checkpoint: Path) -> int:
    return int(checkpoint.name.removeprefix(CHECKPOINT_PREFIX))


# --- training -----------------------------------------------------------------------


def _progress_callback(report: ProgressCallback, tokens_per_step: float, stage: str) -> Any:
    from transformers import TrainerCallback

    class ReportProgress(TrainerCallback):
        """Turns the Trainer's logs into step, loss, lr, tokens/s and ETA (on the main
        process only: every rank logs the same gathered loss)."""

        def __init__(self) -> None:
            self.started = time.monotonic()
            self.first_step: int | None = None

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            logs = logs or {}
            if "loss" not in logs or not state.is_world_process_zero:
                return
            if self.first_step is None:
                # Steps before a resume did not happen in this process.
                self.first_step = max(state.global_step - 1, 0)
                self.started = time.monotonic()
            elapsed = max(time.monotonic() - self.started, 1e-6)
            steps_here = max(state.global_step - self.first_step, 1)
            seconds_per_step = elapsed / steps_here
            remaining = max(state.max_steps - state.global_step, 0)
            report(
                Progress(
                    step=state.global_step,
                    total_steps=state.max_steps,
                    loss=float(logs["loss"]),
                    learning_rate=float(logs.get("learning_rate", 0.0)),
                    tokens_per_second=tokens_per_step / seconds_per_step,
                    eta_seconds=remaining * seconds_per_step,
                    stage=stage,
                )
            )

    return ReportProgress()


@dataclass
class TrainOutcome:
    model: Any
    tokenizer: Any
    resumed_from_step: int | None
    global_step: int
    train_tokens: int
    seconds: float
    # Processes that trained together (data parallel); 1 for an in-process run.
    world_size: int = 1


def lora_config(config: TrainingConfig) -> Any:
    if config.method != "lora":
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


def common_arguments(config: TrainingConfig, output_dir: Path) -> dict[str, Any]:
    """Trainer arguments both stages share: hardware, logging, checkpoints, seeds."""
    on_gpu = gpu_available()
    return {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation,
        # A float below 1 is a share of the total steps.
        "warmup_steps": config.warmup_ratio,
        "lr_scheduler_type": "cosine",
        "max_length": config.max_length,
        "bf16": bool(config.bf16),
        "use_cpu": not on_gpu,
        # Ranks of a multi-process launch talk over NCCL between GPUs (the default), gloo
        # between CPU processes; a run in one process has no process group at all.
        "ddp_backend": "gloo" if launched_ranks() > 1 and not on_gpu else None,
        # A causal LM uses every parameter in every step: no extra pass to look for unused
        # ones.
        "ddp_find_unused_parameters": False,
        # Recomputing activations trades GPU memory for time; a CPU run has memory to
        # spare and no time to lose.
        "gradient_checkpointing": on_gpu,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": 2,
        "seed": config.seed,
        "data_seed": config.seed,
        "report_to": [],
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def run_trainer(
    trainer: Any,
    config: TrainingConfig,
    report: ProgressCallback,
    stage: str,
    train_tokens: int,
    resume_from: Path | None,
    extra_callbacks: list[Any] | None,
) -> TrainOutcome:
    """Train from `resume_from` (a complete checkpoint, or None for the start) and return
    the trained model, LoRA merged into it."""
    rows = len(trainer.train_dataset)
    world_size = int(trainer.args.world_size)
    steps_per_epoch = max(
        math.ceil(rows / (config.batch_size * config.gradient_accumulation * world_size)), 1
    )
    trainer.add_callback(_progress_callback(report, train_tokens / steps_per_epoch, stage))
    for callback in extra_callbacks or []:
        trainer.add_callback(callback)
    started = time.monotonic()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    trained: Any = trainer.model
    if config.method == "lora":
        # One self-contained artifact: any server (ours, vLLM) loads it like a base model.
        trained = trained.merge_and_unload()
    epochs = config.dpo_epochs if stage == "dpo" else config.epochs
    return TrainOutcome(
        model=trained,
        tokenizer=trainer.processing_class,
        resumed_from_step=checkpoint_step(resume_from) if resume_from else None,
        global_step=trainer.state.global_step,
        train_tokens=int(train_tokens * max(epochs, 1)),
        seconds=time.monotonic() - started,
        world_size=world_size,
    )


def train(
    config: TrainingConfig,
    base: str,
    train_examples: list[dict[str, Any]],
    checkpoints_dir: Path,
    report: ProgressCallback,
    extra_callbacks: list[Any] | None = None,
    *,
    resume_from: Path | None = None,
) -> TrainOutcome:
    """Supervised fine-tuning of `base` on prompt/completion examples."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    tokenizer = load_tokenizer(base)
    model = load_model(base, config)
    arguments = SFTConfig(
        **common_arguments(config, checkpoints_dir),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        completion_only_loss=True,
        packing=bool(config.packing),
    )
    trainer = SFTTrainer(
        model=model,
        args=arguments,
        train_dataset=Dataset.from_list(train_examples),
        processing_class=tokenizer,
        peft_config=lora_config(config),
    )
    tokenized: Any = trainer.train_dataset
    train_tokens = sum(len(ids) for ids in tokenized["input_ids"])
    return run_trainer(trainer, config, report, "sft", train_tokens, resume_from, extra_callbacks)
