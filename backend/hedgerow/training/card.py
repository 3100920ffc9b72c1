"""The model card: README.md at the root of every model artifact."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hedgerow.training.tiny import PROMPT_FORMAT, TINY_BASE_MODEL


@dataclass
class MetricRow:
    task: str
    metric: str
    value: float
    stderr: float | None = None


@dataclass
class CardFacts:
    name: str
    version_id: int
    base_model: str
    release_name: str
    release_id: int
    license_name: str
    config: dict[str, Any]
    hardware: str
    duration_seconds: float
    train_examples: int
    validation_examples: int
    metrics: list[MetricRow]
    chat_template: str | None
    # Data-parallel processes that trained it (one per GPU).
    num_processes: int = 1
    # "SFT", or what the DPO stage did (or why it was skipped).
    stages: str = "SFT"
    preference_tuned: bool = False


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}"


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


def _cell(value: Any) -> str:
    # Table cells: a pipe would end the cell.
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_model_card(facts: CardFacts) -> str:
    sections = (
        _front_matter(facts),
        _summary(facts),
        _prompt_format(facts),
        _configuration(facts),
        _evaluation(facts),
        _use_and_limitations(facts),
    )
    return "\n\n".join(sections) + "\n"


def _front_matter(facts: CardFacts) -> str:
    # The Hugging Face Hub reads this YAML block (license, base model, tags).
    tags = "- sft\n- dpo" if facts.preference_tuned else "- sft"
    return f"""---
license: {facts.license_name}
base_model: {facts.base_model}
library_name: transformers
pipeline_tag: text-generation
tags:
- hedgerow
{tags}
---"""


def _summary(facts: CardFacts) -> str:
    base = (
        "a tiny Llama-style model built for this run (random init, tokenizer trained on "
        "the release)"
        if facts.base_model == TINY_BASE_MODEL
        else f"`{facts.base_model}`"
    )
    processes = (
        f"{facts.num_processes} (data parallel, launched with accelerate)"
        if facts.num_processes > 1
        else "1"
    )
    return f"""# {facts.name} v{facts.version_id}

Fine-tuned by Hedgerow's training worker on the dataset release **{facts.release_name}**
(release id {facts.release_id}): conversations written, reviewed and ranked by volunteers.

- **Base model:** {base}
- **Release:** {facts.release_name}
- **License:** {facts.license_name} (the license of the training data)
- **Method:** supervised fine-tuning ({facts.config.get("method", "?")}), loss on the
  assistant's tokens only
- **Stages:** {facts.stages}
- **Examples:** {facts.train_examples} for training, {facts.validation_examples} for validation
- **Hardware:** {facts.hardware}
- **Processes:** {processes}
- **Training time:** {_duration(facts.duration_seconds)}"""


def _prompt_format(facts: CardFacts) -> str:
    example = (
        PROMPT_FORMAT
        if facts.base_model == TINY_BASE_MODEL
        else "tokenizer.apply_chat_template(messages, add_generation_prompt=True)"
    )
    return f"""## Prompt format

Chat messages with the roles `user` and `assistant`, rendered by the chat template saved
with the tokenizer (`tokenizer.apply_chat_template`); a prompt ends with the assistant's
turn opening, and the answer ends at the end-of-turn token:

```
{example}
```"""


def _configuration(facts: CardFacts) -> str:
    config_rows = "\n".join(
        f"| {_cell(key)} | {_cell(value)} |"
        for key, value in sorted(facts.config.items())
        if key != "extra"
    )
    return f"""## Training configuration

| setting | value |
|---|---|
{config_rows}"""


def _evaluation(facts: CardFacts) -> str:
    metric_rows = "\n".join(
        f"| {_cell(row.task)} | {_cell(row.metric)} | {_number(row.value)} "
        f"| {_number(row.stderr)} |"
        for row in facts.metrics
    )
    return f"""## Evaluation

| task | metric | value | stderr |
|---|---|---|---|
{metric_rows}

Validation loss is the mean over held-out conversations (trees in the release's
validation split) of each example's mean loss on its assistant tokens; the standard error
is over examples. Preference pairs (after DPO) are scored by the log-likelihood of each
reply after its prompt: the reward margin is beta times the difference between the chosen
and the rejected reply, and accuracy is the share of pairs whose margin is positive (a tie
counts one half). `evaluation.json` holds the answers to the sampled reference prompts."""


def _use_and_limitations(facts: CardFacts) -> str:
    preference_limitation = (
        "Its preference tuning (DPO) learnt from the volunteers' rankings only; it has had "
        "no safety training beyond the moderation of its data."
        if facts.preference_tuned
        else "It has had no preference tuning or safety training beyond the moderation of its data."
    )
    return f"""## Intended use

Research on instruction following and on the Hedgerow data itself, and the volunteers'
chat, where its answers are rated and flow back into the next release.

## Limitations

- It knows only what its base model knew and what the release taught it; it can state
  falsehoods with confidence and must not be relied on for facts, medical, legal or
  financial advice.
- The release is small and written by volunteers: styles, languages and topics are
  uneven, and biases in the contributions carry over.
- {preference_limitation}"""
