"""The OpenAI chat-completions request, as far as the built-in server understands it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hedgerow.inputs import Text


class ChatMessageIn(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: Text = Field(max_length=100_000)


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
    seed: int | None = None
    # OpenAI's end-user id; the per-user rate limit counts by it.
    user: Text | None = Field(default=None, max_length=200)
