"""Every request body is read whole, within a size limit and a deadline, before the app
runs: an oversized body is cut off the moment it passes the limit (a declared length before
any of it is read), a slow one gets 408, and the app gets the body replayed.

Driven through ASGI calls, so the bytes the app stack pulls are counted exactly; the same
attacks against a real uvicorn are in test_slow_clients.py.
"""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from hedgerow.config import get_settings
from hedgerow.ops.request_body import RequestBodyMiddleware
from tests.ops.asgi import CHUNK, Upload, assert_refused, call, http_scope

# --- the application as configured -----------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/tasks", "/api/v1/me/api-keys", "/login"])
def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_limit(app: FastAPI, path: str) -> None:
    limit = get_settings().request_body_limit
    upload = Upload(total=64 * 1024 * 1024)  # far past any limit
    answer = call(app, http_scope(path, {"transfer-encoding": "chunked"}), upload.receive)
    assert_refused(answer, 413, "payload_too_large")
    # Read up to the first chunk past the limit, not a byte further.
    assert limit < upload.pulled <= limit + CHUNK


@pytest.mark.parametrize("path", ["/api/v1/tasks", "/api/v1/me/api-keys", "/signup"])
def test_a_declared_length_over_the_limit_is_refused_before_reading_any_of_it(
    app: FastAPI, path: str
) -> None:
    upload = Upload(total=4 * 1024 * 1024)
    answer = call(app, http_scope(path, {"content-length": str(300_000_000)}), upload.receive)
    assert_refused(answer, 413, "payload_too_large")
    assert upload.calls == 0


def test_a_body_that_stops_arriving_gets_408(monkeypatch: pytest.MonkeyPatch) -> None:
    from hedgerow.app import create_app

    monkeypatch.setattr(get_settings(), "body_timeout_seconds", 0.2)
    first = [{"type": "http.request", "body": b"{", "more_body": True}]

    async def receive() -> Message:
        if first:
            return first.pop()
        await asyncio.Event().wait()  # the client sends nothing more
        raise AssertionError("unreachable")

    scope = http_scope("/api/v1/tasks", {"content-length": "100000"})
    assert_refused(call(create_app(), scope, receive), 408, "request_timeout")


# --- the middleware itself ---------------------------------------------------------------


class Recorder:
    """An app that reads its whole body the way a framework does and then what follows."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.after_body: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        self.after_body.append((await receive())["type"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def test_the_app_gets_the_whole_body_replayed_and_then_the_server_s_own_messages() -> None:
    inner = Recorder()
    middleware = RequestBodyMiddleware(inner, limit=1000, timeout_seconds=5)
    sent = [b"hello ", b"", b"world"]

    async def receive() -> Message:
        if sent:
            return {"type": "http.request", "body": sent.pop(0), "more_body": bool(sent)}
        return {"type": "http.disconnect"}

    answer = call(middleware, http_scope("/x", {"transfer-encoding": "chunked"}), receive)
    assert answer.status == 204
    assert inner.bodies == [b"hello world"]
    # A streaming response still learns that its client went away.
    assert inner.after_body == ["http.disconnect"]


def test_a_request_without_a_body_goes_straight_to_the_app() -> None:
    inner = Recorder()
    middleware = RequestBodyMiddleware(inner, limit=10, timeout_seconds=5)
    upload = Upload(total=0)
    answer = call(middleware, http_scope("/x", {}, method="GET"), upload.receive)
    assert answer.status == 204
    # Only the app asked for the (empty) body: the middleware waited for nothing.
    assert upload.calls == 2


def test_a_client_that_disconnects_mid_body_gets_no_answer_and_the_app_never_runs() -> None:
    inner = Recorder()
    middleware = RequestBodyMiddleware(inner, limit=1000, timeout_seconds=5)
    messages: list[Message] = [
        {"type": "http.request", "body": b"par", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    answer = call(middleware, http_scope("/x", {"content-length": "10"}), receive)
    assert answer.messages == []
    assert inner.bodies == []


def test_only_the_routes_named_for_it_get_a_larger_limit() -> None:
    inner = Recorder()
    middleware = RequestBodyMiddleware(
        inner, limit=100, timeout_seconds=5, larger_limits={r"/imports/\d+": 10_000}
    )
    declared = {"content-length": "5000"}
    small = call(middleware, http_scope("/imports/7/more", declared), Upload(5000).receive)
    assert_refused(small, 413, "payload_too_large")
    large = call(middleware, http_scope("/imports/7", declared), Upload(5000).receive)
    assert large.status == 204
    assert inner.bodies == [b" " * 5000]
    over = Upload(total=20_000)
    refused = call(
        middleware, http_scope("/imports/7", {"transfer-encoding": "chunked"}), over.receive
    )
    assert_refused(refused, 413, "payload_too_large")
    assert over.pulled <= 10_000 + CHUNK
