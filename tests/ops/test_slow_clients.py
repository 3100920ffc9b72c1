"""The attacks of issue #16 against a real uvicorn on 127.0.0.1, over raw sockets: slow
uploads, oversized bodies. A server that does not defend itself never answers them, so
each read has a hang guard that fails the test instead."""

from __future__ import annotations

import json
import os
import select
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import api_headers, make_api_key, make_user
from tests.live_server import live_uvicorn

# Seconds a socket waits for the server before the test fails; never reached when the
# server defends itself (its body deadline in these tests is 1 s).
HANG_GUARD_SECONDS = 30.0


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after answering

    def json(self) -> dict:
        return json.loads(self.body)


def open_request(
    base_url: str, path: str, headers: dict[str, str], body: bytes = b""
) -> socket.socket:
    """Send a POST's head (and the start of its body) and leave the connection open."""
    url = urlsplit(base_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=HANG_GUARD_SECONDS)
    head = f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    sock.sendall(head.encode() + b"\r\n" + body)
    return sock


def read_response(sock: socket.socket) -> RawResponse:
    """One response, then whether the server closed the connection (an empty read)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without a whole response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the middle of the response body"
        body += chunk
    try:
        closed = sock.recv(1) == b""
    except ConnectionResetError:
        closed = True
    return RawResponse(int(status_line.split()[1]), headers, body, closed)


def answered(sock: socket.socket) -> bool:
    """Whether the server has sent anything (or closed), without waiting."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def assert_refused(response: RawResponse, status: int, code: str) -> None:
    assert response.status == status, response
    assert response.json()["error"]["code"] == code
    assert response.headers["connection"] == "close"
    assert response.closed


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A body deadline of 1 s, four task slots."""
    env = {
        **os.environ,
        "HEDGEROW_BODY_TIMEOUT_SECONDS": "1",
        "HEDGEROW_TASK_REQUESTS_IN_FLIGHT": "4",
    }
    log = Path(tmp_path_factory.mktemp("slow-clients")) / "web.log"
    with live_uvicorn(env, log) as base_url:
        yield base_url


SLOW_UPLOAD = {"Content-Type": "application/json", "Content-Length": "100000"}


def test_a_trickled_body_gets_408_and_the_connection_is_closed(server: str) -> None:
    sock = open_request(server, "/api/v1/tasks", SLOW_UPLOAD, b"{")
    with sock:
        # One byte whenever the server has been quiet for a moment, as the attacker did:
        # bytes keep coming, but the body as a whole does not arrive in time.
        for _ in range(int(HANG_GUARD_SECONDS / 0.2)):
            if select.select([sock], [], [], 0.2)[0]:
                break
            sock.sendall(b" ")
        assert_refused(read_response(sock), 408, "request_timeout")


def test_slow_anonymous_uploads_do_not_keep_volunteers_from_their_tasks(
    server: str, committing_sessionmaker: sessionmaker[Session]
) -> None:
    """Slow uploads hold no task slot at all (test_admission.py shows that without a
    deadline); whatever else happens, none holds one for longer than the deadline."""
    with committing_sessionmaker.begin() as db:
        key = make_api_key(db, make_user(db))
    # As many slow uploads as there are task slots, each stalled after one byte.
    slow = [open_request(server, "/api/v1/tasks", SLOW_UPLOAD, b"{") for _ in range(4)]
    try:
        # Sent after the uploads' heads were in: the server has taken them in by now.
        assert httpx.get(f"{server}/healthz").status_code == 200
        with httpx.Client(
            base_url=server, headers=api_headers(key), timeout=HANG_GUARD_SECONDS
        ) as volunteer:
            asked = volunteer.post("/api/v1/tasks", json={"kind": "write_prompt"})
            available = volunteer.get("/api/v1/tasks/available")
        assert asked.status_code == 200, asked.text
        assert asked.json()["kind"] == "write_prompt"
        assert available.status_code == 200
    finally:
        for sock in slow:
            sock.close()


@pytest.mark.parametrize("path", ["/api/v1/tasks", "/api/v1/me/api-keys", "/login"])
def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    server: str, path: str
) -> None:
    headers = {"Content-Type": "application/json", "Content-Length": str(300_000_000)}
    with open_request(server, path, headers) as sock:
        assert_refused(read_response(sock), 413, "payload_too_large")


def test_a_chunked_body_is_refused_before_it_ends(server: str) -> None:
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    with open_request(server, "/api/v1/tasks", headers) as sock:
        # Far past any limit; the body is never ended, so only a server that counts the
        # bytes as they come can answer.
        for _ in range(64 * 1024 * 1024 // 65536):
            if answered(sock):
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # it answered and closed while we were still sending
        assert_refused(read_response(sock), 413, "payload_too_large")
