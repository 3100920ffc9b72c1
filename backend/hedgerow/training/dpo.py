"""The optional second stage: DPO on the release's preference pairs, after SFT.

`preferences.jsonl` holds, for every pair of ranked sibling replies, the conversation so
far (`prompt`), the reply the rankers preferred (`chosen`) and the other (`rejected`), as
chat messages: TRL's conversational preference format. TRL's `DPOTrainer` trains the SFT
model to prefer the chosen replies, with the SFT model as the frozen reference: a copy of
it for full fine-tuning, or, with LoRA, the same weights with the new adapter switched off
(TRL's adapter trick, so the reference costs no memory).

Like `trainer.py`, nothing here touches the database.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hedgerow.training.trainer import (
    FALLBACK_VALIDATION_SHARE,
    ProgressCallback,
    TrainingConfig,
    TrainOutcome,
    common_arguments,
    load_model,
    load_tokenizer,
    lora_config,
    run_trainer,
)

PREFERENCES_FILE = "preferences.jsonl"


@dataclass
class PreferencePairs:
    """`{"prompt": [...], "chosen": [...], "rejected": [...]}` rows, by split."""

    train: list[dict[str, Any]]
    validation: list[dict[str, Any]]


def load_preference_pairs(release_dir: Path, seed: int) -> PreferencePairs:
    """The release's pairs; a release without validation pairs holds out a seeded share
    of its training pairs, as for SFT. No file (an older release) means no pairs."""
    path = release_dir / PREFERENCES_FILE
    train: list[dict[str, Any]] = []
    validation: list[dict[str, Any]] = []
    if path.is_file():
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if not line.strip():
                    continue
                row = json.loads(line)
                pair = {key: _messages(row[key]) for key in ("prompt", "chosen", "rejected")}
                (validation if row.get("split") == "validation" else train).append(pair)
    if not validation and len(train) > 1:
        shuffled = train[:]
        random.Random(seed).shuffle(shuffled)
        held_out = max(1, int(len(shuffled) * FALLBACK_VALIDATION_SHARE))
        validation, train = shuffled[:held_out], shuffled[held_out:]
    return PreferencePairs(train=train, validation=validation)


def _messages(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"role": row["role"], "content": row["content"]} for row in rows]


def train_dpo(
    config: TrainingConfig,
    sft_model: str,
    pairs: list[dict[str, Any]],
    checkpoints_dir: Path,
    report: ProgressCallback,
    extra_callbacks: list[Any] | None = None,
    *,
    resume_from: Path | None = None,
) -> TrainOutcome:
    """DPO of the SFT model saved in `sft_model` (a directory: TRL loads the reference
    model from the policy's own path, so the reference is the SFT model)."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    tokenizer = load_tokenizer(sft_model)
    model = load_model(sft_model, config)
    arguments = DPOConfig(
        **common_arguments(config, checkpoints_dir),
        num_train_epochs=config.dpo_epochs,
        max_steps=config.dpo_max_steps,
        learning_rate=config.dpo_learning_rate,
        beta=config.dpo_beta,
    )
    trainer = DPOTrainer(
        model=model,
        ref_model=None,
        args=arguments,
        train_dataset=Dataset.from_list(pairs),
        processing_class=tokenizer,
        peft_config=lora_config(config),
    )
    tokenized: Any = trainer.train_dataset
    # Each pair runs the prompt twice, once before each reply.
    train_tokens = sum(
        2 * len(prompt) + len(chosen) + len(rejected)
        for prompt, chosen, rejected in zip(
            tokenized["prompt_ids"],
            tokenized["chosen_ids"],
            tokenized["rejected_ids"],
            strict=True,
        )
    )
    return run_trainer(trainer, config, report, "dpo", train_tokens, resume_from, extra_callbacks)
