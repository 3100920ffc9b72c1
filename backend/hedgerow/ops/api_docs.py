"""The API's Swagger UI, served from /static/vendor under the strict Content-Security-Policy.

FastAPI's own docs page loads Swagger UI from a CDN and starts it with an inline script;
this one differs only in where those come from.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hedgerow.templating import render

OPENAPI_URL = "/api/openapi.json"

router = APIRouter(include_in_schema=False)


@router.get("/api/docs")
def api_docs(request: Request) -> Response:
    return render(request, "ops/api_docs.html", {"openapi_url": OPENAPI_URL})
