"""Generation with a TextIteratorStreamer: `generate` runs in a thread, text comes out as it
is produced, and a stop event ends it early (the client went away)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hedgerow.inference.registry import LoadedModel


@dataclass
class GenerationParams:
    temperature: float
    top_p: float
    max_new_tokens: int
    seed: int | None = None


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    stop: threading.Event = field(default_factory=threading.Event)


def stream_completion(
    loaded: LoadedModel,
    messages: list[dict[str, str]],
    params: GenerationParams,
    stats: GenerationStats,
) -> Iterator[str]:
    """Yield pieces of the answer as they are decoded; fills `stats` as it goes."""
    import torch

    tokenizer = loaded.tokenizer
    input_ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=False
    ).to(loaded.model.device)
    stats.prompt_tokens = int(input_ids.shape[-1])
    streamer = _token_by_token_streamer(tokenizer, stats)
    kwargs = _generate_arguments(input_ids, tokenizer, streamer, params, stats)
    failure: list[BaseException] = []

    def _generate() -> None:
        try:
            if params.seed is not None:
                torch.manual_seed(params.seed)
            with torch.inference_mode():
                loaded.model.generate(**kwargs)
        except BaseException as error:  # surfaced to the caller after the stream ends
            failure.append(error)
            streamer.end()

    thread = threading.Thread(target=_generate, name="generate", daemon=True)
    thread.start()
    try:
        yield from streamer
    finally:
        stats.stop.set()
        thread.join()
    if failure:
        raise failure[0]
    if stats.completion_tokens >= params.max_new_tokens:
        stats.finish_reason = "length"


def _generate_arguments(
    input_ids: Any, tokenizer: Any, streamer: Any, params: GenerationParams, stats: GenerationStats
) -> dict[str, Any]:
    """`model.generate`'s arguments: greedy at temperature 0, stopped when `stats.stop`
    is set."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _StopWhenAsked(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full(
                (input_ids.shape[0],),
                stats.stop.is_set(),
                dtype=torch.bool,
                device=input_ids.device,
            )

    sampling = params.temperature > 0
    kwargs: dict[str, Any] = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "streamer": streamer,
        "max_new_tokens": params.max_new_tokens,
        "do_sample": sampling,
        "stopping_criteria": StoppingCriteriaList([_StopWhenAsked()]),
        "pad_token_id": tokenizer.pad_token_id or tokenizer.eos_token_id,
    }
    if sampling:
        kwargs["temperature"] = params.temperature
        kwargs["top_p"] = params.top_p
    return kwargs


def _token_by_token_streamer(tokenizer: Any, stats: GenerationStats) -> Any:
    """A TextIteratorStreamer that counts the completion's tokens into `stats`."""
    from transformers import TextIteratorStreamer

    class _TokenByToken(TextIteratorStreamer):
        """Sends the new text after every token. The stock streamer waits for a space,
        which holds back a whole answer written without one; here only an unfinished
        UTF-8 character (decoded as U+FFFD) waits for the next token."""

        def put(self, value: Any) -> None:
            if len(value.shape) > 1:
                value = value[0]
            if self.skip_prompt and self.next_tokens_are_prompt:
                self.next_tokens_are_prompt = False
                return
            stats.completion_tokens += int(value.numel())
            self.token_cache.extend(value.tolist())
            text = str(self.tokenizer.decode(self.token_cache, **self.decode_kwargs))
            if text.endswith("\ufffd"):
                return
            printable = text[self.print_len :]
            self.print_len = len(text)
            if text.endswith("\n"):
                # Start afresh at each line, so decoding stays short on long answers.
                self.token_cache = []
                self.print_len = 0
            if printable:
                self.on_finalized_text(printable)

    return _TokenByToken(tokenizer, skip_prompt=True, skip_special_tokens=True)
