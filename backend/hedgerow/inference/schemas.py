"""The OpenAI chat-completions request, as far as the built-in server understands it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hedgerow.inputs import Text


class ChatMessageIn(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: Text = Field(max_length=100_000)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # A last chunk with empty `choices` and the whole request's `usage`, as OpenAI sends.
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    # Unknown OpenAI fields (n, logprobs...) are ignored rather than refused, as clients
    # send them by default.
    model_config = ConfigDict(extra="ignore")

    model: Text = Field(min_length=1, max_length=200)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=500)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: int | None = None
    # OpenAI's end-user id; the per-user rate limit counts by it.
    user: Text | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _stream_options_need_a_stream(self) -> ChatCompletionRequest:
        # OpenAI and vLLM refuse the options on a plain request rather than ignore them.
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed when stream is true")
        return self
