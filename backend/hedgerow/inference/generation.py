"""Generation with a streamer: `generate` runs in a thread, text comes out as it is
produced (whole characters only, see detokenize.py), and a stop event ends it early (the
client went away)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hedgerow.inference.detokenize import IncrementalDecoder
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
    streamer = _answer_streamer(tokenizer, stats)
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


def _answer_streamer(tokenizer: Any, stats: GenerationStats) -> Any:
    """A streamer for `model.generate` that yields the answer's text as it is decoded,
    counting the completion's tokens into `stats`."""
    from transformers.generation.streamers import BaseStreamer

    class _AnswerStreamer(BaseStreamer):
        """Sends new text after every token, not after every word as transformers'
        TextIteratorStreamer does (which holds back a whole answer written without a
        space); `IncrementalDecoder` makes sure a piece never ends inside a character."""

        def __init__(self) -> None:
            self.decoder = IncrementalDecoder(tokenizer)
            self.pieces: queue.SimpleQueue[str | None] = queue.SimpleQueue()
            self.prompt_seen = False

        def put(self, value: Any) -> None:
            if len(value.shape) > 1:
                value = value[0]
            if not self.prompt_seen:
                # `generate` hands the prompt over first.
                self.prompt_seen = True
                return
            stats.completion_tokens += int(value.numel())
            piece = self.decoder.push(value.tolist())
            if piece:
                self.pieces.put(piece)

        def end(self) -> None:
            piece = self.decoder.finish()
            if piece:
                self.pieces.put(piece)
            self.pieces.put(None)

        def __iter__(self) -> Iterator[str]:
            while (piece := self.pieces.get()) is not None:
                yield piece

    return _AnswerStreamer()
