"""The Content-Security-Policy in a real browser: the API docs run under it, and the browser
tests would notice a page that breaks it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_api_docs_render_from_our_own_origin(new_page: Any) -> None:
    page = new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto("/api/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.get_by_text("/api/v1/tasks/available").first).to_be_visible()
    base = page.url.split("/api/docs")[0]
    assert all(url.startswith((base, "data:")) for url in requested), requested


def test_a_page_that_breaks_the_policy_fails_the_browser_tests(
    new_page: Any, csp_violations: list[str]
) -> None:
    page = new_page()
    page.goto("/tos")
    # What an injected inline script and inline style would do; the policy refuses both.
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.injected = true";
          document.body.append(script);
          const div = document.createElement("div");
          div.setAttribute("style", "color: red");
          document.body.append(div);
        }"""
    )
    expect(page.locator("body")).to_be_visible()
    assert page.evaluate("() => window.injected") is None
    deadline = time.monotonic() + 10
    while not (_mentions(csp_violations, "script") and _mentions(csp_violations, "style")):
        assert time.monotonic() < deadline, csp_violations
        page.evaluate("() => 0")  # a round trip, in which the reports reach the test
    csp_violations.clear()  # seen; the fixture's own check would fail the test otherwise


def _mentions(reports: list[str], kind: str) -> bool:
    return any(f"{kind}-src" in text or f"inline {kind}" in text for text in reports)
