"""The OpenAI-compatible model server: GET /v1/models, POST /v1/chat/completions.

Errors come back in OpenAI's shape ({"error": {"message", "type", "code"}}) so that any
OpenAI client library reports them properly.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse

from hedgerow.config import Settings, get_settings
from hedgerow.db import get_sessionmaker
from hedgerow.errors import AppError
from hedgerow.inference.generation import GenerationParams, GenerationStats, stream_completion
from hedgerow.inference.limits import GenerationQueue, check_rate_limit
from hedgerow.inference.registry import LoadedModel, ServingRegistry
from hedgerow.inference.schemas import ChatCompletionRequest

log = logging.getLogger(__name__)

router = APIRouter()


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": code}},
        status_code=status,
        headers=headers,
    )


def _user_key(request: Request, body: ChatCompletionRequest) -> str:
    if body.user:
        return "user:" + hashlib.sha256(body.user.encode()).hexdigest()[:32]
    auth = request.headers.get("authorization", "")
    if auth:
        return "key:" + hashlib.sha256(auth.encode()).hexdigest()[:32]
    return "ip:" + (request.client.host if request.client else "unknown")


def _sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


def create_inference_app(
    settings: Settings | None = None, registry: ServingRegistry | None = None
) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Hedgerow model server", docs_url=None, redoc_url=None, lifespan=_load_at_start
    )
    app.state.settings = settings
    app.state.registry = registry or ServingRegistry(
        get_sessionmaker(), settings.inference_registry_refresh_seconds
    )
    app.state.queue = GenerationQueue(settings.inference_concurrency, settings.inference_queue_size)
    app.exception_handler(AppError)(_app_error)
    app.exception_handler(RequestValidationError)(_invalid_request)
    app.middleware("http")(_require_api_key)
    app.include_router(router)
    return app


@asynccontextmanager
async def _load_at_start(app: FastAPI) -> AsyncIterator[None]:
    # Load the serving versions before the first request rather than during it.
    registry: ServingRegistry = app.state.registry
    try:
        await asyncio.to_thread(registry.serving)
    except Exception:
        log.exception("could not load the serving models at start-up; will retry")
    yield


# The server's parts live on app.state (set by create_inference_app); routes take them
# through these dependencies.


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _registry(request: Request) -> ServingRegistry:
    registry: ServingRegistry = request.app.state.registry
    return registry


async def _queue(request: Request) -> GenerationQueue:
    queue: GenerationQueue = request.app.state.queue
    return queue


SettingsDep = Annotated[Settings, Depends(_settings)]
RegistryDep = Annotated[ServingRegistry, Depends(_registry)]
QueueDep = Annotated[GenerationQueue, Depends(_queue)]


async def _app_error(request: Request, error: AppError) -> Response:
    return _error(error.status, error.code, error.message, error.headers)


async def _invalid_request(request: Request, error: RequestValidationError) -> Response:
    first = error.errors()[0] if error.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = str(first.get("msg", "invalid"))
    # A rule about the whole request (stream_options without stream) names no field.
    return _error(400, "invalid_request", f"{where}: {message}" if where else message)


async def _require_api_key(request: Request, call_next: Any) -> Response:
    expected = request.app.state.settings.inference_api_key
    if expected and request.url.path.startswith("/v1/"):
        sent = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not secrets.compare_digest(sent.encode(), expected.encode()):
            return _error(401, "invalid_api_key", "Send the server's API key as a bearer token.")
    response: Response = await call_next(request)
    return response


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/v1/models")
async def list_models(registry: RegistryDep) -> dict[str, Any]:
    serving = await asyncio.to_thread(registry.serving)
    return {
        "object": "list",
        "data": [
            {
                "id": name,
                "object": "model",
                "created": loaded.created,
                "owned_by": "hedgerow",
                "version_id": loaded.version_id,
            }
            for name, loaded in sorted(serving.items())
        ],
    }


@router.post("/v1/chat/completions")
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    settings: SettingsDep,
    registry: RegistryDep,
    queue: QueueDep,
) -> Response:
    check_rate_limit(_user_key(request, body), settings.inference_requests_per_minute)
    loaded = await asyncio.to_thread(registry.get, body.model)
    max_new_tokens = min(
        body.max_tokens or settings.inference_max_new_tokens, settings.inference_max_new_tokens
    )
    params = GenerationParams(body.temperature, body.top_p, max_new_tokens, body.seed)
    messages = [message.model_dump() for message in body.messages]
    queue.admit()
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return StreamingResponse(
            _stream(loaded, messages, params, queue, include_usage=include_usage),
            media_type="text/event-stream",
        )
    try:
        async with queue.slot():
            stats = GenerationStats()
            text = await asyncio.to_thread(
                lambda: "".join(stream_completion(loaded, messages, params, stats))
            )
    finally:
        queue.release()
    return JSONResponse(_completion(loaded, text, stats))


def _completion(loaded: LoadedModel, text: str, stats: GenerationStats) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": loaded.name,
        "system_fingerprint": loaded.fingerprint,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": stats.finish_reason,
            }
        ],
        "usage": _usage(stats),
    }


def _usage(stats: GenerationStats) -> dict[str, int]:
    return {
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "total_tokens": stats.prompt_tokens + stats.completion_tokens,
    }


async def _stream(
    loaded: LoadedModel,
    messages: list[dict[str, str]],
    params: GenerationParams,
    queue: GenerationQueue,
    *,
    include_usage: bool = False,
) -> AsyncIterator[bytes]:
    """The completion as server-sent events; frees its place in `queue` when it ends.

    With `include_usage` (the request's `stream_options`) every chunk carries `usage: null`
    and a last chunk, with no choices, the whole request's usage, as OpenAI and vLLM send."""
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    stats = GenerationStats()

    def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
        payload: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": loaded.name,
            "system_fingerprint": loaded.fingerprint,
            "choices": choices,
        }
        if include_usage:
            payload["usage"] = usage
        return _sse(payload)

    def choice(delta: dict[str, str], finish_reason: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "finish_reason": finish_reason}]

    pieces: Iterator[str] | None = None
    try:
        async with queue.slot():
            yield chunk(choice({"role": "assistant", "content": ""}))
            pieces = stream_completion(loaded, messages, params, stats)
            while True:
                piece = await asyncio.to_thread(next, pieces, None)
                if piece is None:
                    break
                if piece:
                    yield chunk(choice({"content": piece}))
            yield chunk(choice({}, stats.finish_reason))
            if include_usage:
                yield chunk([], _usage(stats))
            yield _sse("[DONE]")
    finally:
        # The client went away (or we finished): stop generating and free the slot.
        stats.stop.set()
        if pieces is not None:
            await asyncio.to_thread(_close, pieces)
        queue.release()


def _close(pieces: Iterator[str]) -> None:
    close = getattr(pieces, "close", None)
    if close is not None:
        close()
