"""Which client address the login throttle counts, against the web server as `hedgerow web`
runs it: X-Forwarded-For is believed only from HEDGEROW_TRUSTED_PROXIES.

All connections are on the loopback: from 127.0.0.1 a client connects directly (untrusted),
from 127.0.0.2 it plays the trusted reverse proxy, which appends the address it saw.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.cli.server import proxy_header_options, web_command
from hedgerow.config import Settings
from tests.factories import DEFAULT_PASSWORD, make_user
from tests.live_server import free_port, serving_process

PROXY = "127.0.0.2"
FREE_FAILURES = 3


@pytest.fixture(scope="module")
def web(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "HEDGEROW_TRUSTED_PROXIES": PROXY,
        "HEDGEROW_LOGIN_FAILURES_BEFORE_DELAY": str(FREE_FAILURES),
        "HEDGEROW_LOGIN_DELAY_SECONDS": "600",
        "HEDGEROW_LOGIN_ATTEMPTS_PER_WINDOW": "1000",
    }
    command = [sys.executable, "-m", "hedgerow.cli", "web", "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    log = Path(tmp_path_factory.mktemp("proxy")) / "web.log"
    with serving_process(command, env, log, f"{base_url}/readyz", "hedgerow web"):
        yield base_url


@pytest.fixture
def owner(committing_sessionmaker: sessionmaker[Session]) -> str:
    with committing_sessionmaker.begin() as db:
        return make_user(db, username="owner").username


def browser(base_url: str, *, through_proxy: bool = False) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=PROXY if through_proxy else "127.0.0.1")
    return httpx.Client(base_url=base_url, transport=transport, timeout=30)


def attempt(client: httpx.Client, password: str, forwarded_for: str | None = None) -> int:
    if "hedgerow_csrf" not in client.cookies:
        client.get("/login")
    csrf = client.cookies["hedgerow_csrf"]
    form = {"csrf_token": csrf, "username": "owner", "password": password}
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post("/login", data=form, headers=headers).status_code


def test_a_direct_client_rotating_x_forwarded_for_is_still_throttled(web: str, owner: str) -> None:
    with browser(web) as attacker:
        answers = [attempt(attacker, "a wrong guess", f"10.0.{n}.{n}") for n in range(15)]
    assert answers == [400] * FREE_FAILURES + [429] * (15 - FREE_FAILURES)


def test_behind_the_trusted_proxy_each_visitor_is_throttled_on_their_own(
    web: str, owner: str
) -> None:
    with browser(web, through_proxy=True) as proxy:
        # The attacker's own X-Forwarded-For entries come first; the proxy appends the
        # address it saw, and that is the one counted.
        guesses = [attempt(proxy, "a wrong guess", f"10.9.{n}.{n}, 198.51.100.7") for n in range(6)]
        assert guesses == [400] * FREE_FAILURES + [429] * (6 - FREE_FAILURES)
        assert attempt(proxy, DEFAULT_PASSWORD, "198.51.100.7") == 429
        # The owner, behind the same proxy from their own address, logs in.
        proxy.cookies.clear()
        assert attempt(proxy, DEFAULT_PASSWORD, "203.0.113.20") == 303


def test_forwarded_headers_are_believed_only_from_the_configured_proxies() -> None:
    nobody = Settings(_env_file=None)
    assert proxy_header_options(nobody) == ["--no-proxy-headers"]
    proxies = Settings(_env_file=None, trusted_proxies="10.0.0.5, 172.18.0.0/16")
    command = web_command(proxies, host="0.0.0.0", port=8000)  # noqa: S104
    assert command[command.index("--forwarded-allow-ips") + 1] == "10.0.0.5,172.18.0.0/16"
    assert "--no-proxy-headers" not in command
