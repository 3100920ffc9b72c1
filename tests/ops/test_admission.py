"""Requests that lock growth rows (asking for, submitting and skipping a task) are let into a
web process a few at a time, once their body has arrived and their user is authenticated;
everything else is not held."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.orm import Session
from starlette.types import Message, Receive, Scope, Send

from hedgerow.accounts.security import get_contributor
from hedgerow.ops.admission import CLAIM_STATE_KEY, TaskAdmissionMiddleware, take_task_slot
from tests.factories import api_headers, make_api_key, make_user
from tests.ops.asgi import HANG_GUARD_SECONDS, Answer, http_scope

# --- the middleware and the claims it hands out ------------------------------------------


class GatedApp:
    """An ASGI app whose task requests take a slot (as take_task_slot does) and are held
    until released; other paths take none."""

    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self.entered: list[str] = []
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        claim = scope["state"].get(CLAIM_STATE_KEY)
        if scope["path"] == "/api/v1/tasks" and claim is not None:
            await claim.take()
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        self.entered.append(scope["path"])
        try:
            if scope["path"] == "/api/v1/tasks":
                await self.release.wait()
            if scope["path"] == "/fails":
                raise RuntimeError("the endpoint failed")
        finally:
            self.inside -= 1


async def noop_receive() -> Message:
    return {"type": "http.request", "body": b""}


async def noop_send(message: Message) -> None:
    return None


def start(middleware: TaskAdmissionMiddleware, path: str, count: int = 1) -> list[asyncio.Task]:
    return [
        asyncio.create_task(middleware(http_scope(path, {}), noop_receive, noop_send))
        for _ in range(count)
    ]


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def yield_to_the_loop() -> None:
    # Had a waiting request been admitted, it would have entered by now.
    for _ in range(10):
        await asyncio.sleep(0)


def test_at_most_the_limit_of_task_requests_run_at_once_and_all_finish() -> None:
    async def scenario() -> None:
        inner = GatedApp()
        middleware = TaskAdmissionMiddleware(inner, limit=2)
        requests = start(middleware, "/api/v1/tasks", 6)
        await wait_until(lambda: inner.inside == 2)
        await yield_to_the_loop()
        assert inner.inside == 2
        # A request that takes no slot is never held behind the task requests.
        await asyncio.wait_for(*start(middleware, "/chat/1/stream"), timeout=5)
        assert "/chat/1/stream" in inner.entered
        inner.release.set()
        await asyncio.wait_for(asyncio.gather(*requests), timeout=5)
        assert inner.entered.count("/api/v1/tasks") == 6
        assert inner.most_inside == 3  # two task requests plus the chat request

    asyncio.run(scenario())


def test_a_limit_of_zero_admits_everything() -> None:
    async def scenario() -> None:
        inner = GatedApp()
        middleware = TaskAdmissionMiddleware(inner, limit=0)
        requests = start(middleware, "/api/v1/tasks", 6)
        await wait_until(lambda: inner.inside == 6)
        inner.release.set()
        await asyncio.wait_for(asyncio.gather(*requests), timeout=5)

    asyncio.run(scenario())


def test_a_slot_is_given_back_when_the_request_fails() -> None:
    async def scenario() -> None:
        inner = GatedApp()
        middleware = TaskAdmissionMiddleware(inner, limit=1)

        async def failing(scope: Scope, receive: Receive, send: Send) -> None:
            await scope["state"][CLAIM_STATE_KEY].take()
            await scope["state"][CLAIM_STATE_KEY].take()  # a second take holds no more
            raise RuntimeError("the endpoint failed")

        middleware.app = failing
        with pytest.raises(RuntimeError):
            await middleware(http_scope("/api/v1/tasks", {}), noop_receive, noop_send)
        middleware.app = inner
        requests = start(middleware, "/api/v1/tasks")
        await wait_until(lambda: inner.inside == 1)
        inner.release.set()
        await asyncio.wait_for(asyncio.gather(*requests), timeout=5)

    asyncio.run(scenario())


# --- which routes take a slot, and when -----------------------------------------------


def _calls(dependant: Dependant) -> list[Any]:
    found = [dependant.call]
    for sub in dependant.dependencies:
        found.extend(_calls(sub))
    return found


def _api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield str(context.path), context.original_route


def test_exactly_the_task_hand_outs_submissions_and_skips_take_a_slot(app: FastAPI) -> None:
    slotted = {
        (method, path)
        for path, route in _api_routes(app)
        if take_task_slot in _calls(route.dependant)
        for method in route.methods
    }
    assert slotted == {
        ("POST", "/tasks"),
        ("POST", "/tasks/{task_id}/submit"),
        ("POST", "/tasks/{task_id}/skip"),
        ("POST", "/api/v1/tasks"),
        ("POST", "/api/v1/tasks/{task_id}/submit"),
        ("POST", "/api/v1/tasks/{task_id}/skip"),
    }


def test_the_slot_is_taken_only_after_the_user_is_authenticated(app: FastAPI) -> None:
    route = next(route for path, route in _api_routes(app) if path == "/api/v1/tasks")
    slot = next(d for d in route.dependant.dependencies if d.call is take_task_slot)
    assert get_contributor in _calls(slot)


def _admission(app: FastAPI) -> TaskAdmissionMiddleware:
    """The app's own admission middleware, found in its built middleware stack."""
    node: Any = app.middleware_stack or app.build_middleware_stack()
    app.middleware_stack = node
    while not isinstance(node, TaskAdmissionMiddleware):
        node = node.app
    return node


def _request(app: FastAPI, path: str, headers: dict[str, str], body: bytes) -> Awaitable[Answer]:
    async def run() -> Answer:
        answer = Answer()
        parts = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> Message:
            if parts:
                return parts.pop()
            await asyncio.Event().wait()  # the client waits for its answer
            raise AssertionError("unreachable")

        all_headers = {"content-type": "application/json", **headers}
        all_headers["content-length"] = str(len(body))
        await app(http_scope(path, all_headers), receive, answer.send)
        return answer

    return run()


def test_with_every_slot_held_anonymous_requests_are_answered_and_volunteers_wait(
    app: FastAPI, db: Session
) -> None:
    headers = api_headers(make_api_key(db, make_user(db)))
    body = json.dumps({"kind": "write_prompt"}).encode()

    async def scenario() -> None:
        admission = _admission(app)
        for _ in range(admission.slots.limit):  # as requests inside would hold them
            await admission.slots.acquire()
        anonymous = await asyncio.wait_for(
            _request(app, "/api/v1/tasks", {}, body), HANG_GUARD_SECONDS
        )
        assert anonymous.status == 401
        volunteer = asyncio.create_task(_request(app, "/api/v1/tasks", headers, body))
        # Authenticated (in a thread), it queues for the slot...
        await wait_until(lambda: admission.slots.waiting == 1, timeout=HANG_GUARD_SECONDS)
        assert not volunteer.done()
        # ...having ended its authentication's transaction: it holds no connection.
        assert not db.in_transaction()
        admission.slots.release()  # one request inside finishes
        answer = await asyncio.wait_for(volunteer, HANG_GUARD_SECONDS)
        assert answer.status == 200

    asyncio.run(scenario())


def test_a_request_whose_body_has_not_arrived_holds_no_slot(app: FastAPI, db: Session) -> None:
    headers = api_headers(make_api_key(db, make_user(db)))
    body = json.dumps({"kind": "write_prompt"}).encode()

    async def stalled_receive() -> Message:
        await asyncio.Event().wait()  # sent its head, never its body
        raise AssertionError("unreachable")

    async def scenario() -> None:
        stalled = [
            asyncio.create_task(
                app(
                    http_scope("/api/v1/tasks", {**headers, "content-length": "100"}),
                    stalled_receive,
                    noop_send,
                )
            )
            for _ in range(_admission(app).slots.limit)
        ]
        await yield_to_the_loop()
        answer = await asyncio.wait_for(
            _request(app, "/api/v1/tasks", headers, body), HANG_GUARD_SECONDS
        )
        assert answer.status == 200
        for request in stalled:
            request.cancel()

    asyncio.run(scenario())
