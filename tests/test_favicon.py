"""Browsers ask every site for an icon: the pages link an SVG one, and /favicon.ico (asked
for whatever the page links) answers with an ICO file."""

from __future__ import annotations

import re
import struct

from fastapi.testclient import TestClient


def test_favicon_ico_answers_with_an_icon(client: TestClient) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    reserved, kind, count = struct.unpack("<HHH", response.content[:6])
    assert (reserved, kind) == (0, 1) and count >= 1  # an ICO header with its images
    sizes = {response.content[6 + 16 * i] or 256 for i in range(count)}
    assert {16, 32} <= sizes
    assert "max-age" in response.headers.get("cache-control", "")


def test_pages_link_an_svg_icon_that_is_served(client: TestClient) -> None:
    page = client.get("/")
    link = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page.text)
    assert link, "base.html links no SVG icon"
    icon = client.get(link.group(1))
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.lstrip().startswith("<svg")
