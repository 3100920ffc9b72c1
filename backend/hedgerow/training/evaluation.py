"""Evaluation of a trained model: validation loss and the reference prompts.

Validation loss is the mean, over held-out examples, of each example's mean loss on its
assistant tokens; its standard error is over examples. The reference prompts live in
`reference_prompts.jsonl` (every prompt category); each run answers a seeded sample of
them greedily, and the answers are stored so two versions can be compared side by side.

Preference pairs are scored by the log-likelihood the model gives each reply after its
prompt: the reward margin of a pair is beta * (log p(chosen) - log p(rejected)), DPO's
implicit reward without its reference term, so the SFT model and the DPO model are
measured the same way (the change in margin from one to the other is exactly the margin
of DPO's implicit reward, `rewards/margins` in TRL's logs). Preference accuracy is the
share of pairs with a positive margin, a tie (identical replies) counting one half.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REFERENCE_PROMPTS_FILE = Path(__file__).with_name("reference_prompts.jsonl")


@dataclass(frozen=True)
class ReferencePrompt:
    id: str
    category: str
    prompt: str


@dataclass
class LossSummary:
    mean: float
    stderr: float
    examples: int

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.mean, 50.0))


def reference_prompts(path: Path = REFERENCE_PROMPTS_FILE) -> list[ReferencePrompt]:
    with path.open(encoding="utf-8") as lines:
        return [ReferencePrompt(**json.loads(line)) for line in lines if line.strip()]


def sample_reference_prompts(count: int, seed: int) -> list[ReferencePrompt]:
    """A seeded sample that covers the categories round-robin, so even a small sample
    asks a bit of everything."""
    prompts = reference_prompts()
    rng = random.Random(seed)
    by_category: dict[str, list[ReferencePrompt]] = {}
    for prompt in prompts:
        by_category.setdefault(prompt.category, []).append(prompt)
    for group in by_category.values():
        rng.shuffle(group)
    sample: list[ReferencePrompt] = []
    while len(sample) < min(count, len(prompts)):
        for group in by_category.values():
            if group and len(sample) < count:
                sample.append(group.pop())
    return sample


def _encode_example(tokenizer: Any, example: dict[str, Any], max_length: int) -> Any:
    """Input ids and labels (-100 on the prompt), like TRL's completion-only loss."""
    prompt_ids = tokenizer.apply_chat_template(
        example["prompt"], add_generation_prompt=True, tokenize=True, return_dict=False
    )
    full_ids = tokenizer.apply_chat_template(
        example["prompt"] + example["completion"], tokenize=True, return_dict=False
    )
    full_ids = list(full_ids)[:max_length]
    labels = [-100] * min(len(prompt_ids), len(full_ids)) + full_ids[len(prompt_ids) :]
    return full_ids, labels


def validation_loss(
    model: Any, tokenizer: Any, examples: list[dict[str, Any]], max_length: int
) -> LossSummary | None:
    import torch

    losses: list[float] = []
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        for example in examples:
            input_ids, labels = _encode_example(tokenizer, example, max_length)
            if all(label == -100 for label in labels[1:]):
                continue
            output = model(
                input_ids=torch.tensor([input_ids], device=device),
                labels=torch.tensor([labels], device=device),
            )
            losses.append(float(output.loss))
    if not losses:
        return None
    mean, stderr = _mean_and_stderr(losses)
    return LossSummary(mean=mean, stderr=stderr, examples=len(losses))


@dataclass
class PreferenceSummary:
    accuracy: float
    mean_margin: float
    margin_stderr: float
    pairs: int


def _completion_log_likelihood(
    model: Any,
    tokenizer: Any,
    prompt: list[dict[str, str]],
    reply: list[dict[str, str]],
    max_length: int,
) -> float | None:
    import torch

    input_ids, labels = _encode_example(
        tokenizer, {"prompt": prompt, "completion": reply}, max_length
    )
    targets = torch.tensor(labels[1:])
    scored = targets != -100
    if not bool(scored.any()):
        return None
    device = next(model.parameters()).device
    logits = model(input_ids=torch.tensor([input_ids], device=device)).logits[0, :-1].float()
    log_probs = torch.log_softmax(logits, dim=-1).cpu()
    picked = log_probs[scored].gather(1, targets[scored].unsqueeze(1))
    return float(picked.sum())


def preference_scores(
    model: Any, tokenizer: Any, pairs: list[dict[str, Any]], max_length: int, beta: float
) -> PreferenceSummary | None:
    """Accuracy and mean reward margin (with its standard error) over `pairs`."""
    import torch

    margins: list[float] = []
    model.eval()
    with torch.no_grad():
        for pair in pairs:
            chosen = _completion_log_likelihood(
                model, tokenizer, pair["prompt"], pair["chosen"], max_length
            )
            rejected = _completion_log_likelihood(
                model, tokenizer, pair["prompt"], pair["rejected"], max_length
            )
            if chosen is not None and rejected is not None:
                margins.append(beta * (chosen - rejected))
    if not margins:
        return None
    wins = sum(1.0 if margin > 0 else 0.5 if margin == 0 else 0.0 for margin in margins)
    mean, stderr = _mean_and_stderr(margins)
    return PreferenceSummary(
        accuracy=wins / len(margins), mean_margin=mean, margin_stderr=stderr, pairs=len(margins)
    )


def _mean_and_stderr(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    variance = sum((value - mean) ** 2 for value in values) / (len(values) - 1)
    return mean, math.sqrt(variance / len(values))


def answer(model: Any, tokenizer: Any, messages: list[dict[str, str]], max_new_tokens: int) -> str:
    """Greedy decoding: deterministic, so two runs of a version give the same answer."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    input_ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=False
    ).to(device)
    with torch.no_grad():
        output = model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    new_tokens = output[0, input_ids.shape[1] :]
    return str(tokenizer.decode(new_tokens, skip_special_tokens=True)).strip()


def answer_reference_prompts(
    model: Any, tokenizer: Any, prompts: list[ReferencePrompt], max_new_tokens: int
) -> list[dict[str, Any]]:
    return [
        {
            "id": prompt.id,
            "category": prompt.category,
            "prompt": prompt.prompt,
            "answer": answer(
                model, tokenizer, [{"role": "user", "content": prompt.prompt}], max_new_tokens
            ),
        }
        for prompt in prompts
    ]
