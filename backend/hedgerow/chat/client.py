"""An OpenAI-compatible client (httpx) for the built-in server, vLLM or llama.cpp's server.

Each model goes to `chat_model_endpoints[model]` when set, else to `chat_inference_url`.
Failures become AppErrors with codes the chat shows in place of the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import httpx

from hedgerow.config import get_settings
from hedgerow.errors import AppError
from hedgerow.i18n import gettext as _

CONNECT_TIMEOUT_SECONDS = 5.0
# What the chat never shows of a model's text: control characters other than newline and
# tab (a small or byte-level model writes them: a backspace, a NUL PostgreSQL refuses to
# store) and U+FFFD, which only stands for bytes that were not text (an invalid sequence,
# or a character a server decoding token by token cut in two).
UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd]")


def printable(text: str) -> str:
    return UNPRINTABLE.sub("", text)


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_p: float
    max_tokens: int

    def as_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}


@dataclass(frozen=True)
class Delta:
    """A piece of the answer; `model_version` once the server has said which version."""

    text: str
    model_version: str | None = None


def _endpoint(model: str) -> tuple[str, dict[str, str]]:
    settings = get_settings()
    base_url = settings.chat_model_endpoints.get(model, settings.chat_inference_url).rstrip("/")
    headers = {}
    if settings.chat_inference_api_key:
        headers["Authorization"] = f"Bearer {settings.chat_inference_api_key}"
    return base_url, headers


def _timeout() -> httpx.Timeout:
    # The read timeout bounds the wait for the first token and the gap between tokens.
    return httpx.Timeout(
        get_settings().chat_inference_timeout_seconds, connect=CONNECT_TIMEOUT_SECONDS
    )


def unavailable(error: Exception) -> AppError:
    if isinstance(error, AppError):
        return error
    if isinstance(error, httpx.TimeoutException):
        return AppError(
            "model_timeout", _("The model server is too slow to answer right now; try again."), 504
        )
    return AppError(
        "model_unavailable",
        _("The model server cannot be reached right now; try again later."),
        502,
    )


def _upstream_error(status: int, body: bytes) -> AppError:
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = body.decode(errors="replace")[:300]
    if status == 503:
        return AppError("model_busy", _("The model server is busy; try again in a moment."), 503)
    if status == 429:
        return AppError("rate_limited", _("You are sending messages too fast; wait a minute."), 429)
    if status == 404:
        return AppError(
            "model_not_found", _("The model server says: %(answer)s", answer=message), 404
        )
    return AppError("model_error", _("The model server refused: %(answer)s", answer=message), 502)


async def stream_chat(
    model: str, messages: list[dict[str, str]], sampling: Sampling, *, user: str
) -> AsyncGenerator[Delta, None]:
    base_url, headers = _endpoint(model)
    body = {
        "model": model,
        "messages": messages,
        "stream": True,
        "user": user,
        **sampling.as_dict(),
    }
    try:
        async with (
            httpx.AsyncClient(timeout=_timeout()) as client,
            client.stream(
                "POST", f"{base_url}/chat/completions", json=body, headers=headers
            ) as response,
        ):
            if response.status_code != 200:
                raise _upstream_error(response.status_code, await response.aread())
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line.removeprefix("data:").strip()
                if data == "[DONE]":
                    return
                chunk = json.loads(data)
                choices = chunk.get("choices") or [{}]
                text = (choices[0].get("delta") or {}).get("content") or ""
                yield Delta(printable(text), chunk.get("system_fingerprint"))
    except (httpx.HTTPError, ValueError) as error:
        raise unavailable(error) from error


async def complete(
    model: str, messages: list[dict[str, str]], sampling: Sampling, *, user: str
) -> tuple[str, str | None]:
    """The whole answer and the version that wrote it (for the arena)."""
    pieces: list[str] = []
    version: str | None = None
    async for delta in stream_chat(model, messages, sampling, user=user):
        pieces.append(delta.text)
        version = delta.model_version or version
    return "".join(pieces), version


async def list_models() -> list[str]:
    """Models the default server offers plus those routed elsewhere by settings."""
    settings = get_settings()
    base_url, headers = _endpoint("")
    names: set[str] = set(settings.chat_model_endpoints)
    try:
        async with httpx.AsyncClient(timeout=_timeout()) as client:
            response = await client.get(f"{base_url}/models", headers=headers)
            response.raise_for_status()
            names.update(entry["id"] for entry in response.json().get("data", []))
    except (httpx.HTTPError, ValueError, KeyError):
        pass  # the chat still works with the configured names
    return sorted(names)
