"""Raw ASGI calls for the tests of the middleware: what the app stack pulls from the client
and what it answers, counted exactly."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import Message, Receive, Scope

CHUNK = 64 * 1024
# Seconds a call may take before the test fails instead of hanging; never reached when the
# middleware works (the slowest answer the tests wait for is a 0.2 s deadline).
HANG_GUARD_SECONDS = 30


def http_scope(path: str, headers: dict[str, str], method: str = "POST") -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("203.0.113.9", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


class Upload:
    """A client's body, handed out a chunk per receive() and counted."""

    def __init__(self, total: int, chunk: int = CHUNK) -> None:
        self.total = total
        self.chunk = chunk
        self.pulled = 0
        self.calls = 0

    async def receive(self) -> Message:
        self.calls += 1
        size = min(self.chunk, self.total - self.pulled)
        self.pulled += size
        return {"type": "http.request", "body": b" " * size, "more_body": self.pulled < self.total}


class Answer:
    """What went back to the client."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.messages[0]["headers"]}

    def json(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.messages[1:]))


def call(app: Any, scope: Scope, receive: Receive) -> Answer:
    answer = Answer()
    asyncio.run(asyncio.wait_for(app(scope, receive, answer.send), HANG_GUARD_SECONDS))
    return answer


def assert_refused(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status
    assert answer.json()["error"]["code"] == code
    assert answer.json()["error"]["message"]
    # The unread rest of the body must not be taken for a next request.
    assert answer.headers["connection"] == "close"
