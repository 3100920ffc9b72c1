"""Task requests are let into a web process a few at a time; everything else is not held."""

from __future__ import annotations

import asyncio

from starlette.types import Receive, Scope, Send

from hedgerow.ops.admission import TaskAdmissionMiddleware


class GatedApp:
    """An ASGI app that counts the requests inside it and holds each until released."""

    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self.entered: list[str] = []
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        self.entered.append(scope["path"])
        try:
            if scope["path"].startswith("/api/v1/tasks"):
                await self.release.wait()
        finally:
            self.inside -= 1


def http_scope(path: str) -> Scope:
    return {"type": "http", "path": path, "method": "POST", "headers": []}


async def noop_receive() -> dict:
    return {"type": "http.request", "body": b""}


async def noop_send(message: dict) -> None:
    return None


def start_task_requests(middleware: TaskAdmissionMiddleware, count: int) -> list[asyncio.Task]:
    return [
        asyncio.create_task(middleware(http_scope("/api/v1/tasks"), noop_receive, noop_send))
        for _ in range(count)
    ]


async def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_at_most_the_limit_of_task_requests_run_at_once_and_all_finish() -> None:
    async def scenario() -> None:
        inner = GatedApp()
        middleware = TaskAdmissionMiddleware(inner, limit=2)
        requests = start_task_requests(middleware, 6)
        await wait_until(lambda: inner.inside == 2)
        await asyncio.sleep(0.05)  # the others had every chance to get in
        assert inner.inside == 2
        # Pages and other API paths are never held behind the task requests.
        await asyncio.wait_for(
            middleware(http_scope("/chat/1/stream"), noop_receive, noop_send), timeout=5
        )
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
        requests = start_task_requests(middleware, 6)
        await wait_until(lambda: inner.inside == 6)
        inner.release.set()
        await asyncio.wait_for(asyncio.gather(*requests), timeout=5)

    asyncio.run(scenario())
